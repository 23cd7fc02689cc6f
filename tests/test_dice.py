"""Dice, Tversky and generalized Dice losses: a float64 reference, optax, derivatives,
the edge cases and the argument checks."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss
from jaxloss.testing import check_derivatives

DICE = jaxloss.dice_loss
BINARY = jaxloss.binary_dice_loss
GDL = jaxloss.multiclass_generalized_dice_loss


# ------------------------------------------------------------------ float64 references


def _np_probs(x, apply_softmax):
    x = np.asarray(x, np.float64)
    if not apply_softmax:
        return x
    if x.shape[-1] == 1:
        return 1 / (1 + np.exp(-x))
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_dice(
    predictions,
    targets,
    *,
    class_weights=None,
    smooth=1.0,
    alpha=0.5,
    beta=0.5,
    apply_softmax=True,
    reduction="mean",
    ignore_background=False,
    axis=None,
):
    """optax's formula in float64, with 0/0 (no prediction, no target) read as loss 0."""
    x, t = np.asarray(predictions), np.asarray(targets, np.float64)
    if x.ndim == t.ndim - 1:
        x = x[..., None]
    if t.ndim == x.ndim - 1:
        t = t[..., None]
    p = _np_probs(x, apply_softmax)
    axes = tuple(range(1, p.ndim - 1)) if axis is None else axis
    inter, p_sum, t_sum = (p * t).sum(axes), p.sum(axes), t.sum(axes)
    num = inter + smooth
    den = inter + alpha * (p_sum - inter) + beta * (t_sum - inter) + smooth
    loss = 1 - np.where(den == 0, 1.0, num / np.where(den == 0, 1.0, den))
    if class_weights is not None:
        loss = loss * np.asarray(class_weights, np.float64)
    if ignore_background and loss.shape[-1] > 1:
        loss = loss[..., 1:]
    return {"mean": np.mean, "sum": np.sum}[reduction](loss, -1) if reduction != "none" else loss


def np_generalized(
    predictions, targets, *, smooth=1.0, apply_softmax=True, ignore_background=False
):
    t = np.asarray(targets, np.float64)
    freq = t.sum(tuple(range(t.ndim - 1)))
    w = 1 / (freq**2 + 1e-7)
    w = w / w.sum() * len(w)
    per_class = np_dice(
        predictions,
        t,
        class_weights=w,
        smooth=smooth,
        apply_softmax=apply_softmax,
        reduction="none",
        ignore_background=ignore_background,
    )
    return np.mean(per_class)


def jnp_dice(p, t, w=1.0, *, smooth=1.0, alpha=0.5, beta=0.5, axes=(1,), background=True):
    """The per-class formula in plain jax.numpy on probabilities, for autodiff."""
    inter, p_sum, t_sum = jnp.sum(p * t, axes), jnp.sum(p, axes), jnp.sum(t, axes)
    den = inter + alpha * (p_sum - inter) + beta * (t_sum - inter) + smooth
    loss = w * (1 - (inter + smooth) / den)
    return loss if background else loss[..., 1:]


# ------------------------------------------------------------------ inputs


def _multiclass(rng, shape=(2, 5, 4, 3), soft=False):
    x = (2 * rng.standard_normal(shape)).astype(np.float32)
    if soft:
        t = rng.random(shape).astype(np.float32)
    else:
        t = np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], shape[:-1])]
    return x, t


def _softmax(x):
    return np.asarray(jax.nn.softmax(jnp.asarray(x), axis=-1))


def _with_optax(fn, *args, **kwargs):
    """optax's code relies on standard dtype promotion (bool targets times floats)."""
    with jax.numpy_dtype_promotion("standard"):
        return fn(*args, **kwargs)


OPTIONS = [
    dict(),
    dict(smooth=0.0, alpha=0.3, beta=0.7),
    dict(class_weights="w", reduction="sum"),
    dict(ignore_background=True, reduction="none"),
    dict(axis=(0, 1, 2)),
    dict(axis=-2, reduction="none"),
    dict(axis=()),
    dict(apply_softmax=False),
    dict(
        class_weights="w",
        smooth=0.5,
        alpha=1.0,
        beta=1.0,
        reduction="none",
        ignore_background=True,
        axis=(1,),
    ),
]
BINARY_OPTIONS = [dict(), dict(smooth=0.0, alpha=0.3, beta=0.7), dict(axis=1, reduction="none")]


