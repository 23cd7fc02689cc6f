"""Sigmoid and softmax focal losses."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss.testing import check_derivatives
from tests import reference as ref

SFL = jaxloss.sigmoid_focal_loss
MFL = jaxloss.softmax_focal_loss


@pytest.mark.parametrize("alpha", [None, 0.25, "array"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.5])
def test_sigmoid_focal_matches_torchvision_formula(rng, gamma, alpha):
    x = (3 * rng.standard_normal((5, 4))).astype(np.float32)
    z = (rng.random((5, 4)) < 0.3).astype(np.float32)
    a = rng.uniform(0.1, 0.9, 4).astype(np.float32) if alpha == "array" else alpha
    for reduction in ("none", "mean", "sum"):
        np.testing.assert_allclose(
            SFL(x, z, alpha=a, gamma=gamma, reduction=reduction),
            ref.np_sigmoid_focal(x, z, alpha=a, gamma=gamma, reduction=reduction),
            rtol=2e-5,
            atol=1e-7,
        )


def test_sigmoid_focal_gamma_zero_is_sigmoid_cross_entropy(rng):
    x = (3 * rng.standard_normal((5, 4))).astype(np.float32)
    z = rng.random((5, 4)).astype(np.float32)
    for reduction in ("none", "mean"):
        f = lambda x: SFL(x, z, gamma=0.0, reduction=reduction)  # noqa: E731
        g = lambda x: jaxloss.sigmoid_cross_entropy(x, z, reduction=reduction)  # noqa: E731
        np.testing.assert_allclose(f(x), g(x), rtol=1e-6)
        np.testing.assert_allclose(
            jax.grad(lambda x: f(x).sum())(x),
            jax.grad(lambda x: g(x).sum())(x),
            rtol=1e-6,
            atol=1e-8,
        )


def test_sigmoid_focal_golden_and_edges():
    x = np.array([math.log(3.0), -math.log(3.0)], np.float32)  # p = .75, .25
    z = np.ones(2, np.float32)
    want = [0.25**2 * -math.log(0.75), 0.75**2 * -math.log(0.25)]
    np.testing.assert_allclose(SFL(x, z), want, rtol=1e-5)
    np.testing.assert_allclose(SFL(x, z, alpha=0.25), [0.25 * w for w in want], rtol=1e-5)
    xi = np.array([np.inf, -np.inf, 1e4, -1e4], np.float32)
    zi = np.array([1, 0, 1, 0], np.float32)
    for gamma in (0.0, 0.5, 1.0, 2.0):
        value, g = jax.value_and_grad(lambda x: SFL(x, zi, alpha=0.25, gamma=gamma).sum())(xi)
        assert value == 0 and np.all(g == 0)
        assert np.all(np.isfinite(jax.hessian(lambda x: SFL(x, zi, gamma=gamma).sum())(xi)))


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_sigmoid_focal_derivatives(rng, gamma):
    x = rng.standard_normal((3, 4)) * 2
    z = rng.uniform(0.05, 0.95, (3, 4))
    a = rng.uniform(0.1, 0.9, (3, 4))

    def reference(x, z, a):
        p = jax.nn.sigmoid(x)
        ce = -(z * jax.nn.log_sigmoid(x) + (1 - z) * jax.nn.log_sigmoid(-x))
        p_t = p * z + (1 - p) * (1 - z)
        return (a * z + (1 - a) * (1 - z)) * ce * (1 - p_t) ** gamma

    order = 2 if gamma == 2.0 else 1  # second order on one option set
    check_derivatives(
        lambda x, z, a: SFL(x, z, alpha=a, gamma=gamma), reference, x, z, a, order=order
    )


@pytest.mark.parametrize("alpha", [None, 0.5, "array"])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0])
def test_softmax_focal_matches_reference(rng, gamma, alpha):
    x = (2 * rng.standard_normal((6, 5))).astype(np.float32)
    y = rng.integers(0, 5, 6)
    a = rng.uniform(0.2, 2, 5).astype(np.float32) if alpha == "array" else alpha
    np.testing.assert_allclose(
        MFL(x, y, alpha=a, gamma=gamma), ref.np_softmax_focal(x, y, alpha=a, gamma=gamma), rtol=2e-5
    )


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_softmax_focal_gamma_zero_is_cross_entropy_with_class_weights(rng, reduction):
    x = (2 * rng.standard_normal((8, 5))).astype(np.float32)
    y = rng.integers(0, 5, 8)
    y[3] = -100
    w = rng.uniform(0.2, 2, 5).astype(np.float32)
    kw = dict(ignore_index=-100, reduction=reduction)

    def focal(x, w):
        return MFL(x, y, alpha=w, gamma=0.0, **kw)

    def ce(x, w):
        return jaxloss.sparse_categorical_cross_entropy(x, y, class_weights=w, **kw)

    np.testing.assert_allclose(focal(x, w), ce(x, w), rtol=1e-6)
    for a, b in zip(
        jax.grad(lambda *a: focal(*a).sum(), (0, 1))(x, w),
        jax.grad(lambda *a: ce(*a).sum(), (0, 1))(x, w),
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # a scalar alpha multiplies; the mean stays over examples
    np.testing.assert_allclose(
        MFL(x, y, alpha=3.0, gamma=0.0, **kw),
        3.0 * jaxloss.sparse_categorical_cross_entropy(x, y, **kw),
        rtol=1e-6,
    )


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_softmax_focal_derivatives(rng, gamma):
    x = rng.standard_normal((4, 5))
    y = np.array([0, 2, 4, 1])
    a = rng.uniform(0.5, 2, 5)

    def reference(x, a):
        lp = jax.nn.log_softmax(x)[jnp.arange(4), y]
        return -a[y] * (1 - jnp.exp(lp)) ** gamma * lp

    order = 2 if gamma == 2.0 else 1  # second order on one option set
    check_derivatives(lambda x, a: MFL(x, y, alpha=a, gamma=gamma), reference, x, a, order=order)


def test_softmax_focal_edges(rng):
    x = np.array([[50.0, 0.0, -np.inf], [0.0, 0.0, 0.0], [1e4, -1e4, 0.0]], np.float32)
    y = np.array([0, 1, 0])
    for gamma in (0.5, 1.0, 2.0):
        value, g = jax.value_and_grad(lambda x: MFL(x, y, gamma=gamma).sum())(x)
        assert np.isfinite(value) and np.all(np.isfinite(g))
        assert np.all(np.isfinite(jax.hessian(lambda x: MFL(x, y, gamma=gamma).sum())(x)))
    out = MFL(x, np.array([0, 5, -1]))
    assert np.isfinite(out[0]) and np.isnan(out[1]) and np.isnan(out[2])
    keep = np.array([True, False, True])
    bad = x.copy()
    bad[1] = np.nan
    value, g = jax.value_and_grad(lambda x: MFL(x, y, where=keep, reduction="mean"))(bad)
    assert np.isfinite(value) and np.all(g[1] == 0)
    with pytest.raises(ValueError, match="label 5"):
        jaxloss.checked(MFL)(x, np.array([0, 5, 1]))


def test_errors():
    x = np.zeros((4, 3), np.float32)
    y = np.zeros(4, np.int32)
    z = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        SFL(x, z, gamma=-1.0)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        MFL(x, y, gamma=-0.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        SFL(x, z, alpha=1.5)
    with pytest.raises(ValueError, match=r"alpha has shape \(4,\), which does not broadcast"):
        SFL(x, z, alpha=np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"alpha has shape \(4,\) but logits have 3 classes"):
        MFL(x, y, alpha=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        MFL(x, y, alpha=-1.0)
    with pytest.raises(TypeError, match="labels must have an integer dtype"):
        MFL(x, z[:, 0])
    with pytest.raises(ValueError, match=r"labels has shape \(3,\)"):
        MFL(x, y[:3])


def test_sigmoid_focal_matches_optax(rng):
    import optax

    x = (3 * rng.standard_normal((5, 4))).astype(np.float32)
    z = (rng.random((5, 4)) < 0.3).astype(np.float32)
    for alpha in (None, 0.25):
        np.testing.assert_allclose(
            SFL(x, z, alpha=alpha, gamma=2.0),
            optax.sigmoid_focal_loss(x, z, alpha=alpha, gamma=2.0),
            rtol=1e-5,
            atol=1e-7,
        )
        g = jax.grad(lambda x: SFL(x, z, alpha=alpha).sum())(x)
        go = jax.grad(lambda x: optax.sigmoid_focal_loss(x, z, alpha=alpha).sum())(x)
        np.testing.assert_allclose(g, go, rtol=1e-4, atol=1e-6)
