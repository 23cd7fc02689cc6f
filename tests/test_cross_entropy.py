"""Values of the softmax cross-entropy family against the float64 reference formulas,
golden values, the invariants (jit, vmap, masking, axis, sparse == one-hot), numerics
at the edges, and the trace-time errors."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss
from tests import reference as ref

CE = jaxloss.categorical_cross_entropy
SPARSE = jaxloss.sparse_categorical_cross_entropy


def _logits(rng, shape, scale=2.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def _labels(rng, shape, num_classes):
    return rng.integers(0, num_classes, shape).astype(np.int32)


def _soft(rng, shape, axis=-1):
    t = rng.random(shape) ** 2
    return (t / t.sum(axis, keepdims=True)).astype(np.float32)


def _one_hot(labels, num_classes, axis=-1):
    return np.moveaxis(np.eye(num_classes, dtype=np.float32)[labels], -1, axis)


OPTIONS = [
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-2},
    {"class_weights": "random"},
    {"where": "random"},
    {"class_weights": "random", "label_smoothing": 0.2, "where": "random", "z_loss": 1e-3},
]


def _materialize(opts, rng, batch_shape, num_classes):
    out = dict(opts)
    if out.get("class_weights") == "random":
        out["class_weights"] = rng.uniform(0.2, 3.0, num_classes).astype(np.float32)
    if out.get("where") == "random":
        out["where"] = rng.random(batch_shape) < 0.7
    return out


SHAPES_AXES = [((7,), -1), ((6, 5), -1), ((6, 5), 0), ((3, 4, 6), 1), ((3, 4, 6), -1)]


# ---------------------------------------------------------------------------- values


def _with_reductions(options):
    """Every (shape, option set) with one reduction, cycled so that each reduction meets
    every shape and every option set: each compiles its own program, and the reductions
    themselves are checked in test_reduction.py."""
    return [
        (shape, axis, opts, ("none", "sum", "mean")[(i + j) % 3])
        for i, (shape, axis) in enumerate(SHAPES_AXES)
        for j, opts in enumerate(options)
    ]


@pytest.mark.parametrize("shape,axis,opts,reduction", _with_reductions(OPTIONS))
def test_categorical_matches_reference(rng, shape, axis, opts, reduction):
    x = _logits(rng, shape)
    t = _soft(rng, shape, axis)
    batch = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    o = _materialize(opts, rng, batch, shape[axis])
    got = CE(x, t, axis=axis, reduction=reduction, **o)
    want = ref.np_categorical(x, t, axis=axis, reduction=reduction, **o)
    assert got.dtype == jnp.float32
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize(
    "shape,axis,opts,reduction", _with_reductions(OPTIONS + [{"ignore_index": 2}])
)
def test_sparse_matches_reference(rng, shape, axis, opts, reduction):
    x = _logits(rng, shape)
    batch = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    y = _labels(rng, batch, shape[axis])
    o = _materialize(opts, rng, batch, shape[axis])
    got = SPARSE(x, y, axis=axis, reduction=reduction, **o)
    want = ref.np_sparse(x, y, axis=axis, reduction=reduction, **o)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_float64_stays_float64(rng):
    with jax.enable_x64(True):
        x = jnp.asarray(rng.standard_normal((4, 6)))
        y = jnp.asarray(_labels(rng, (4,), 6))
        out = SPARSE(x, y, label_smoothing=0.1)
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(out, ref.np_sparse(x, y, label_smoothing=0.1), rtol=1e-12)
        t = jnp.asarray(_soft(rng, (4, 6)), jnp.float64)
        np.testing.assert_allclose(CE(x, t), ref.np_categorical(x, t), rtol=1e-12)


# ----------------------------------------------------------------- golden, by hand

P = np.array([[1.0, 3.0], [2.0, 2.0]])  # softmax of log(P) is P / P.sum()
LOGITS = np.log(P).astype(np.float32)


def test_golden_values_by_hand():
    labels = np.array([1, 0])
    ln = math.log
    # -log .75 and -log .5
    np.testing.assert_allclose(SPARSE(LOGITS, labels), [-ln(0.75), ln(2)], rtol=1e-6)
    # class weights [1, 3]: losses [3 * -log .75, 1 * log 2], mean over weights 3 + 1
    w = np.array([1.0, 3.0], np.float32)
    np.testing.assert_allclose(
        SPARSE(LOGITS, labels, class_weights=w), [-3 * ln(0.75), ln(2)], rtol=1e-6
    )
    np.testing.assert_allclose(
        SPARSE(LOGITS, labels, class_weights=w, reduction="mean"),
        (-3 * ln(0.75) + ln(2)) / 4,
        rtol=1e-6,
    )
    # smoothing 0.5 over 2 classes: label 1 -> targets [.25, .75]
    np.testing.assert_allclose(
        SPARSE(LOGITS, labels, label_smoothing=0.5)[0],
        -(0.25 * ln(0.25) + 0.75 * ln(0.75)),
        rtol=1e-6,
    )
    # z-loss: log Z of log(P) is log(4) for both rows
    np.testing.assert_allclose(
        SPARSE(LOGITS, labels, z_loss=0.5) - SPARSE(LOGITS, labels),
        [0.5 * ln(4) ** 2, 0.5 * ln(4) ** 2],
        rtol=1e-5,
    )
    # sum and mean
    np.testing.assert_allclose(SPARSE(LOGITS, labels, reduction="sum"), ln(2) - ln(0.75), rtol=1e-6)
    np.testing.assert_allclose(
        CE(LOGITS, np.array([[0.5, 0.5], [1.0, 0.0]])),
        [-(0.5 * ln(0.25) + 0.5 * ln(0.75)), ln(2)],
        rtol=1e-6,
    )


def test_golden_uniform_logits_give_log_num_classes():
    for num_classes in (2, 10, 1000):
        x = jnp.zeros((3, num_classes))
        np.testing.assert_allclose(
            SPARSE(x, jnp.array([0, 1, num_classes - 1])),
            math.log(num_classes),
            rtol=1e-6,
        )


# ---------------------------------------------------------------------- invariants


# jit == eager and vmap == batch: tests/test_invariants.py, for every loss.


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("sparse", [True, False])
def test_masking_equals_slicing(rng, sparse, reduction):
    x = _logits(rng, (10, 6))
    tgt = _labels(rng, (10,), 6) if sparse else _soft(rng, (10, 6))
    keep = rng.random(10) < 0.6
    fn = SPARSE if sparse else CE
    w = rng.uniform(0.5, 2, 6).astype(np.float32)
    kw = dict(class_weights=w, label_smoothing=0.1, z_loss=1e-3, reduction=reduction)

    def masked(x):
        return fn(x, tgt, where=keep, **kw)

    def sliced(x):
        return fn(x[keep], tgt[keep], **kw)

    np.testing.assert_allclose(masked(x), sliced(x), rtol=1e-6)
    g = jax.grad(masked)(x)
    np.testing.assert_allclose(g[keep], jax.grad(sliced)(x)[keep], rtol=1e-5, atol=1e-8)
    assert np.all(g[~keep] == 0)


def test_ignore_index_equals_slicing(rng):
    x = _logits(rng, (12, 5))
    y = _labels(rng, (12,), 5)
    y[[1, 4, 5]] = -100
    keep = y != -100

    def masked(x):
        return SPARSE(x, y, ignore_index=-100, reduction="mean", label_smoothing=0.1)

    def sliced(x):
        return SPARSE(x[keep], y[keep], reduction="mean", label_smoothing=0.1)

    np.testing.assert_allclose(masked(x), sliced(x), rtol=1e-6)
    g = jax.grad(masked)(x)
    np.testing.assert_allclose(g[keep], jax.grad(sliced)(x)[keep], rtol=1e-5)
    assert np.all(g[~keep] == 0)


@pytest.mark.parametrize("axis", [0, 1, 2, -2])
@pytest.mark.parametrize("sparse", [True, False])
def test_axis_equals_moveaxis(rng, axis, sparse):
    x = _logits(rng, (3, 4, 5))
    last = np.moveaxis(x, axis, -1)
    num_classes = last.shape[-1]
    w = rng.uniform(0.5, 2, num_classes).astype(np.float32)
    kw = dict(class_weights=w, label_smoothing=0.1, z_loss=1e-3)
    if sparse:
        y = _labels(rng, last.shape[:-1], num_classes)
        got = SPARSE(x, y, axis=axis, **kw)
        want = SPARSE(last, y, **kw)
        g = jax.grad(lambda x: SPARSE(x, y, axis=axis, **kw).sum())(x)
        g_last = jax.grad(lambda x: SPARSE(x, y, **kw).sum())(last)
    else:
        t_last = _soft(rng, last.shape)
        t = np.moveaxis(t_last, -1, axis)
        got = CE(x, t, axis=axis, **kw)
        want = CE(last, t_last, **kw)
        g = jax.grad(lambda x: CE(x, t, axis=axis, **kw).sum())(x)
        g_last = jax.grad(lambda x: CE(x, t_last, **kw).sum())(last)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(np.moveaxis(g, axis, -1), g_last, rtol=1e-5, atol=1e-8)


# Every combination of class weights, smoothing and z-loss, each under two of the three
# reductions (every reduction with and without a mask): 16 option sets that cover every
# pair of options, instead of the 48 of the full product.
OPTION_GRID = [
    dict(
        class_weights=cw,
        label_smoothing=ls,
        z_loss=z,
        reduction=("none", "sum", "mean")[(i + j) % 3],
        where=(None, "random")[(i + j) % 2],
    )
    for i, (cw, ls, z) in enumerate(itertools.product([None, "random"], [0.0, 0.3], [0.0, 1e-2]))
    for j in (0, 1)
]


@pytest.mark.parametrize("opts", OPTION_GRID)
def test_sparse_equals_one_hot(rng, opts):
    x = _logits(rng, (8, 5))
    if not opts["label_smoothing"]:  # smoothing puts mass on it: an infinite loss
        x[2, 3] = -np.inf  # a masked class that is not the label
    y = _labels(rng, (8,), 5)
    y[2] = 1
    o = _materialize(opts, rng, (8,), 5)
    cw = o.pop("class_weights")
    t = _one_hot(y, 5)

    def sparse(x, cw):
        return SPARSE(x, y, class_weights=cw, **o)

    def dense(x, cw):
        return CE(x, t, class_weights=cw, **o)

    np.testing.assert_allclose(sparse(x, cw), dense(x, cw), rtol=1e-6, atol=1e-7)
    argnums = (0,) if cw is None else (0, 1)
    ct = np.ones(np.shape(sparse(x, cw)), np.float32)
    gs = jax.vjp(
        lambda *a: sparse(*a) if cw is not None else sparse(a[0], None),
        *((x, cw) if cw is not None else (x,)),
    )[1](ct)
    gd = jax.vjp(
        lambda *a: dense(*a) if cw is not None else dense(a[0], None),
        *((x, cw) if cw is not None else (x,)),
    )[1](ct)
    assert len(gs) == len(argnums)
    for a, b in zip(gs, gd):  # equal up to float32 rounding (the kernels shift differently)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert np.all(np.isfinite(a))


def test_all_masked_mean_is_zero_with_zero_gradient(rng):
    x = _logits(rng, (4, 5))
    y = _labels(rng, (4,), 5)
    t = _soft(rng, (4, 5))
    none = np.zeros(4, bool)
    cases = [
        lambda x: SPARSE(x, y, where=none, reduction="mean"),
        lambda x: SPARSE(x, np.full(4, -1), ignore_index=-1, reduction="mean"),
        lambda x: CE(
            x,
            t,
            where=none,
            reduction="mean",
            class_weights=np.ones(5, np.float32),
            label_smoothing=0.1,
            z_loss=1.0,
        ),
        lambda x: SPARSE(x, y, class_weights=np.zeros(5, np.float32), reduction="mean"),
    ]
    for f in cases:
        value, grad = jax.value_and_grad(f)(x)
        assert value == 0.0
        assert np.all(grad == 0)


# ------------------------------------------------------------------------ numerics


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("sparse", [True, False])
def test_half_precision_computes_in_float32(rng, dtype, sparse):
    x = jnp.asarray(_logits(rng, (6, 50), scale=4.0), dtype)
    tgt = _labels(rng, (6,), 50) if sparse else _soft(rng, (6, 50)).astype(dtype)
    fn = SPARSE if sparse else CE
    kw = dict(label_smoothing=0.1, z_loss=1e-3)
    out = fn(x, tgt, **kw)
    assert out.dtype == jnp.float32
    # Same as float32 on the same (rounded) inputs: computed in float32 inside.
    tgt32 = tgt if sparse else tgt.astype(jnp.float32)
    np.testing.assert_allclose(out, fn(x.astype(jnp.float32), tgt32, **kw), rtol=1e-6)
    g = jax.grad(lambda x: fn(x, tgt, reduction="mean", **kw))(x)
    assert g.dtype == dtype
    g32 = jax.grad(lambda x: fn(x, tgt32, reduction="mean", **kw))(x.astype(jnp.float32))
    np.testing.assert_allclose(g.astype(np.float32), g32, rtol=1e-2, atol=1e-4)
    if not sparse:
        gt = jax.grad(lambda t: fn(x, t, reduction="sum"))(tgt)
        assert gt.dtype == dtype


@pytest.mark.parametrize("sparse", [True, False])
def test_neg_inf_logits_equal_dropping_the_class(rng, sparse):
    x = _logits(rng, (5, 6))
    x[:, 4] = -np.inf  # a vocabulary slot that does not exist
    x[1, 0] = -np.inf
    y = np.array([0, 1, 2, 3, 5])
    keep = np.arange(6) != 4
    w = rng.uniform(0.5, 2, 6).astype(np.float32)
    if sparse:

        def f(x):
            return SPARSE(x, y, class_weights=w, z_loss=1e-2)

        y_dropped = np.where(y > 4, y - 1, y)

        def f_dropped(x):
            return SPARSE(x, y_dropped, class_weights=w[keep], z_loss=1e-2)
    else:
        t = _one_hot(y, 6) * 0.7 + _one_hot((y + 1) % 6, 6) * 0.3
        t[:, 4] = 0
        t[1, 0] = 0

        def f(x):
            return CE(x, t, class_weights=w, z_loss=1e-2)

        def f_dropped(x):
            return CE(x, t[:, keep], class_weights=w[keep], z_loss=1e-2)

    value = f(x)
    assert np.all(np.isfinite(value))
    np.testing.assert_allclose(value, f_dropped(x[:, keep]), rtol=1e-6)
    g = jax.grad(lambda x: f(x).sum())(x)
    assert np.all(np.isfinite(g))
    assert np.all(g[:, 4] == 0) and g[1, 0] == 0
    np.testing.assert_allclose(
        g[:, keep], jax.grad(lambda x: f_dropped(x).sum())(x[:, keep]), rtol=1e-5, atol=1e-7
    )
    # Forward mode and the Hessian stay finite as well.
    _, tangent = jax.jvp(lambda x: f(x).sum(), (x,), (np.ones_like(x),))
    assert np.isfinite(tangent)
    assert np.all(np.isfinite(jax.hessian(lambda x: f(x).sum())(x)))
    if not sparse:  # gradient w.r.t. targets: -log p, and 0 for a -inf class
        gt = jax.grad(lambda t: CE(x, t).sum())(t)
        assert np.all(np.isfinite(gt)) and np.all(gt[:, 4] == 0)


@pytest.mark.parametrize("opts", [dict(label_smoothing=0.1), dict(), dict(class_weights=1)])
def test_target_mass_on_neg_inf_class_is_an_infinite_loss(rng, opts):
    """As in PyTorch: smoothing (or a label) on a -inf class makes the loss inf; the
    logits' gradient stays finite, and integer and one-hot labels agree."""
    x = _logits(rng, (3, 4))
    x[0, 2] = -np.inf
    y = np.array([1, 2, 3]) if opts else np.array([2, 1, 3])
    if opts.get("class_weights") == 1:
        opts = dict(class_weights=np.array([1.0, 1.0, 1.0, 0.5], np.float32))
        y = np.array([2, 1, 3])
    for loss in (SPARSE(x, y, **opts), CE(x, _one_hot(y, 4), **opts)):
        assert loss[0] == np.inf and np.all(np.isfinite(loss[1:]))
    for g in (
        jax.grad(lambda x: SPARSE(x, y, **opts).sum())(x),
        jax.grad(lambda x: CE(x, _one_hot(y, 4), **opts).sum())(x),
    ):
        assert np.all(np.isfinite(g))
    np.testing.assert_allclose(SPARSE(x, y, **opts)[1:], ref.np_sparse(x, y, **opts)[1:], rtol=1e-5)