def _options(rng, opts, num_classes):
    o = dict(opts)
    if o.get("class_weights") == "w":
        o["class_weights"] = rng.uniform(0.2, 3, num_classes).astype(np.float32)
    return o


@pytest.mark.parametrize(
    "shape, opts",
    [((2, 5, 4, 3), o) for o in OPTIONS] + [((2, 5, 4, 1), o) for o in BINARY_OPTIONS],
    ids=lambda v: (
        ",".join(f"{k}={w}" for k, w in v.items()) or "default"
        if isinstance(v, dict)
        else "x".join(map(str, v))
    ),
)
def test_dice_matches_reference_and_optax(rng, shape, opts):
    x, t = _multiclass(rng, shape)
    if shape[-1] == 1:
        t = (rng.random(shape) < 0.4).astype(np.float32)
    o = _options(rng, opts, shape[-1])
    if not o.get("apply_softmax", True):
        x = _softmax(x) if shape[-1] > 1 else np.ones(shape, np.float32)  # optax: sums to 1
    got = DICE(x, t, **o)
    want = np_dice(x, t, **o)
    assert got.dtype == jnp.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(got, _with_optax(optax.losses.dice_loss, x, t, **o), rtol=2e-5)


def test_dice_gradient_matches_optax(rng):
    x, t = _multiclass(rng, (2, 4, 3, 3))
    o = _options(rng, dict(class_weights="w", alpha=0.3, beta=0.7), 3)
    ours = jax.grad(lambda x: DICE(x, t, **o).sum())(x)
    theirs = _with_optax(jax.jit(jax.grad(lambda x: optax.losses.dice_loss(x, t, **o).sum())), x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)


def test_probabilities_need_not_sum_to_one_and_work_under_jit(rng):
    """apply_softmax=False: independent (multi-label) channels; optax rejects them, and
    cannot check the sum under jit at all."""
    p = rng.uniform(0.05, 0.95, (2, 6, 3)).astype(np.float32)
    t = (rng.random((2, 6, 3)) < 0.5).astype(np.float32)
    got = jax.jit(functools.partial(DICE, apply_softmax=False))(p, t)
    np.testing.assert_allclose(got, np_dice(p, t, apply_softmax=False), rtol=1e-5)
    with pytest.raises(ValueError, match="valid probability distributions"):
        _with_optax(optax.losses.dice_loss, p, t, apply_softmax=False)
    probs = _softmax(p)
    with pytest.raises(jax.errors.TracerBoolConversionError):
        _with_optax(
            jax.jit(functools.partial(optax.losses.dice_loss, apply_softmax=False)), probs, t
        )


@pytest.mark.parametrize(
    "shape, smooth", [((3, 6, 5), 1.0), ((3, 6, 5), 0.0), ((3, 6, 5, 1), 1.0), ((7,), 1.0)]
)
def test_binary_matches_reference_and_optax(rng, shape, smooth):
    x = (2 * rng.standard_normal(shape)).astype(np.float32)
    t = rng.random(shape) < 0.4
    got = BINARY(x, t, smooth=smooth)
    expanded = shape[-1] != 1
    want = np_dice(x[..., None] if expanded else x, t[..., None] if expanded else t, smooth=smooth)
    assert got.shape == want.shape == shape[:1]
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(got, _with_optax(optax.losses.binary_dice_loss, x, t, smooth=smooth))


def test_binary_on_probabilities(rng):
    """apply_sigmoid=False works (optax's check rejects any single channel that is not 1)."""
    p = rng.uniform(0, 1, (3, 8)).astype(np.float32)
    t = (rng.random((3, 8)) < 0.5).astype(np.float32)
    got = BINARY(p, t, apply_sigmoid=False)
    np.testing.assert_allclose(got, np_dice(p[..., None], t[..., None], apply_softmax=False))
    with pytest.raises(ValueError, match="valid probability distributions"):
        _with_optax(optax.losses.binary_dice_loss, p, t, apply_sigmoid=False)
    logits = np.log(p) - np.log1p(-p)
    np.testing.assert_allclose(BINARY(logits, t), got, rtol=1e-5)


