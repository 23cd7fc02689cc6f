"""KL (forward, reverse, logits-vs-logits), Jensen-Shannon and entropy on logits."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss
from jaxloss.testing import check_derivatives
from tests import reference as ref

KL = jaxloss.kl_divergence


def _dist(rng, shape, zeros=False):
    t = rng.random(shape) ** 2
    if zeros:
        t[..., ::3] = 0
    return (t / t.sum(-1, keepdims=True)).astype(np.float32)


def _logits(rng, shape):
    return (2 * rng.standard_normal(shape)).astype(np.float32)


# -------------------------------------------------------------------------- values


@pytest.mark.parametrize("zeros", [False, True])
def test_values_against_float64_reference(rng, zeros):
    x = _logits(rng, (6, 7))
    t = _dist(rng, (6, 7), zeros)
    y = _logits(rng, (6, 7))
    p = np.exp(ref.np_log_softmax(x))
    np.testing.assert_allclose(KL(x, t), ref.np_kl(t, p), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        jaxloss.reverse_kl_divergence(x, t + 0.01), ref.np_kl(p, t + 0.01), rtol=1e-5, atol=1e-6
    )
    q2 = np.exp(ref.np_log_softmax(y / 2))
    np.testing.assert_allclose(
        jaxloss.kl_divergence_with_logits(x, y, temperature=2.0),
        ref.np_kl(q2, np.exp(ref.np_log_softmax(x / 2))),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(jaxloss.js_divergence(x, t), ref.np_js(p, t), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jaxloss.entropy(x), ref.np_entropy(p), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reductions_and_masking(rng, reduction):
    x = _logits(rng, (8, 5))
    t = _dist(rng, (8, 5))
    keep = rng.random(8) < 0.6
    x_bad = x.copy()
    x_bad[~keep] = np.nan
    for fn, other in [
        (KL, t),
        (jaxloss.reverse_kl_divergence, t),
        (jaxloss.js_divergence, t),
        (jaxloss.kl_divergence_with_logits, x[::-1].copy()),
        (jaxloss.entropy, None),
    ]:
        args = (x_bad,) if other is None else (x_bad, other)
        value, g = jax.value_and_grad(lambda x: fn(x, *args[1:], where=keep, reduction=reduction))(
            x_bad
        )
        sliced = fn(x[keep], *(a[keep] for a in args[1:]))
        want = sliced.sum() if reduction == "sum" else sliced.mean()
        np.testing.assert_allclose(value, want, rtol=1e-5, err_msg=fn.__name__)
        assert np.all(g[~keep] == 0) and np.all(np.isfinite(g)), fn.__name__


def test_golden_values_by_hand():
    lq = np.log(np.array([[0.25, 0.75]], np.float32))
    half = np.array([[0.5, 0.5]], np.float32)
    ln = math.log
    kl = 0.5 * ln(0.5 / 0.25) + 0.5 * ln(0.5 / 0.75)
    np.testing.assert_allclose(KL(lq, half), [kl], rtol=1e-6)
    np.testing.assert_allclose(
        jaxloss.reverse_kl_divergence(lq, half), [0.25 * ln(0.5) + 0.75 * ln(1.5)], rtol=1e-6
    )
    np.testing.assert_allclose(jaxloss.kl_divergence_with_logits(lq, np.log(half)), [kl], rtol=1e-6)
    np.testing.assert_allclose(
        jaxloss.entropy(lq), [-(0.25 * ln(0.25) + 0.75 * ln(0.75))], rtol=1e-6
    )
    one_hot = np.array([[1.0, 0.0]], np.float32)
    disjoint = np.array([[-np.inf, 0.0]], np.float32)  # softmax = [0, 1]
    np.testing.assert_allclose(jaxloss.js_divergence(disjoint, one_hot), [ln(2)], rtol=1e-6)


# ---------------------------------------------------------------------- identities


def test_cross_entropy_is_entropy_plus_kl(rng):
    x = _logits(rng, (10, 6))
    t = _dist(rng, (10, 6), zeros=True)
    ce = jaxloss.categorical_cross_entropy(x, t)
    h = jaxloss.info.entropy(t)
    np.testing.assert_allclose(ce, h + KL(x, t), rtol=1e-5, atol=1e-6)


def test_kl_nonnegative_zero_iff_equal_and_js_bounded(rng):
    x = _logits(rng, (50, 8))
    t = _dist(rng, (50, 8), zeros=True)
    assert np.all(KL(x, t) >= 0)
    assert np.all(jaxloss.reverse_kl_divergence(x, t + 1e-3) >= -1e-6)
    p = jax.nn.softmax(x)
    np.testing.assert_allclose(KL(x, p), 0, atol=2e-6)
    np.testing.assert_allclose(jaxloss.reverse_kl_divergence(x, p), 0, atol=2e-6)
    np.testing.assert_allclose(
        jaxloss.kl_divergence_with_logits(x, x, temperature=3.0), 0, atol=2e-6
    )
    np.testing.assert_allclose(jaxloss.js_divergence(x, p), 0, atol=2e-6)
    js = jaxloss.js_divergence(x, t)
    assert np.all(js >= -1e-7) and np.all(js <= math.log(2) + 1e-6)
    # disjoint supports reach the bound
    disjoint = jaxloss.js_divergence(
        np.array([[0.0, -np.inf]], np.float32), np.array([[0.0, 1.0]], np.float32)
    )
    np.testing.assert_allclose(disjoint, [math.log(2)], rtol=1e-6)
    # entropy between 0 and log C
    h = jaxloss.entropy(x)
    assert np.all(h >= 0) and np.all(h <= math.log(8) + 1e-6)


# ----------------------------------------------------------- optax and edge cases


def test_kl_matches_optax_on_log_probabilities(rng):
    log_p = jax.nn.log_softmax(_logits(rng, (6, 5)))
    t = _dist(rng, (6, 5))
    np.testing.assert_allclose(KL(log_p, t), optax.kl_divergence(log_p, t), rtol=1e-5, atol=1e-6)
    g = jax.grad(lambda lp: KL(lp, t).sum())(log_p)
    go = jax.grad(lambda lp: optax.kl_divergence(lp, t).sum())(log_p)
    # optax's gradient is -t, ours p - t (through the softmax): they agree along every
    # direction v that keeps log_p normalized (sum_c p_c v_c = 0)
    p = np.exp(np.asarray(log_p, np.float64))
    v = rng.standard_normal(p.shape)
    v -= (p * v).sum(-1, keepdims=True)
    np.testing.assert_allclose(
        (np.asarray(g) * v).sum(-1), (np.asarray(go) * v).sum(-1), rtol=1e-4, atol=1e-6
    )
    y = _logits(rng, (6, 5))
    x = _logits(rng, (6, 5))
    np.testing.assert_allclose(
        jaxloss.kl_divergence_with_logits(x, y),
        optax.losses.kl_divergence_with_log_targets(jax.nn.log_softmax(x), jax.nn.log_softmax(y)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_zero_targets_and_neg_inf_logits_are_finite_where_optax_is_nan():
    x = np.array([[0.0, -np.inf, 1.0, 2.0]], np.float32)
    t = np.array([[0.5, 0.0, 0.0, 0.5]], np.float32)
    value = KL(x, t)
    assert np.isfinite(value)
    gx, gt = jax.grad(lambda x, t: KL(x, t).sum(), (0, 1))(x, t)
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gt)) and gt[0, 1] == 0
    go = jax.grad(lambda t: optax.kl_divergence(jax.nn.log_softmax(x), t).sum())(t)
    assert not np.all(np.isfinite(go))
    assert np.all(np.isfinite(jax.hessian(lambda x: KL(x, t).sum())(x)))
    # positive target mass on a -inf logit: infinite KL
    assert KL(x, np.array([[0.5, 0.5, 0.0, 0.0]], np.float32))[0] == np.inf
    for fn, other in [
        (jaxloss.js_divergence, t),
        (jaxloss.reverse_kl_divergence, t + 0.1),
        (jaxloss.kl_divergence_with_logits, np.array([[0.0, -np.inf, -np.inf, 1.0]], np.float32)),
    ]:
        v, g = jax.value_and_grad(lambda x: fn(x, other).sum())(x)
        assert np.isfinite(v) and np.all(np.isfinite(g)), fn.__name__
    v, g = jax.value_and_grad(lambda x: jaxloss.entropy(x).sum())(x)
    assert np.isfinite(v) and np.all(np.isfinite(g))


def test_reverse_kl_infinite_where_targets_rule_out_a_class():
    x = np.zeros((1, 3), np.float32)
    assert jaxloss.reverse_kl_divergence(x, np.array([[0.5, 0.5, 0.0]], np.float32))[0] == np.inf


def test_temperature_scaling(rng):
    x = _logits(rng, (4, 6))
    y = _logits(rng, (4, 6))
    np.testing.assert_allclose(
        jaxloss.kl_divergence_with_logits(x, y, temperature=4.0),
        jaxloss.kl_divergence_with_logits(x / 4, y / 4),
        rtol=1e-5,
    )
    # the gradient at temperature T carries a 1/T: the T**2 factor is the caller's
    g = jax.grad(lambda x: jaxloss.kl_divergence_with_logits(x, y, temperature=4.0).sum())(x)
    g1 = jax.grad(lambda s: jaxloss.kl_divergence_with_logits(s, y / 4).sum())(x / 4)
    np.testing.assert_allclose(g, g1 / 4, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision(rng, dtype):
    x = jnp.asarray(_logits(rng, (4, 6)), dtype)
    t = _dist(rng, (4, 6))
    for fn in (
        lambda x: KL(x, t),
        lambda x: jaxloss.entropy(x),
        lambda x: jaxloss.js_divergence(x, t),
        lambda x: jaxloss.kl_divergence_with_logits(x, x[::-1]),
    ):
        out = fn(x)
        assert out.dtype == jnp.float32
        assert jax.grad(lambda x: fn(x).sum())(x).dtype == dtype


def test_axis_and_vmap(rng):
    x = _logits(rng, (3, 5, 4))
    t = np.moveaxis(_dist(rng, (3, 4, 5)), -1, 1)
    np.testing.assert_allclose(
        KL(x, t, axis=1), KL(np.moveaxis(x, 1, -1), np.moveaxis(t, 1, -1)), rtol=1e-6
    )
    np.testing.assert_allclose(
        jax.vmap(lambda a, b: jaxloss.js_divergence(a, b, axis=0))(x, t),
        jaxloss.js_divergence(x, t, axis=1),
        rtol=1e-6,
    )


# ------------------------------------------------------------------- derivatives


def _refs():
    def kl(x, t):
        return jnp.sum(t * (jnp.log(t) - jax.nn.log_softmax(x)), -1)

    def rkl(x, t):
        return jnp.sum(jax.nn.softmax(x) * (jax.nn.log_softmax(x) - jnp.log(t)), -1)

    def kl_logits(x, y):
        q = jax.nn.softmax(y / 2)
        return jnp.sum(q * (jax.nn.log_softmax(y / 2) - jax.nn.log_softmax(x / 2)), -1)

    def js(x, t):
        p = jax.nn.softmax(x)
        r = (p + t) / 2
        return jnp.sum(p * jnp.log(p / r) + t * jnp.log(t / r), -1) / 2

    def h(x):
        return -jnp.sum(jax.nn.softmax(x) * jax.nn.log_softmax(x), -1)

    return dict(kl=kl, rkl=rkl, kl_logits=kl_logits, js=js, h=h)


@pytest.mark.parametrize("name", ["kl", "rkl", "kl_logits", "js", "h"])
def test_derivatives(rng, name):
    x = rng.standard_normal((3, 5))
    t = rng.random((3, 5)) + 0.1
    t /= t.sum(-1, keepdims=True)
    fns = dict(
        kl=lambda x, t: KL(x, t),
        rkl=lambda x, t: jaxloss.reverse_kl_divergence(x, t),
        kl_logits=lambda x, y: jaxloss.kl_divergence_with_logits(x, y, temperature=2.0),
        js=lambda x, t: jaxloss.js_divergence(x, t),
        h=lambda x: jaxloss.entropy(x),
    )
    args = (x,) if name == "h" else (x, rng.standard_normal((3, 5)) if name == "kl_logits" else t)
    check_derivatives(fns[name], _refs()[name], *args)


def test_errors():
    x = np.zeros((4, 3), np.float32)
    t = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        jaxloss.kl_divergence_with_logits(x, x, temperature=0.0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        jaxloss.kl_divergence_with_logits(x, x, temperature=-1.0)
    with pytest.raises(
        ValueError, match=r"targets has shape \(4, 2\) but logits have shape \(4, 3\)"
    ):
        KL(x, t[:, :2])
    with pytest.raises(ValueError, match=r"target_logits has shape"):
        jaxloss.kl_divergence_with_logits(x, x[:2])
    with pytest.raises(TypeError, match="target_logits must have a floating dtype"):
        jaxloss.kl_divergence_with_logits(x, x.astype(np.int32))
    with pytest.raises(ValueError, match="reduction"):
        jaxloss.js_divergence(x, t, reduction="batchmean")
    with pytest.raises(ValueError, match="axis=3 is out of range"):
        jaxloss.entropy(x, axis=3)
    with pytest.raises(ValueError, match="where has shape"):
        jaxloss.reverse_kl_divergence(x, t, where=np.ones(3, bool))