def test_zero_class_weight_on_neg_inf_class_is_not_nan(rng):
    x = _logits(rng, (2, 4))
    x[:, 3] = -np.inf
    w = np.array([1.0, 2.0, 1.0, 0.0], np.float32)
    for loss in (
        SPARSE(x, np.array([3, 0]), class_weights=w, label_smoothing=0.2),
        CE(x, _one_hot(np.array([3, 0]), 4), class_weights=w, label_smoothing=0.2),
    ):
        assert np.all(np.isfinite(loss))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("sparse", [True, False])
def test_masked_rows_with_nan_or_inf_get_zero_gradient(rng, sparse, bad):
    x = _logits(rng, (4, 5))
    x[1] = bad
    x[2, 3] = bad
    keep = np.array([True, False, False, True])
    tgt = _labels(rng, (4,), 5) if sparse else _soft(rng, (4, 5))
    if not sparse:
        tgt[1] = np.nan  # masked targets may be garbage too
    fn = SPARSE if sparse else CE
    kw = dict(where=keep, label_smoothing=0.1, z_loss=1e-2, class_weights=np.ones(5, np.float32))
    for reduction in ("none", "mean", "sum"):
        value, g = jax.value_and_grad(lambda x: jnp.sum(fn(x, tgt, reduction=reduction, **kw)))(x)
        assert np.isfinite(value)
        assert np.all(np.isfinite(g))
        assert np.all(g[~keep] == 0)
    assert np.all(fn(x, tgt, **kw)[~keep] == 0)
    if not sparse:
        gt = jax.grad(lambda t: CE(x, t, reduction="sum", **kw))(tgt)
        assert np.all(gt[~keep] == 0) and np.all(np.isfinite(gt))
    # learned class weights see nothing of the masked rows either
    kw.pop("class_weights")
    for reduction in ("none", "mean"):
        gw = jax.grad(lambda w: jnp.sum(fn(x, tgt, class_weights=w, reduction=reduction, **kw)))(
            np.ones(5, np.float32)
        )
        assert np.all(np.isfinite(gw))