@pytest.mark.parametrize(
    "shape, opts",
    [
        ((3, 6, 5, 4), dict()),
        ((3, 6, 5, 4), dict(smooth=0.0, ignore_background=True)),
        ((3, 6, 5, 4), dict(apply_softmax=False, smooth=2.0)),
        ((2, 7, 1), dict()),
    ],
)
def test_generalized_matches_reference_and_optax(rng, shape, opts):
    x, t = _multiclass(rng, shape)
    if shape[-1] == 1:
        t = (rng.random(shape) < 0.4).astype(np.float32)
    if not opts.get("apply_softmax", True):
        x = _softmax(x) if shape[-1] > 1 else np.ones(shape, np.float32)
    got = GDL(x, t, **opts)
    assert got.shape == () and got.dtype == jnp.float32
    np.testing.assert_allclose(got, np_generalized(x, t, **opts), rtol=2e-5)
    theirs = _with_optax(optax.losses.multiclass_generalized_dice_loss, x, t, **opts)
    np.testing.assert_allclose(got, theirs, rtol=2e-5)


def test_golden_values_by_hand():
    # four pixels, two classes: class 0 predicted at 0, 2, 3 and true at 0, 3;
    # class 1 predicted at 1 and true at 1, 2. I = (2, 1), P = (3, 1), T = (2, 2).
    p = np.array([[[1, 0], [0, 1], [1, 0], [1, 0]]], np.float32)
    t = np.array([[[1, 0], [0, 1], [0, 1], [1, 0]]], np.float32)
    hard = functools.partial(DICE, smooth=0.0, apply_softmax=False, reduction="none")
    np.testing.assert_allclose(hard(p, t), [[1 - 4 / 5, 1 - 2 / 3]], rtol=1e-6)  # 2I/(P+T)
    np.testing.assert_allclose(hard(p, t, alpha=1.0, beta=1.0), [[1 - 2 / 3, 1 - 1 / 2]])  # IoU
    np.testing.assert_allclose(hard(p, t, alpha=1.0, beta=0.0), [[1 - 2 / 3, 0]])  # precision
    np.testing.assert_allclose(hard(p, t, alpha=0.0, beta=1.0), [[0, 1 - 1 / 2]])  # recall
    np.testing.assert_allclose(
        DICE(p, t, apply_softmax=False, class_weights=[2.0, 3.0], reduction="sum"),
        [2 * (1 - 3 / 3.5) + 3 * (1 - 2 / 2.5)],
        rtol=1e-6,
    )
    assert hard(p, t, ignore_background=True).shape == (1, 1)


def test_shapes_and_axes(rng):
    x, t = _multiclass(rng, (2, 5, 4, 3))
    assert DICE(x, t, reduction="none").shape == (2, 3)
    assert DICE(x, t, ignore_background=True, reduction="none").shape == (2, 2)
    assert DICE(x, t, axis=()).shape == (2, 5, 4)  # per pixel
    assert DICE(x, t, axis=(0, 1, 2)).shape == ()  # the whole batch pooled
    np.testing.assert_allclose(DICE(x, t, axis=(1, 2)), DICE(x, t), rtol=1e-6)
    np.testing.assert_allclose(DICE(x, t, axis=[-3, -2]), DICE(x, t), rtol=1e-6)
    # ignore_background drops class 0 after weighting; one channel: no effect
    full = DICE(x, t, reduction="none")
    np.testing.assert_allclose(DICE(x, t, ignore_background=True, reduction="none"), full[:, 1:])
    xb, tb = x[..., :1], (rng.random((2, 5, 4, 1)) < 0.5).astype(np.float32)
    np.testing.assert_allclose(DICE(xb, tb, ignore_background=True), DICE(xb, tb))
    # one channel may be left out of either argument
    np.testing.assert_allclose(DICE(xb[..., 0], tb), DICE(xb, tb))
    np.testing.assert_allclose(DICE(xb, tb[..., 0]), DICE(xb, tb))
    # channels first: move the class axis last
    xc, tc = np.moveaxis(x, -1, 1), np.moveaxis(t, -1, 1)
    np.testing.assert_allclose(DICE(np.moveaxis(xc, 1, -1), np.moveaxis(tc, 1, -1)), DICE(x, t))
    # booleans and integer one-hot targets
    np.testing.assert_allclose(DICE(x, t.astype(bool)), DICE(x, t))
    np.testing.assert_allclose(DICE(x, t.astype(np.int32)), DICE(x, t))
    # smooth, alpha and beta may be per class
    a = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    np.testing.assert_allclose(
        DICE(x, t, alpha=a, beta=1 - a, reduction="none")[:, 1],
        DICE(x, t, alpha=float(a[1]), beta=float(1 - a[1]), reduction="none")[:, 1],
        rtol=1e-6,
    )


