"""Sigmoid cross-entropy (logits) and binary cross-entropy (probabilities)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss
from jaxloss.testing import check_derivatives
from tests import reference as ref

SIG = jaxloss.sigmoid_cross_entropy
BCE = jaxloss.binary_cross_entropy


def _inputs(rng, shape=(6, 4)):
    x = (2.5 * rng.standard_normal(shape)).astype(np.float32)
    z = (rng.random(shape) < 0.4).astype(np.float32)
    return x, z


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize(
    "opts",
    [
        dict(),
        dict(pos_weight="vec"),
        dict(label_smoothing=0.2),
        dict(where="mask"),
        dict(pos_weight="full", label_smoothing=0.1, where="mask"),
    ],
)
@pytest.mark.parametrize("soft", [False, True])
def test_sigmoid_matches_reference(rng, opts, reduction, soft):
    x, z = _inputs(rng)
    if soft:
        z = rng.random(z.shape).astype(np.float32)
    o = dict(opts)
    if o.get("pos_weight") == "vec":
        o["pos_weight"] = rng.uniform(0.5, 4, 4).astype(np.float32)
    elif o.get("pos_weight") == "full":
        o["pos_weight"] = rng.uniform(0.5, 4, (6, 4)).astype(np.float32)
    if o.get("where") == "mask":
        o["where"] = rng.random((6, 4)) < 0.7
    got = SIG(x, z, reduction=reduction, **o)
    want = ref.np_sigmoid(x, z, reduction=reduction, **o)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_golden_values_by_hand():
    x = np.array([0.0, math.log(3.0), math.log(3.0)], np.float32)  # p = .5, .75, .75
    z = np.array([1.0, 1.0, 0.0], np.float32)
    np.testing.assert_allclose(
        SIG(x, z), [math.log(2), -math.log(0.75), -math.log(0.25)], rtol=1e-6
    )
    # pos_weight 2 doubles the positive terms only
    np.testing.assert_allclose(
        SIG(x, z, pos_weight=2.0),
        [2 * math.log(2), -2 * math.log(0.75), -math.log(0.25)],
        rtol=1e-6,
    )
    # smoothing 0.5: labels become 0.75 and 0.25
    np.testing.assert_allclose(
        SIG(x[1:2], z[1:2], label_smoothing=0.5),
        [-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))],
        rtol=1e-6,
    )
    assert float(SIG(x, z, reduction="mean")) == pytest.approx(float(np.mean(SIG(x, z))), rel=1e-6)


def test_matches_optax_and_is_finite_where_optax_is_not(rng):
    x, z = _inputs(rng, (5, 7))
    np.testing.assert_allclose(
        jaxloss.sigmoid_binary_cross_entropy(x, z),
        optax.sigmoid_binary_cross_entropy(x, z),
        rtol=1e-5,
        atol=1e-6,
    )
    g = jax.grad(lambda x: jaxloss.sigmoid_binary_cross_entropy(x, z).sum())(x)
    go = jax.grad(lambda x: optax.sigmoid_binary_cross_entropy(x, z).sum())(x)
    np.testing.assert_allclose(g, go, rtol=1e-5, atol=1e-7)
    xi = np.array([np.inf, -np.inf], np.float32)
    zi = np.array([1.0, 0.0], np.float32)
    assert np.all(np.isnan(optax.sigmoid_binary_cross_entropy(xi, zi)))
    value, grad = jax.value_and_grad(lambda x: SIG(x, zi, pos_weight=3.0).sum())(xi)
    assert value == 0 and np.all(grad == 0)


def test_infinite_and_huge_logits():
    x = np.array([np.inf, -np.inf, np.inf, -np.inf, 1e4, -1e4, 1e4, -1e4], np.float32)
    z = np.array([1, 0, 0, 1, 1, 0, 0, 1], np.float32)
    value = SIG(x, z)
    big = np.finfo(np.float32).max  # an infinitely wrong logit costs the largest float
    np.testing.assert_array_equal(value, [0, 0, big, big, 0, 0, 1e4, 1e4])
    g = jax.grad(lambda x: SIG(x, z).sum())(x)
    np.testing.assert_array_equal(g, [0, 0, 1, -1, 0, 0, 1, -1])
    # forward mode and second order too
    assert np.all(np.isfinite(jax.jvp(lambda x: SIG(x, z), (x,), (np.ones_like(x),))[1]))
    assert np.all(np.isfinite(jax.hessian(lambda x: SIG(x, z).sum())(x)))


def test_masked_elements_with_nan_get_zero(rng):
    x, z = _inputs(rng)
    x[1, 2] = np.nan
    keep = np.ones((6, 4), bool)
    keep[1, 2] = False
    value, g = jax.value_and_grad(lambda x: SIG(x, z, where=keep, reduction="mean"))(x)
    assert np.isfinite(value) and g[1, 2] == 0 and np.all(np.isfinite(g))
    # masking == dropping the elements
    np.testing.assert_allclose(value, np.mean(SIG(x, z)[keep]), rtol=1e-6)
    # a row mask for [N, C] logits
    rows = rng.random(6) < 0.5
    np.testing.assert_allclose(
        SIG(x, z, where=rows[:, None], reduction="sum"), np.nansum(SIG(x, z)[rows]), rtol=1e-5
    )


def test_all_masked_mean_is_zero():
    x = np.ones((2, 3), np.float32)
    value, g = jax.value_and_grad(
        lambda x: SIG(
            x, np.ones((2, 3), np.float32), where=np.zeros((2, 3), bool), reduction="mean"
        )
    )(x)
    assert value == 0 and np.all(g == 0)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision(rng, dtype):
    x, z = _inputs(rng)
    xh = jnp.asarray(x, dtype)
    out = SIG(xh, z)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, SIG(xh.astype(jnp.float32), z), rtol=1e-6)
    assert jax.grad(lambda x: SIG(x, z).sum())(xh).dtype == dtype


def test_jit_vmap(rng):
    x, z = _inputs(rng)
    w = rng.uniform(0.5, 2, 4).astype(np.float32)
    np.testing.assert_allclose(
        jax.jit(lambda x: SIG(x, z, pos_weight=w))(x), SIG(x, z, pos_weight=w)
    )
    np.testing.assert_allclose(
        jax.vmap(lambda a, b: SIG(a, b, pos_weight=w))(x, z), SIG(x, z, pos_weight=w), rtol=1e-6
    )


def test_sigmoid_derivatives(rng):
    x = rng.standard_normal((3, 4)) * 2
    z = rng.random((3, 4))
    q = rng.uniform(0.5, 3, 4)

    def reference(x, z, q):
        zs = z * 0.9 + 0.05
        return -(q * zs * jax.nn.log_sigmoid(x) + (1 - zs) * jax.nn.log_sigmoid(-x))

    check_derivatives(
        lambda x, z, q: SIG(x, z, pos_weight=q, label_smoothing=0.1), reference, x, z, q
    )
    keep = rng.random((3, 4)) < 0.6
    check_derivatives(
        lambda x: SIG(x, z, where=keep, reduction="mean"),
        lambda x: (
            jnp.sum(
                jnp.where(keep, -(z * jax.nn.log_sigmoid(x) + (1 - z) * jax.nn.log_sigmoid(-x)), 0)
            )
            / float(keep.sum())
        ),
        x,
        order=1,  # second order: the option-rich call above
    )


# ------------------------------------------------------------------ probabilities


def test_bce_matches_reference_and_logits_form(rng):
    p = rng.uniform(0.01, 0.99, (5, 3)).astype(np.float32)
    z = rng.random((5, 3)).astype(np.float32)
    for reduction in ("none", "sum", "mean"):
        np.testing.assert_allclose(
            BCE(p, z, reduction=reduction, label_smoothing=0.1),
            ref.np_bce(p, z, reduction=reduction, label_smoothing=0.1),
            rtol=1e-5,
        )
    logits = np.log(p) - np.log1p(-p)
    np.testing.assert_allclose(BCE(p, z), SIG(logits, z), rtol=1e-4)


def test_bce_clamps_like_pytorch():
    p = np.array([0.0, 1.0, 0.0, 1.0], np.float32)
    z = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
    np.testing.assert_array_equal(BCE(p, z), [100, 100, 0, 0])
    g = jax.grad(lambda p: BCE(p, z).sum())(p)
    np.testing.assert_allclose(g, [-1e12, 1e12, 0, 0], rtol=1e-6)
    assert np.all(np.isfinite(jax.hessian(lambda p: BCE(p, z).sum())(p)))


def test_bce_derivatives(rng):
    p = rng.uniform(0.2, 0.8, (3, 4))
    z = rng.random((3, 4))
    check_derivatives(BCE, lambda p, z: -(z * jnp.log(p) + (1 - z) * jnp.log1p(-p)), p, z)


def test_bce_out_of_range_probabilities_are_nan_and_checked_raises():
    p = np.array([0.5, 1.5, -0.1], np.float32)
    z = np.ones(3, np.float32)
    out = BCE(p, z)
    assert np.isfinite(out[0]) and np.isnan(out[1]) and np.isnan(out[2])
    with pytest.raises(
        ValueError, match=r"probability 1.5 \(at flat index 1\) is outside \[0, 1\]"
    ):
        jaxloss.checked(BCE)(p, z)
    np.testing.assert_allclose(jaxloss.checked(BCE)(p[:1], z[:1]), -math.log(0.5), rtol=1e-6)


def test_errors():
    x = np.zeros((4, 3), np.float32)
    z = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"labels has shape \(4,\) but logits have shape \(4, 3\)"):
        SIG(x, z[:, 0])
    with pytest.raises(ValueError, match=r"pos_weight has shape \(4,\), which does not broadcast"):
        SIG(x, z, pos_weight=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="where has shape"):
        SIG(x, z, where=np.ones(4, bool))
    with pytest.raises(TypeError, match="where must be a boolean mask"):
        SIG(x, z, where=np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="logits must have a floating dtype"):
        SIG(x.astype(np.int32), z)
    with pytest.raises(ValueError, match="label_smoothing"):
        BCE(x, z, label_smoothing=2.0)
    with pytest.raises(ValueError, match="reduction"):
        BCE(x, z, reduction="avg")
    with pytest.raises(ValueError, match=r"labels has shape \(3,\) but probs"):
        BCE(x, z[0])