@pytest.mark.parametrize(
    "sparse,opts",
    [(s, o) for s in (True, False) for o in OPTIONS] + [(True, {"ignore_index": 2})],
)
def test_logits_far_above_the_target_agree_with_reference(rng, sparse, opts):
    # A logit 250 above the target's (exp would overflow from the target's side) in
    # row 1; row 2 is masked (when masking) and holds NaN.
    if sparse and "ignore_index" not in opts and "where" not in opts:
        opts = dict(opts, where="random")
    x = _logits(rng, (6, 9))
    y = _labels(rng, (6,), 9)
    y[1], y[2] = 4, 2
    x[1, 4], x[1, 7] = -100.0, 150.0
    t = _soft(rng, (6, 9))
    t[1] = _one_hot(np.array(4), 9)
    o = _materialize(opts, rng, (6,), 9)
    if "where" in o:
        o["where"][[0, 1]] = True
        o["where"][2] = False
        x[2] = np.nan
    tgt = y if sparse else t
    fn = SPARSE if sparse else CE
    reference = ref.np_sparse if sparse else ref.np_categorical
    got = fn(x, tgt, **o)
    want = reference(np.nan_to_num(x), tgt, **o)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    assert np.isfinite(got[1]) and got[1] > 200
    # each example's gradient is the one it gets alone (on the fast path)
    g = np.asarray(jax.grad(lambda x: jnp.sum(fn(x, tgt, **o)))(x))
    assert np.all(np.isfinite(g))
    if "where" in o:
        assert np.all(g[2] == 0)
    rows = np.array([0, 3, 4, 5])
    sliced = {k: (v[rows] if k == "where" else v) for k, v in o.items()}
    g_alone = jax.grad(lambda x: jnp.sum(fn(x, tgt[rows], **sliced)))(x[rows])
    np.testing.assert_allclose(g[rows], g_alone, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("scale", [1e4, 1e30, 3e38])
@pytest.mark.parametrize("sparse", [True, False])
def test_huge_logits_stay_finite_and_accurate(rng, sparse, scale):
    x = (rng.standard_normal((4, 6)) * 0.1).astype(np.float64)
    x[:, 2] += 1.0
    x = (x * scale).astype(np.float32) if scale < 3e38 else x.astype(np.float32)
    if scale >= 3e38:
        x[:, 0] = 3e38
        x[:, 1] = -3e38
    y = np.array([2, 0, 3, 3])  # the loss of a label at -3e38 would overflow float32
    tgt = y if sparse else _one_hot(y, 6)
    fn = SPARSE if sparse else CE
    value = fn(x, tgt)
    want = ref.np_sparse(x, y)
    assert np.all(np.isfinite(value))
    np.testing.assert_allclose(value, want, rtol=1e-6)
    g = jax.grad(lambda x: fn(x, tgt, reduction="sum"))(x)
    assert np.all(np.isfinite(g))


def test_huge_logits_keep_precision_where_naive_cancels():
    # lse - x_y with both ~ 1e4: the difference of two close float32 numbers
    x = np.array([[1e4, 1e4 + 1.0]], np.float32)
    np.testing.assert_allclose(SPARSE(x, np.array([1])), math.log1p(math.exp(-1)), rtol=1e-6)


def test_out_of_range_labels_are_nan_never_wrapped(rng):
    x = _logits(rng, (5, 4))
    y = np.array([0, -100, 4, -1, 3])
    out = SPARSE(x, y)
    assert np.isfinite(out[0]) and np.isfinite(out[4])
    assert np.all(np.isnan(out[1:4]))  # optax would read -100 as class 0 here
    assert np.isnan(SPARSE(x, y, reduction="mean"))
    # ignore_index makes -100 a skip; the others stay NaN
    out = SPARSE(x, y, ignore_index=-100)
    assert out[1] == 0 and np.isnan(out[2]) and np.isnan(out[3])
    # masked-out bad labels are fine
    keep = np.array([True, False, False, False, True])
    value, g = jax.value_and_grad(lambda x: SPARSE(x, y, where=keep, reduction="mean"))(x)
    assert np.isfinite(value) and np.all(np.isfinite(g))
    # class_weights do not make a bad label read another class's weight
    assert np.isnan(SPARSE(x, y, class_weights=np.ones(4, np.float32))[2])


def test_small_integer_label_dtypes(rng):
    x = _logits(rng, (4, 300))
    y = np.array([0, 200, 299, 5])
    want = SPARSE(x, y.astype(np.int32))
    np.testing.assert_allclose(SPARSE(x, y.astype(np.uint16)), want)
    np.testing.assert_allclose(
        SPARSE(x, (y % 256).astype(np.uint8)), SPARSE(x, (y % 256).astype(np.int32))
    )
    np.testing.assert_allclose(
        SPARSE(x[:, :100], (y % 100).astype(np.int8)),
        SPARSE(x[:, :100], (y % 100).astype(np.int32)),
    )


def test_targets_not_renormalized_and_integer_targets(rng):
    x = _logits(rng, (3, 4))
    t = _soft(rng, (3, 4))
    np.testing.assert_allclose(CE(x, 0.5 * t), 0.5 * CE(x, t), rtol=1e-6)
    # a target outside [0, 1] is out of domain: NaN for that example only
    bad = t.copy()
    bad[1, 2] = 1.5
    out = np.asarray(CE(x, bad))
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()
    y = np.array([0, 3, 1])
    np.testing.assert_allclose(CE(x, _one_hot(y, 4).astype(np.int32)), SPARSE(x, y), rtol=1e-6)


# ------------------------------------------------------------- optax drop-in names


@pytest.mark.parametrize(
    "shape,axis",
    [((6, 5), -1), ((6, 5), 0), ((2, 3, 4), 1), ((2, 3, 4), (1, 2)), ((2, 3, 4), None)],
)
def test_softmax_cross_entropy_matches_optax(rng, shape, axis):
    x = _logits(rng, shape)
    t = rng.random(shape).astype(np.float32)
    np.testing.assert_allclose(
        jaxloss.softmax_cross_entropy(x, t, axis),
        optax.softmax_cross_entropy(x, t, axis),
        rtol=1e-5,
        atol=1e-6,
    )
    ga = jax.grad(lambda x, t: jaxloss.softmax_cross_entropy(x, t, axis).sum(), (0, 1))
    gb = jax.grad(lambda x, t: optax.softmax_cross_entropy(x, t, axis).sum(), (0, 1))
    for a, b in zip(ga(x, t), gb(x, t)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "shape,axis", [((6, 5), -1), ((6, 5), 0), ((2, 3, 4), 1), ((1, 2, 3, 4), (2, 3))]
)
def test_integer_labels_match_optax(rng, shape, axis):
    x = _logits(rng, shape)
    axes = (axis,) if isinstance(axis, int) else axis
    axes = tuple(a % len(shape) for a in axes)
    batch = tuple(s for i, s in enumerate(shape) if i not in axes)
    num_classes = math.prod(shape[a] for a in axes)
    y = _labels(rng, batch, num_classes)
    np.testing.assert_allclose(
        jaxloss.softmax_cross_entropy_with_integer_labels(x, y, axis),
        optax.softmax_cross_entropy_with_integer_labels(x, y, axis),
        rtol=1e-5,
    )
    ga = jax.grad(lambda x: jaxloss.softmax_cross_entropy_with_integer_labels(x, y, axis).sum())(x)
    gb = jax.grad(lambda x: optax.softmax_cross_entropy_with_integer_labels(x, y, axis).sum())(x)
    np.testing.assert_allclose(ga, gb, rtol=1e-5, atol=1e-7)


def test_optax_per_example_where_agrees(rng):
    x = _logits(rng, (6, 5))
    y = _labels(rng, (6,), 5)
    t = _soft(rng, (6, 5))
    keep = rng.random(6) < 0.5
    np.testing.assert_allclose(
        jaxloss.softmax_cross_entropy_with_integer_labels(x, y, where=keep),
        optax.softmax_cross_entropy_with_integer_labels(x, y, where=keep),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        jaxloss.softmax_cross_entropy(x, t, where=keep),
        optax.softmax_cross_entropy(x, t, where=keep),
        rtol=1e-6,
        atol=1e-7,
    )


def test_optax_class_level_where_is_the_neg_inf_logits_form(rng):
    x, t = _logits(rng, (6, 5)), _soft(rng, (6, 5))
    keep = rng.random((6, 5)) < 0.7
    keep[0] = False  # no class left: 0, as in optax
    ours = jaxloss.softmax_cross_entropy(x, t, where=keep)
    np.testing.assert_allclose(ours, optax.softmax_cross_entropy(x, t, where=keep), rtol=1e-5)
    expected = CE(np.where(keep, x, -np.inf), np.where(keep, t, 0), where=keep.any(-1))
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    assert ours[0] == 0


def test_neg_inf_logit_with_zero_target_has_exact_finite_gradient():
    x = np.array([[0.0, -np.inf, 1.0]], np.float32)
    t = np.array([[0.5, 0.0, 0.5]], np.float32)
    g_ours = jax.grad(lambda x: CE(x, t).sum())(x)
    assert np.all(np.isfinite(g_ours))
    # optax 0.2.8 agrees (earlier optax versions gave NaN here)
    g_optax = jax.grad(lambda x: optax.softmax_cross_entropy(x, t).sum())(x)
    np.testing.assert_allclose(g_ours, g_optax, rtol=1e-6)
    np.testing.assert_allclose(
        g_ours, [[-0.5 + 1 / (1 + np.e), 0.0, -0.5 + np.e / (1 + np.e)]], rtol=1e-6
    )


# -------------------------------------------------------------------------- errors


def _err(exc, match, f, *a, **k):
    with pytest.raises(exc, match=match):
        f(*a, **k)


def test_trace_time_errors_name_the_argument():
    x = np.zeros((8, 5), np.float32)
    y = np.zeros(8, np.int32)
    t = np.zeros((8, 5), np.float32)
    _err(
        ValueError,
        r"labels has shape \(8, 3\) but logits \(8, 5\) .* need labels "
        r"of shape \(8,\)",
        SPARSE,
        x,
        np.zeros((8, 3), np.int32),
    )
    _err(
        TypeError, "labels must have an integer dtype, got float32", SPARSE, x, y.astype(np.float32)
    )
    _err(TypeError, "logits must have a floating dtype, got int32", SPARSE, x.astype(np.int32), y)
    _err(ValueError, "logits must have at least 1 dimension", SPARSE, np.float32(1), y)
    _err(ValueError, r"targets has shape \(8, 4\) but logits have shape \(8, 5\)", CE, x, t[:, :4])
    _err(
        ValueError,
        r"class_weights has shape \(4,\) but logits have 5 classes",
        SPARSE,
        x,
        y,
        class_weights=np.ones(4, np.float32),
    )
    _err(
        ValueError,
        r"class_weights has shape \(5, 1\)",
        CE,
        x,
        t,
        class_weights=np.ones((5, 1), np.float32),
    )
    _err(
        TypeError,
        "class_weights must have a floating dtype",
        SPARSE,
        x,
        y,
        class_weights=np.ones(5, np.int32),
    )
    for bad in (-0.1, 1.5):
        _err(ValueError, r"label_smoothing must be in \[0, 1\]", SPARSE, x, y, label_smoothing=bad)
    _err(ValueError, "z_loss must be >= 0", CE, x, t, z_loss=-1.0)
    _err(ValueError, "reduction must be one of", SPARSE, x, y, reduction="avg")
    _err(ValueError, "reduction must be one of", CE, x, t, reduction="batchmean")
    _err(ValueError, "axis=2 is out of range for logits", SPARSE, x, y, axis=2)
    _err(ValueError, "axis=-3 is out of range", CE, x, t, axis=-3)
    _err(TypeError, "axis must be an int", CE, x, t, axis=1.0)
    _err(
        ValueError,
        r"where has shape \(7,\), which does not broadcast to the "
        r"per-example shape \(8,\)",
        SPARSE,
        x,
        y,
        where=np.ones(7, bool),
    )
    _err(TypeError, "where must be a boolean mask", SPARSE, x, y, where=np.ones(8, np.float32))
    _err(TypeError, "ignore_index must be a Python int", SPARSE, x, y, ignore_index=1.5)
    _err(
        TypeError,
        "label_smoothing must be a Python number known at trace time",
        jax.jit(lambda s: SPARSE(x, y, label_smoothing=s)),
        0.1,
    )
    _err(TypeError, "label_smoothing must be a number", SPARSE, x, y, label_smoothing="a")
    with pytest.raises(TypeError, match="2 positional arguments"):
        SPARSE(x, y, -1)  # options are keyword-only


def test_errors_are_raised_at_trace_time_under_jit():
    x = jnp.zeros((8, 5))

    @jax.jit
    def f(x, y):
        return SPARSE(x, y)

    with pytest.raises(ValueError, match="labels has shape"):
        jax.eval_shape(f, x, jnp.zeros((8, 3), jnp.int32))


# ------------------------------------------------------------ the z-loss term, for logging


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("sparse", [True, False])
def test_return_z_loss_is_the_z_term_reduced_like_the_loss(rng, reduction, sparse):
    x = _logits(rng, (6, 5))
    y = rng.integers(0, 5, 6)
    t = np.eye(5, dtype=np.float32)[y] if not sparse else y
    f = jaxloss.sparse_categorical_cross_entropy if sparse else CE
    options = dict(
        where=np.array([1, 1, 0, 1, 1, 1], bool),
        sample_weight=rng.uniform(0.5, 2.0, 6).astype(np.float32),
        class_weights=rng.uniform(0.5, 2.0, 5).astype(np.float32),
        reduction=reduction,
    )
    loss, z_term = f(x, t, z_loss=1e-2, return_z_loss=True, **options)
    np.testing.assert_allclose(loss, f(x, t, z_loss=1e-2, **options), rtol=1e-6)
    np.testing.assert_allclose(loss - z_term, f(x, t, **options), rtol=1e-5, atol=1e-6)
    # z lse**2, weighted and reduced with the loss's own weights
    z = 1e-2 * np.asarray(ref.np_logsumexp(x.astype(np.float64)), np.float64) ** 2
    s = options["sample_weight"] * options["where"]
    w = options["class_weights"][y] * s
    want = {"none": z * s, "sum": np.sum(z * s), "mean": np.sum(z * s) / np.sum(w)}[reduction]
    np.testing.assert_allclose(z_term, want, rtol=1e-5)
    # the term is for logging: no gradient of its own; the loss's gradient is unchanged
    g = jax.grad(lambda x: jnp.sum(f(x, t, z_loss=1e-2, return_z_loss=True, **options)[1]))(x)
    assert np.all(g == 0)


def test_return_z_loss_takes_no_second_pass_over_the_logits():
    x = jnp.ones((64, 1000))
    y = jnp.zeros(64, jnp.int32)

    def program(return_z_loss):
        def loss(x):
            out = jaxloss.sparse_categorical_cross_entropy(
                x, y, z_loss=1e-4, reduction="mean", return_z_loss=return_z_loss
            )
            return out[0] + 0 * out[1] if return_z_loss else out

        return jax.jit(jax.value_and_grad(loss)).lower(x).compile().as_text()

    plain, logged = program(False), program(True)
    # the same exponentials (one pass for the statistics, one for the gradient)
    assert logged.count("exponential(") == plain.count("exponential(")