def test_zeroed_pixels_equal_dropped_pixels(rng):
    """Ignoring pixels (VOC's 255) by zeroing their probabilities and targets equals
    leaving them out."""
    x, t = _multiclass(rng, (2, 12, 3))
    p = _softmax(x)
    keep = np.ones(12, bool)
    keep[[1, 5, 6]] = False
    zeroed = DICE(p * keep[:, None], t * keep[:, None], apply_softmax=False, reduction="none")
    dropped = DICE(p[:, keep], t[:, keep], apply_softmax=False, reduction="none")
    np.testing.assert_allclose(zeroed, dropped, rtol=1e-6)


def test_jit_vmap(rng):
    x, t = _multiclass(rng, (4, 5, 3))
    w = rng.uniform(0.5, 2, 3).astype(np.float32)
    f = functools.partial(DICE, class_weights=w, alpha=0.4, beta=0.6, reduction="none")
    np.testing.assert_allclose(jax.jit(f)(x, t), f(x, t), rtol=1e-6)
    per_image = jax.vmap(lambda a, b: f(a[None], b[None])[0])(x, t)
    np.testing.assert_allclose(per_image, f(x, t), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(BINARY)(x[..., 0], t[..., 0]), BINARY(x[..., 0], t[..., 0]))
    np.testing.assert_allclose(jax.jit(GDL)(x, t), GDL(x, t), rtol=1e-6)
    # traced smooth and class weights
    g = jax.jit(lambda x, t, s, w: DICE(x, t, smooth=s, class_weights=w))
    np.testing.assert_allclose(g(x, t, 0.5, w), DICE(x, t, smooth=0.5, class_weights=w), rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision(rng, dtype):
    x, t = _multiclass(rng, (2, 5, 3))
    xh = jnp.asarray(x, dtype)
    out = DICE(xh, t)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, DICE(xh.astype(jnp.float32), t), rtol=1e-6)
    assert jax.grad(lambda x: DICE(x, t).sum())(xh).dtype == dtype


def test_float64_stays_float64(rng):
    x, t = _multiclass(rng, (2, 5, 3))
    with jax.enable_x64(True):
        out = DICE(jnp.asarray(x, jnp.float64), t, class_weights=np.ones(3, np.float32))
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(out, np_dice(x, t), rtol=1e-12)


# ------------------------------------------------------------------ derivatives


def _softmax_last(x):
    return jax.nn.softmax(x, axis=-1)


def test_dice_derivatives_second_order(rng):
    """Second order on the ratio with every option (the softmax's derivatives are JAX's;
    they are checked to first order below)."""
    p = rng.uniform(0.1, 0.9, (2, 3, 3))
    t = rng.uniform(0.1, 0.9, (2, 3, 3))
    w = rng.uniform(0.5, 2, 3)
    opts = dict(smooth=0.5, alpha=0.3, beta=0.7)
    check_derivatives(
        lambda p: DICE(p, t, class_weights=w, ignore_background=True, apply_softmax=False, **opts),
        lambda p: jnp.mean(jnp_dice(p, t, w, background=False, **opts), -1),
        p,
    )


def test_dice_derivatives_first_order(rng):
    x = rng.standard_normal((2, 4, 3))
    t = rng.uniform(0.1, 0.9, (2, 4, 3))
    a, w = rng.uniform(0.2, 0.8, 3), rng.uniform(0.5, 2, 3)
    s, b = np.array([0.3, 1.0, 0.0]), rng.uniform(0.2, 0.8, 3)  # per class; smooth 0 too
    # logits, targets, alpha and class weights; summed over the batch too
    check_derivatives(
        lambda x, t, a, w: DICE(
            x, t, class_weights=w, smooth=s, alpha=a, beta=b, axis=(0, 1), reduction="sum"
        ),
        lambda x, t, a, w: jnp.sum(
            jnp_dice(_softmax_last(x), t, w, smooth=s, alpha=a, beta=b, axes=(0, 1))
        ),
        x,
        t,
        a,
        w,
        order=1,
    )
    # one channel: sigmoid
    check_derivatives(
        lambda x: BINARY(x, t[..., 0], smooth=0.0),
        lambda x: jnp_dice(jax.nn.sigmoid(x)[..., None], t[..., :1], smooth=0.0)[..., 0],
        rng.standard_normal((2, 4)),
        order=1,
    )


