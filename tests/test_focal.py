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


# ------------------------------------------- traced gamma, label smoothing (optax, Keras)


def test_sigmoid_focal_traced_gamma_matches_optax(rng):
    import optax

    x = (3 * rng.standard_normal((5, 4))).astype(np.float32)
    z = (rng.random((5, 4)) < 0.3).astype(np.float32)
    for gamma in (0.0, 0.5, 2.0):
        ours = jax.jit(SFL)(x, z, alpha=0.25, gamma=gamma)  # gamma traced, as in optax
        np.testing.assert_allclose(ours, SFL(x, z, alpha=0.25, gamma=gamma), rtol=1e-6)
        np.testing.assert_allclose(
            ours, optax.sigmoid_focal_loss(x, z, alpha=0.25, gamma=gamma), rtol=1e-5, atol=1e-7
        )

        def total(f):
            return lambda x, g: f(x, z, alpha=0.25, gamma=g).sum()

        g_ours = jax.grad(total(SFL), (0, 1))(x, jnp.float32(gamma))
        g_optax = jax.grad(total(optax.sigmoid_focal_loss), (0, 1))(x, jnp.float32(gamma))
        for a, b in zip(g_ours, g_optax):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_sigmoid_focal_traced_gamma_out_of_domain_is_nan_and_checked_raises(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    z = np.ones((2, 3), np.float32)
    assert np.all(np.isnan(SFL(x, z, gamma=jnp.float32(-1.0))))
    assert np.all(np.isnan(SFL(x, z, gamma=jnp.float32(np.inf))))
    with pytest.raises(Exception, match="gamma"):
        jaxloss.checked(SFL)(x, z, gamma=jnp.float32(-1.0))
    with pytest.raises(ValueError, match="gamma must be a scalar"):
        SFL(x, z, gamma=jnp.ones(3))


def test_sigmoid_focal_label_smoothing_and_traced_gamma_derivatives(rng):
    x = rng.standard_normal((3, 4)) * 2
    z = rng.uniform(0.0, 1.0, (3, 4))
    a = rng.uniform(0.1, 0.9, (3, 4))
    eps = 0.2

    def reference(x, z, a, g):
        z = z * (1 - eps) + eps / 2  # Keras's BinaryFocalCrossentropy smoothing
        p = jax.nn.sigmoid(x)
        ce = -(z * jax.nn.log_sigmoid(x) + (1 - z) * jax.nn.log_sigmoid(-x))
        p_t = p * z + (1 - p) * (1 - z)
        return (a * z + (1 - a) * (1 - z)) * ce * (1 - p_t) ** g

    check_derivatives(
        lambda x, z, a, g: SFL(x, z, alpha=a, gamma=g, label_smoothing=eps),
        reference,
        x,
        z,
        a,
        np.float64(1.5),
        order=2,
    )


def test_sigmoid_focal_labels_broadcast_like_optax(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    z = np.array([0.0, 1.0, 1.0], np.float32)
    np.testing.assert_allclose(SFL(x, z), SFL(x, np.broadcast_to(z, x.shape)), rtol=0)


def test_sigmoid_focal_smoothing_checks_the_raw_labels():
    x = np.zeros(2, np.float32)
    z = np.array([1.05, 0.5], np.float32)  # 1.05 smoothed by 0.1 lands in [0, 1]: still NaN
    out = SFL(x, z, label_smoothing=0.1)
    assert np.isnan(out[0]) and np.isfinite(out[1])


CFL = jaxloss.categorical_focal_loss


def _np_categorical_focal(x, t, alpha=None, gamma=2.0, eps=0.0):
    logp = ref.np_log_softmax(x)
    t = (1 - eps) * np.asarray(t, np.float64) + eps / x.shape[-1]
    a = 1.0 if alpha is None else np.asarray(alpha, np.float64)
    return -np.sum(a * t * (1 - np.exp(logp)) ** gamma * logp, -1)


@pytest.mark.parametrize("alpha", [None, 0.25, "array"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_categorical_focal_matches_reference(rng, gamma, alpha):
    x = (2 * rng.standard_normal((6, 5))).astype(np.float32)
    t = rng.dirichlet(np.ones(5), 6).astype(np.float32)
    a = rng.uniform(0.1, 2.0, 5).astype(np.float32) if alpha == "array" else alpha
    for eps in (0.0, 0.1):
        np.testing.assert_allclose(
            CFL(x, t, alpha=a, gamma=gamma, label_smoothing=eps),
            _np_categorical_focal(x, t, a, gamma, eps),
            rtol=2e-5,
            atol=1e-7,
        )


def test_categorical_focal_keras_golden():
    # keras.losses.CategoricalFocalCrossentropy() docstring: 0.23315276 (alpha=0.25,
    # gamma=2, mean over the batch, probabilities given; a 0 probability is a -inf logit)
    y_true = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    y_pred = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], np.float32)
    with np.errstate(divide="ignore"):
        logits = np.log(y_pred)
    out = CFL(logits, y_true, alpha=0.25, reduction="mean")
    np.testing.assert_allclose(out, 0.23315276, rtol=1e-4)


def test_categorical_focal_special_cases(rng):
    x = (2 * rng.standard_normal((6, 5))).astype(np.float32)
    t = rng.dirichlet(np.ones(5), 6).astype(np.float32)
    w = rng.uniform(0.1, 2.0, 5).astype(np.float32)
    y = rng.integers(0, 5, 6)
    one_hot = np.eye(5, dtype=np.float32)[y]
    for reduction in ("none", "mean"):
        # gamma = 0 is the weighted cross-entropy, value and gradient
        f = lambda x: CFL(x, t, alpha=w, gamma=0.0, reduction=reduction)  # noqa: E731
        g = lambda x: jaxloss.categorical_cross_entropy(  # noqa: E731
            x, t, class_weights=w, reduction=reduction
        )
        np.testing.assert_allclose(f(x), g(x), rtol=1e-6)
        np.testing.assert_allclose(
            jax.grad(lambda x: f(x).sum())(x), jax.grad(lambda x: g(x).sum())(x), atol=1e-6
        )
        # one-hot targets are softmax_focal_loss; with smoothing, both are the soft form
        for eps in (0.0, 0.2):
            f = lambda x: CFL(x, one_hot, alpha=w, label_smoothing=eps, reduction=reduction)  # noqa: E731
            g = lambda x: MFL(x, y, alpha=w, label_smoothing=eps, reduction=reduction)  # noqa: E731
            np.testing.assert_allclose(f(x), g(x), rtol=1e-5)
            np.testing.assert_allclose(
                jax.grad(lambda x: f(x).sum())(x), jax.grad(lambda x: g(x).sum())(x), atol=1e-6
            )


def test_categorical_focal_derivatives(rng):
    x = rng.standard_normal((3, 4)) * 2
    t = rng.dirichlet(np.ones(4), 3)
    a = rng.uniform(0.1, 2.0, 4)

    def reference(x, t, a):
        logp = jax.nn.log_softmax(x)
        t = 0.9 * t + 0.1 / 4
        return -jnp.sum(a * t * (1 - jnp.exp(logp)) ** 2.0 * logp, -1)

    check_derivatives(
        lambda x, t, a: CFL(x, t, alpha=a, label_smoothing=0.1), reference, x, t, a, order=2
    )
    check_derivatives(
        lambda x: CFL(x, t, gamma=0.5),
        lambda x: -jnp.sum(t * (1 - jax.nn.softmax(x)) ** 0.5 * jax.nn.log_softmax(x), -1),
        x,
        order=1,
    )


def test_categorical_focal_edges(rng):
    x = np.array([[0.0, -np.inf, 1.0], [np.nan, 0.0, 0.0]], np.float32)
    t = np.array([[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]], np.float32)
    keep = np.array([True, False])
    value, g = jax.value_and_grad(lambda x: CFL(x, t, where=keep).sum())(x)
    assert np.isfinite(value) and np.all(np.isfinite(g)) and np.all(g[1] == 0)
    assert CFL(x, t, where=keep)[1] == 0
    bad = np.array([[1.5, -0.5, 0.0]], np.float32)
    assert np.isnan(CFL(np.zeros((1, 3), np.float32), bad)[0])
    with pytest.raises(Exception, match="target"):
        jaxloss.checked(CFL)(np.zeros((1, 3), np.float32), bad)
    # softmax_focal_loss with smoothing: bad labels NaN, ignore_index skipped
    out = MFL(
        np.zeros((3, 4), np.float32), np.array([1, 9, -100]), label_smoothing=0.1, ignore_index=-100
    )
    assert np.isfinite(out[0]) and np.isnan(out[1]) and out[2] == 0
    with pytest.raises(Exception, match="label"):
        jaxloss.checked(MFL)(np.zeros((2, 4), np.float32), np.array([1, 9]), label_smoothing=0.1)


def test_bad_labels_and_targets_give_nan_gradients_in_both_modes():
    x = np.zeros((2, 3), np.float32)
    bad_t = np.array([[0.5, 0.5, 0.0], [1.5, -0.5, 0.0]], np.float32)
    bad_y = np.array([0, 7])
    for f in (
        lambda x: CFL(x, bad_t),
        lambda x: MFL(x, bad_y),
        lambda x: MFL(x, bad_y, label_smoothing=0.1),
    ):
        g = jax.grad(lambda x: f(x).sum())(x)
        t = jax.jvp(f, (x,), (np.ones_like(x),))[1]
        assert np.all(np.isfinite(g[0])) and np.all(np.isnan(g[1])), g
        assert np.isnan(t[1])
