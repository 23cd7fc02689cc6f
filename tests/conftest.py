"""Test configuration: strict dtype promotion, so no silent upcasts hide in the code."""

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test."""
    return np.random.default_rng(0)