def test_generalized_derivatives(rng):
    x = rng.standard_normal((2, 3, 3))
    t = rng.uniform(0.1, 0.9, (2, 3, 3))

    def reference(x, t):
        freq = jnp.sum(t, (0, 1))
        w = 1 / (freq**2 + 1e-7)
        w = w / jnp.sum(w) * 3
        return jnp.mean(jnp_dice(_softmax_last(x), t, w, smooth=0.5))

    check_derivatives(lambda x, t: GDL(x, t, smooth=0.5), reference, x, t, order=1)


# ------------------------------------------------------------------ edge cases


def test_empty_prediction_and_target_is_zero_with_finite_derivatives():
    """smooth = 0, no prediction and no target for a class: 0/0, read as a perfect match
    (optax: NaN); every derivative is finite."""
    p = np.zeros((1, 4, 2), np.float32)
    p[0, :, 1] = [0.2, 0.9, 0.0, 0.6]
    t = np.zeros((1, 4, 2), np.float32)
    t[0, :, 1] = [0.0, 1.0, 0.0, 1.0]
    f = functools.partial(DICE, smooth=0.0, apply_softmax=False, reduction="none")
    value = f(p, t)
    np.testing.assert_allclose(
        value, np_dice(p, t, smooth=0.0, apply_softmax=False, reduction="none")
    )
    assert value[0, 0] == 0
    minus_inf = np.full((1, 4, 1), -np.inf, np.float32)  # sigmoid: p = 0 exactly
    assert np.isnan(_with_optax(optax.losses.dice_loss, minus_inf, t[..., :1], smooth=0.0)[0])
    assert DICE(minus_inf, t[..., :1], smooth=0.0)[0] == 0
    scalar = lambda p, t: f(p, t).sum()  # noqa: E731
    derivatives = jax.jit(
        lambda p, t: (
            jax.grad(scalar, (0, 1))(p, t),
            jax.jvp(scalar, (p, t), (jnp.ones_like(p), jnp.ones_like(t)))[1],
            jax.hessian(scalar)(p, t),
        )
    )(p, t)
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(derivatives))
    gp = derivatives[0][0]
    assert np.all(gp[..., 0] == 0)  # the empty class
    want = jax.grad(lambda q: jnp_dice(q, t[..., 1:], smooth=0.0).sum())(p[..., 1:])
    np.testing.assert_allclose(gp[..., 1:], want, rtol=1e-6)
    # all zero: loss 0, gradient 0 in every argument
    z = np.zeros((1, 4, 2), np.float32)
    value, grads = jax.jit(jax.value_and_grad(scalar, (0, 1)))(z, z)
    assert value == 0 and all(np.all(g == 0) for g in grads)


def test_masked_class_with_minus_inf_logits(rng):
    x, t = _multiclass(rng, (2, 6, 3))
    x[..., 2] = -np.inf  # class 2 masked out, and absent from the targets
    t = np.eye(3, dtype=np.float32)[rng.integers(0, 2, (2, 6))]
    for smooth in (0.0, 1.0):
        value, g = jax.value_and_grad(lambda x: DICE(x, t, smooth=smooth, reduction="none").sum())(
            x
        )
        per_class = DICE(x, t, smooth=smooth, reduction="none")
        assert np.all(per_class[:, 2] == 0) and np.isfinite(value)
        assert np.all(np.isfinite(g)) and np.all(g[..., 2] == 0)
        np.testing.assert_allclose(
            per_class[:, :2],
            DICE(x[..., :2], t[..., :2], smooth=smooth, reduction="none"),
            rtol=1e-6,
        )


def test_extreme_logits_are_finite():
    t = np.ones((1, 4, 4, 1), np.float32)
    for v in (100.0, -100.0, 1e4, -1e4):
        value, g = jax.value_and_grad(lambda x: DICE(x, t).sum())(np.full(t.shape, v, np.float32))
        assert np.isfinite(value) and np.all(np.isfinite(g))


def test_out_of_range_targets_are_nan_and_checked_raises(rng):
    x, t = _multiclass(rng, (2, 4, 3))
    t[0, 1, 0] = 2.0
    per_class = DICE(x, t, reduction="none")
    assert np.isnan(per_class[0, 0]) and np.all(np.isfinite(per_class[0, 1:]))
    assert np.all(np.isfinite(per_class[1]))
    # the other image's gradient is finite (the bad image's own is NaN, like its value)
    g = jax.grad(lambda x: DICE(x, t)[1])(x)
    assert np.all(np.isfinite(g[1])) and np.all(np.isnan(g[0]))
    with pytest.raises(ValueError, match=r"dice_loss: target 2.0 \(at flat index 3\) is outside"):
        jaxloss.checked(DICE)(x, t)
    t[0, 1, 0] = 1.0
    np.testing.assert_allclose(jaxloss.checked(DICE)(x, t), DICE(x, t))


