"""jaxloss.info: information quantities on probabilities, in nats or bits."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxloss import info
from jaxloss.testing import check_derivatives
from tests import reference as ref


def test_the_articles_worked_example_in_bits():
    """A match won 63 times in 64: a win tells little, a loss six bits."""
    p = np.array([63 / 64, 1 / 64], np.float32)
    np.testing.assert_allclose(info.information(p, base=2), [-math.log2(63 / 64), 6.0], rtol=1e-6)
    h = 63 / 64 * -math.log2(63 / 64) + 1 / 64 * 6
    np.testing.assert_allclose(info.entropy(p, base=2), h, rtol=1e-6)
    assert abs(float(info.entropy(p, base=2)) - 0.1161) < 1e-4
    # a fair coin: one bit; a certain outcome: none
    np.testing.assert_allclose(info.entropy(np.array([0.5, 0.5]), base=2), 1.0, rtol=1e-6)
    assert info.entropy(np.array([1.0, 0.0]), base=2) == 0


def test_values_against_reference(rng):
    p = rng.random((5, 6)) ** 2
    p[:, 1] = 0
    p /= p.sum(-1, keepdims=True)
    q = rng.random((5, 6)) + 0.05
    q /= q.sum(-1, keepdims=True)
    p, q = p.astype(np.float32), q.astype(np.float32)
    np.testing.assert_allclose(info.entropy(p), ref.np_entropy(p), rtol=1e-5)
    np.testing.assert_allclose(info.cross_entropy(p, q), -(ref._xlogy(p, q)).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(info.kl_divergence(p, q), ref.np_kl(p, q), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(info.js_divergence(p, q), ref.np_js(p, q), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(info.entropy(p.T, axis=0), info.entropy(p), rtol=1e-6)


def test_identities(rng):
    p = rng.random((20, 5)).astype(np.float32)
    p /= p.sum(-1, keepdims=True)
    q = rng.random((20, 5)).astype(np.float32)
    q /= q.sum(-1, keepdims=True)
    # bits = nats / ln 2
    np.testing.assert_allclose(info.entropy(p, base=2), info.entropy(p) / math.log(2), rtol=1e-6)
    np.testing.assert_allclose(
        info.kl_divergence(p, q, 2), info.kl_divergence(p, q) / math.log(2), rtol=1e-5
    )
    np.testing.assert_allclose(info.information(p, 2), info.information(p) / math.log(2), rtol=1e-6)
    np.testing.assert_allclose(info.entropy(p, base=10), info.entropy(p) / math.log(10), rtol=1e-6)
    # H(p, q) = H(p) + KL(p || q); KL >= 0 with equality at p = q; 0 <= JS <= 1 bit
    np.testing.assert_allclose(
        info.cross_entropy(p, q), info.entropy(p) + info.kl_divergence(p, q), rtol=1e-5
    )
    assert np.all(info.kl_divergence(p, q) >= 0)
    np.testing.assert_allclose(info.kl_divergence(p, p), 0, atol=1e-7)
    js = info.js_divergence(p, q, base=2)
    assert np.all(js >= 0) and np.all(js <= 1 + 1e-6)
    np.testing.assert_allclose(
        info.js_divergence(p, q), info.js_divergence(q, p), rtol=1e-6, atol=1e-7
    )


def test_zero_probabilities_are_finite_in_derivatives():
    p = np.array([[0.0, 1.0], [0.5, 0.5]], np.float32)
    q = np.array([[0.5, 0.5], [0.0, 1.0]], np.float32)
    for f in (
        lambda p: info.entropy(p),
        lambda p: info.js_divergence(p, q),
        lambda p: info.kl_divergence(p, q[::-1]),
    ):
        v, g = jax.value_and_grad(lambda p: f(p).sum())(p)
        assert np.isfinite(v) and np.all(np.isfinite(g))
    assert info.kl_divergence(p[1], q[1]) == np.inf  # q rules out a class p has
    assert info.kl_divergence(p[0], q[0]) == pytest.approx(math.log(2))
    assert info.cross_entropy(p[1], q[1]) == np.inf


@pytest.mark.parametrize("base", [math.e, 2.0])
def test_derivatives(rng, base):
    p = rng.random((3, 4)) + 0.2
    p /= p.sum(-1, keepdims=True)
    q = rng.random((3, 4)) + 0.2
    q /= q.sum(-1, keepdims=True)
    ln_b = math.log(base)
    order = 2 if base == 2.0 else 1  # second order on one option set
    check_derivatives(lambda p: info.information(p, base), lambda p: -jnp.log(p) / ln_b, p, order=1)
    check_derivatives(
        lambda p: info.entropy(p, base),
        lambda p: -jnp.sum(p * jnp.log(p), -1) / ln_b,
        p,
        order=1,
    )
    check_derivatives(
        lambda p, q: info.cross_entropy(p, q, base),
        lambda p, q: -jnp.sum(p * jnp.log(q), -1) / ln_b,
        p,
        q,
        order=1,
    )
    check_derivatives(
        lambda p, q: info.kl_divergence(p, q, base),
        lambda p, q: jnp.sum(p * jnp.log(p / q), -1) / ln_b,
        p,
        q,
        order=order,
    )

    def js(p, q):
        m = (p + q) / 2
        return (jnp.sum(p * jnp.log(p / m), -1) + jnp.sum(q * jnp.log(q / m), -1)) / 2 / ln_b

    check_derivatives(lambda p, q: info.js_divergence(p, q, base), js, p, q, order=1)


def test_errors():
    p = np.array([0.5, 0.5], np.float32)
    for bad in (1.0, 0.0, -2.0):
        with pytest.raises(ValueError, match="base must be > 0 and != 1"):
            info.entropy(p, base=bad)
    with pytest.raises(ValueError, match="base must be > 0"):
        info.information(p, base=1)
    with pytest.raises(ValueError, match=r"p has shape \(2,\) but q has \(3,\)"):
        info.kl_divergence(p, np.ones(3, np.float32) / 3)
    with pytest.raises(TypeError, match="p must have a floating dtype"):
        info.entropy(np.array([1, 0]))
    with pytest.raises(ValueError, match="axis=1 is out of range"):
        info.entropy(p, axis=1)
    with pytest.raises(TypeError, match="base must be a Python number known at trace time"):
        jax.jit(lambda b: info.entropy(p, base=b))(2.0)
