"""The shared weighting and reduction rules (jaxloss._reduction)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxloss import _reduction


def test_reduce_none_sum_mean():
    losses = jnp.array([1.0, 2.0, 0.0, 4.0])
    weights = jnp.array([1.0, 1.0, 0.0, 2.0])
    np.testing.assert_array_equal(_reduction.reduce(losses, weights, "none"), losses)
    assert _reduction.reduce(losses, weights, "sum") == 7.0
    assert _reduction.reduce(losses, weights, "mean") == 7.0 / 4.0


def test_mean_of_nothing_is_zero_with_zero_gradient():
    weights = jnp.zeros(3)
    value, grad = jax.value_and_grad(lambda v: _reduction.reduce(v, weights, "mean"))(jnp.zeros(3))
    assert value == 0.0 and np.all(grad == 0) and np.all(np.isfinite(grad))


def test_example_mask_combines_where_and_ignore_index():
    labels = jnp.array([0, -100, 2, 1])
    where = jnp.array([True, True, False, True])
    assert _reduction.example_mask(None) is None
    assert _reduction.example_mask(None, labels, None) is None
    np.testing.assert_array_equal(
        _reduction.example_mask(where, labels, -100), [True, False, False, True]
    )
    np.testing.assert_array_equal(
        _reduction.example_mask(None, labels, -100), [True, False, True, True]
    )


@pytest.mark.parametrize("mask", [None, np.array([True, False, True])])
def test_example_weights(mask):
    labels = jnp.array([0, 2, 5])  # 5 is out of range: no wrap-around, reads class 0
    cw = jnp.array([0.5, 1.0, 3.0])
    w = _reduction.sparse_example_weights(mask, labels, cw, jnp.float32)
    want = np.array([0.5, 3.0, 0.5]) * (1 if mask is None else mask)
    np.testing.assert_allclose(w, want)
    targets = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [jnp.nan, 0, 0]])
    w = _reduction.soft_example_weights(jnp.array([True, True, False]), targets, cw, 1, jnp.float32)
    np.testing.assert_allclose(w, [0.5, 2.0, 0.0])
    w = _reduction.soft_example_weights(mask, targets, None, 1, jnp.float32)
    if mask is None:
        assert w is None  # every example weighs 1: the mean divides by the count
    else:
        np.testing.assert_allclose(w, mask.astype(np.float32))
    assert _reduction.reduce(jnp.array([1.0, 3.0]), None, "mean") == 2.0