def test_out_of_range_probabilities_and_negative_parameters_are_nan(rng):
    p = rng.uniform(0, 1, (2, 4, 1)).astype(np.float32)
    t = (rng.random((2, 4, 1)) < 0.5).astype(np.float32)
    p[1, 2, 0] = 1.5
    out = DICE(p, t, apply_softmax=False)
    assert np.isfinite(out[0]) and np.isnan(out[1])
    with pytest.raises(ValueError, match=r"binary_dice_loss: prediction 1.5 .* is outside"):
        jaxloss.checked(functools.partial(BINARY, apply_sigmoid=False))(p, t)
    p[1, 2, 0] = 0.5
    for name in ("smooth", "alpha", "beta"):
        out = DICE(p, t, apply_softmax=False, **{name: jnp.array(-0.5)})
        assert np.all(np.isnan(out)), name
        with pytest.raises(ValueError, match=f"{name} -0.5 .* is negative"):
            jaxloss.checked(functools.partial(DICE, **{name: jnp.array(-0.5)}))(p, t)
    x, t3 = _multiclass(rng, (2, 4, 3))
    out = DICE(x, t3, class_weights=jnp.array([1.0, -1.0, 1.0]), reduction="none")
    assert np.all(np.isnan(out[:, 1])) and np.all(np.isfinite(out[:, [0, 2]]))


def test_errors(rng):
    x, t = _multiclass(rng, (2, 5, 4, 3))
    with pytest.raises(
        ValueError,
        match=r"dice_loss: targets has shape \(2, 5, 4, 2\) but predictions have shape "
        r"\(2, 5, 4, 3\)",
    ):
        DICE(x, t[..., :2])
    with pytest.raises(ValueError, match=r"targets has shape \(2, 5, 4\) .* jax.nn.one_hot"):
        DICE(x, np.zeros((2, 5, 4), np.int32))  # integer labels, not one-hot
    with pytest.raises(ValueError, match=r"class_weights has shape \(2,\) .* needs shape \(3,\)"):
        DICE(x, t, class_weights=np.ones(2, np.float32))
    with pytest.raises(ValueError, match=r"class_weights has shape \(1, 3\)"):
        DICE(x, t, class_weights=np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"class_weights must be finite and >= 0"):
        DICE(x, t, class_weights=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="reduction must be one of"):
        DICE(x, t, reduction="avg")
    with pytest.raises(ValueError, match=r"axis=\(1, 3\) includes the class axis 3"):
        DICE(x, t, axis=(1, 3))
    with pytest.raises(ValueError, match=r"axis=-1 includes the class axis"):
        DICE(x, t, axis=-1)
    with pytest.raises(ValueError, match=r"axis=4 is out of range for predictions of shape"):
        DICE(x, t, axis=4)
    with pytest.raises(ValueError, match="repeats an axis"):
        DICE(x, t, axis=(1, -3))
    with pytest.raises(TypeError, match="axis must be None, an int or a sequence of ints"):
        DICE(x, t, axis=1.5)
    with pytest.raises(ValueError, match=r"smooth must be finite and >= 0, got -1.0"):
        DICE(x, t, smooth=-1.0)
    with pytest.raises(ValueError, match=r"alpha must be finite and >= 0"):
        DICE(x, t, alpha=float("nan"))
    with pytest.raises(ValueError, match=r"beta has shape \(4,\), which does not broadcast"):
        DICE(x, t, beta=np.ones(4, np.float32))
    with pytest.raises(TypeError, match="predictions must have a floating dtype"):
        DICE(x.astype(np.int32), t)
    with pytest.raises(ValueError, match="predictions must have at least 1 dimension"):
        DICE(np.float32(1.0), np.float32(1.0))
    with pytest.raises(
        ValueError,
        match=r"multiclass_generalized_dice_loss: targets has shape \(2, 5, 4\) but "
        r"predictions have shape \(2, 5, 4, 1\)",
    ):
        GDL(x[..., :1], t[..., 0])  # no channel is added here
    with pytest.raises(
        ValueError,
        match=r"binary_dice_loss: targets has shape \(2, 5, 4, 1\) but predictions have "
        r"shape \(2, 5, 4, 3\)",
    ):
        BINARY(x, t[..., :1])
