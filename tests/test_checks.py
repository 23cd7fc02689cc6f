"""Checked mode: run-time value checks that raise naming the bad value."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss


def test_checked_raises_naming_the_bad_label():
    x = jnp.zeros((4, 5))
    f = jaxloss.checked(jaxloss.sparse_categorical_cross_entropy)
    with pytest.raises(ValueError, match=r"label -100 \(at flat index 2\) is outside \[0, 5\)"):
        f(x, jnp.array([0, 1, -100, 3]))
    with pytest.raises(ValueError, match=r"label 5 \(at flat index 0\)"):
        f(x, jnp.array([5, 1, 7, 3]))


def test_checked_passes_valid_ignored_and_masked_labels():
    x = jnp.zeros((4, 5))
    f = jaxloss.checked(jaxloss.sparse_categorical_cross_entropy)
    np.testing.assert_allclose(f(x, jnp.array([0, 1, 2, 4])), np.log(5) * np.ones(4), rtol=1e-6)
    out = f(x, jnp.array([0, -100, 2, 4]), ignore_index=-100)
    assert out[1] == 0
    out = f(x, jnp.array([0, 9, 2, 4]), where=jnp.array([True, False, True, True]))
    assert out[1] == 0


def test_checked_training_step_with_jit_and_grad_inside():
    x = jnp.ones((3, 4))

    def step(x, labels):
        return jax.jit(
            jax.grad(lambda x: jaxloss.softmax_cross_entropy_with_integer_labels(x, labels).mean())
        )(x)

    checked_step = jaxloss.checked(step)
    assert np.all(np.isfinite(checked_step(x, jnp.array([0, 1, 3]))))
    with pytest.raises(ValueError, match="label 4"):
        checked_step(x, jnp.array([0, 4, 3]))
    # the unchecked function still runs (its traces are cached separately)
    assert np.all(np.isnan(step(x, jnp.array([0, 4, 3]))[1]))
    assert np.all(np.isfinite(step(x, jnp.array([0, 1, 3]))))


def test_unchecked_calls_have_no_check_cost_or_error():
    x = jnp.zeros((2, 3))
    out = jax.jit(jaxloss.sparse_categorical_cross_entropy)(x, jnp.array([0, 3]))
    assert np.isnan(out[1])


def test_axis_name_outside_shard_map_names_the_argument():
    """axis_name= is for calls inside jax.shard_map: outside one, every loss that takes
    it raises at trace time, naming the argument; a non-string is a TypeError."""
    x, t, y = jnp.zeros((2, 4)), jnp.full((2, 4), 0.25), jnp.array([0, 1])
    calls = {
        "sparse_categorical_cross_entropy": lambda a: jaxloss.sparse_categorical_cross_entropy(
            x, y, axis_name=a
        ),
        "categorical_cross_entropy": lambda a: jaxloss.categorical_cross_entropy(x, t, axis_name=a),
        "kl_divergence": lambda a: jaxloss.kl_divergence(x, t, axis_name=a),
        "reverse_kl_divergence": lambda a: jaxloss.reverse_kl_divergence(x, t, axis_name=a),
        "kl_divergence_with_logits": lambda a: jaxloss.kl_divergence_with_logits(x, x, axis_name=a),
        "js_divergence": lambda a: jaxloss.js_divergence(x, t, axis_name=a),
        "entropy": lambda a: jaxloss.entropy(x, axis_name=a),
        "softmax_focal_loss": lambda a: jaxloss.softmax_focal_loss(x, y, axis_name=a),
        "categorical_focal_loss": lambda a: jaxloss.categorical_focal_loss(x, t, axis_name=a),
        "linear_cross_entropy": lambda a: jaxloss.linear_cross_entropy(
            x, jnp.zeros((4, 3)), y, axis_name=a
        ),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=rf"{name}: axis_name='model' is not an axis"):
            call("model")
        with pytest.raises(TypeError, match=rf"{name}: axis_name must be a mesh axis name"):
            call(3)
