"""Losses on given log-probabilities: ``nll_loss`` (PyTorch's NLLLoss) and optax's
``kl_divergence_with_log_targets``, ``generalized_kl_divergence`` and
``convex_kl_divergence``: values against float64 formulas and optax, golden numbers,
derivatives, jit/vmap, axes, reductions, NaN-safety, bad values and trace-time errors."""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss
from jaxloss.testing import check_derivatives
from tests import reference as ref

NLL = jaxloss.nll_loss
KLT = jaxloss.kl_divergence_with_log_targets
GKL = jaxloss.generalized_kl_divergence
CKL = jaxloss.convex_kl_divergence
SPARSE = jaxloss.sparse_categorical_cross_entropy


# ---------------------------------------------------------------- float64 references


def _reduce(losses, weights, reduction):
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    total = weights.sum()
    return 0.0 if total == 0 else losses.sum() / total


def np_nll(
    log_probs,
    labels,
    *,
    axis=-1,
    where=None,
    sample_weight=None,
    class_weights=None,
    ignore_index=None,
    reduction="none",
):
    """PyTorch's nll_loss: l_i = -w_{y_i} lp_{i y_i}; mean = sum s l / sum s w_y."""
    lp = np.moveaxis(np.asarray(log_probs, np.float64), axis, -1)
    y = np.asarray(labels)
    num_classes = lp.shape[-1]
    w = np.ones(num_classes) if class_weights is None else np.asarray(class_weights, np.float64)
    mask = np.ones(y.shape, bool)
    if where is not None:
        mask &= np.broadcast_to(where, y.shape)
    if ignore_index is not None:
        mask &= y != ignore_index
    in_range = (y >= 0) & (y < num_classes)
    y_safe = np.where(in_range & mask, y, 0)
    lp_y = np.take_along_axis(lp, y_safe[..., None], -1)[..., 0]
    w_y = w[y_safe]
    with np.errstate(invalid="ignore"):
        losses = np.where(w_y == 0, 0.0, -w_y * lp_y)
    losses = np.where(in_range, losses, np.nan)
    s = np.ones(y.shape) if sample_weight is None else np.broadcast_to(sample_weight, y.shape)
    losses = np.where(mask, s * losses, 0.0)
    return _reduce(losses, np.where(mask, s * w_y, 0.0), reduction)


def _terms_reduce(terms, axis, where, reduction):
    """Sums elementwise terms over the class axis; ``where`` masks elements (the
    inputs' rank) or examples (the per-example shape); mean over unmasked examples."""
    example = np.ones(np.delete(terms.shape, axis % terms.ndim), bool)
    if where is not None:
        where = np.asarray(where)
        if where.ndim == terms.ndim:  # elementwise, as in optax
            terms = np.where(np.broadcast_to(where, terms.shape), terms, 0.0)
        else:
            example = np.broadcast_to(where, example.shape)
    losses = np.where(example, terms.sum(axis), 0.0)
    return _reduce(losses, example.astype(np.float64), reduction)


def np_kl_log_targets(log_predictions, log_targets, *, axis=-1, where=None, reduction="none"):
    """sum_c e^lt (lt - lp), a term with e^lt = 0 being 0."""
    lp = np.asarray(log_predictions, np.float64)
    lt = np.asarray(log_targets, np.float64)
    t = np.exp(lt)
    with np.errstate(invalid="ignore"):
        terms = np.where(t == 0, 0.0, t * (lt - lp))
    return _terms_reduce(terms, axis, where, reduction)


def np_generalized_kl(log_predictions, targets, *, axis=-1, where=None, reduction="none"):
    """sum_c t (log t - lp) + e^lp - t, with 0 log 0 = 0."""
    lp = np.asarray(log_predictions, np.float64)
    t = np.asarray(targets, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(t == 0, 0.0, t * (np.log(np.where(t == 0, 1, t)) - lp))
    return _terms_reduce(cross + np.exp(lp) - t, axis, where, reduction)


# jax.numpy formulas, for autodiff (valid inputs only, no masking)


def jnp_nll(log_probs, labels, class_weights=None):
    lp_y = jnp.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    return -lp_y if class_weights is None else -class_weights[labels] * lp_y


def jnp_kl_log_targets(lp, lt):
    return jnp.sum(jnp.exp(lt) * (lt - lp), -1)


def jnp_generalized_kl(lp, t):
    return jnp.sum(t * (jnp.log(t) - lp) + jnp.exp(lp) - t, -1)


# -------------------------------------------------------------------------- inputs


def _lp(rng, shape, axis=-1):
    """Normalized log-probabilities along ``axis``."""
    x = np.moveaxis(2 * rng.standard_normal(shape), axis, -1)
    return np.moveaxis(ref.np_log_softmax(x), -1, axis).astype(np.float32)


def _labels(rng, shape, num_classes):
    return rng.integers(0, num_classes, shape).astype(np.int32)


def _measure(rng, shape):
    """A positive measure that need not sum to 1."""
    return (2 * rng.random(shape) + 0.05).astype(np.float32)


# ==================================================================== nll_loss

NLL_OPTIONS = [
    {},
    {"class_weights": "random"},
    {"where": "random"},
    {"ignore_index": 2},
    {"sample_weight": "random"},
    {"class_weights": "random", "where": "random", "ignore_index": 0, "sample_weight": "random"},
]


def _nll_options(opts, rng, batch, num_classes):
    out = dict(opts)
    if out.get("class_weights") == "random":
        out["class_weights"] = rng.uniform(0.2, 3.0, num_classes).astype(np.float32)
    if out.get("where") == "random":
        out["where"] = rng.random(batch) < 0.7
    if out.get("sample_weight") == "random":
        out["sample_weight"] = rng.uniform(0.0, 2.0, batch).astype(np.float32)
    return out


@pytest.mark.parametrize(
    "shape,axis,opts",
    [((6, 5), -1, o) for o in NLL_OPTIONS] + [((3, 5, 4), 1, NLL_OPTIONS[-1])],
)
def test_nll_matches_reference(rng, shape, axis, opts):
    lp = _lp(rng, shape, axis)
    batch = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    y = _labels(rng, batch, shape[axis])
    o = _nll_options(opts, rng, batch, shape[axis])
    for reduction in ("none", "sum", "mean"):
        got = NLL(lp, y, axis=axis, reduction=reduction, **o)
        want = np_nll(lp, y, axis=axis, reduction=reduction, **o)
        assert got.dtype == jnp.float32 and got.shape == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=reduction)


def test_nll_pytorch_golden_values_by_hand():
    # torch.nn.functional.nll_loss(input, target, weight=...) on these numbers
    lp = np.array([[-1.2, -0.5, -2.0], [-0.3, -1.5, -2.2]], np.float32)
    y = np.array([1, 0])
    w = np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_allclose(NLL(lp, y), [0.5, 0.3], rtol=1e-6)
    np.testing.assert_allclose(NLL(lp, y, reduction="mean"), 0.4, rtol=1e-6)
    np.testing.assert_allclose(NLL(lp, y, class_weights=w), [1.0, 0.3], rtol=1e-6)
    np.testing.assert_allclose(NLL(lp, y, class_weights=w, reduction="sum"), 1.3, rtol=1e-6)
    np.testing.assert_allclose(
        NLL(lp, y, class_weights=w, reduction="mean"), (2 * 0.5 + 1 * 0.3) / (2 + 1), rtol=1e-6
    )
    # PyTorch's defaults, ignore_index=-100 and reduction="mean": ignored labels leave
    # the denominator
    y_ignored = np.array([1, -100])
    np.testing.assert_allclose(
        NLL(lp, y_ignored, ignore_index=-100, reduction="mean"), 0.5, rtol=1e-6
    )
    np.testing.assert_allclose(
        NLL(lp, y_ignored, ignore_index=-100, class_weights=w, reduction="mean"), 0.5, rtol=1e-6
    )
    # K-dimensional input [N, C, d]: PyTorch's channels-first layout is axis=1
    lp_k = np.array([[[-0.1, -2.0], [-2.4, -0.2]]], np.float32)  # N=1, C=2, d=2
    np.testing.assert_allclose(NLL(lp_k, np.array([[0, 1]]), axis=1), [[0.1, 0.2]], rtol=1e-6)
    np.testing.assert_allclose(
        NLL(lp_k, np.array([[0, 1]]), axis=1, class_weights=np.array([1.0, 3.0], np.float32)),
        [[0.1, 0.6]],
        rtol=1e-6,
    )


def test_nll_gradient_is_minus_weight_at_the_label(rng):
    lp = _lp(rng, (5, 4))
    y = _labels(rng, (5,), 4)
    w = rng.uniform(0.5, 2.0, 4).astype(np.float32)
    g = jax.grad(lambda lp: NLL(lp, y, class_weights=w, reduction="sum"))(lp)
    want = -np.eye(4, dtype=np.float32)[y] * w[y][:, None]
    np.testing.assert_array_equal(g, want)
    # and with respect to the class weights: -sum of lp at the label, per class
    gw = jax.grad(lambda w: NLL(lp, y, class_weights=w, reduction="sum"))(w)
    want_w = np.zeros(4)
    np.add.at(want_w, y, -lp[np.arange(5), y].astype(np.float64))
    np.testing.assert_allclose(gw, want_w, rtol=1e-6)


@pytest.mark.parametrize(
    "opts",
    [
        {"class_weights": "random", "reduction": "mean"},
        {"ignore_index": 1, "reduction": "mean"},
        {"class_weights": "random", "ignore_index": 1, "where": "random", "reduction": "sum"},
    ],
)
def test_nll_after_log_softmax_is_sparse_cross_entropy(rng, opts):
    x = (2 * rng.standard_normal((8, 5))).astype(np.float32)
    y = _labels(rng, (8,), 5)
    y[0] = 1  # at least one ignored label
    o = _nll_options(opts, rng, (8,), 5)

    def nll(x):
        return NLL(jax.nn.log_softmax(x), y, **o)

    def sparse(x):
        return SPARSE(x, y, **o)

    np.testing.assert_allclose(nll(x), sparse(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jax.grad(nll)(x), jax.grad(sparse)(x), rtol=1e-5, atol=1e-7)


def test_nll_masks_are_exact_and_nan_safe(rng):
    lp = _lp(rng, (6, 4))
    y = _labels(rng, (6,), 4)
    keep = np.array([True, False, True, True, False, True])
    bad = lp.copy()
    bad[~keep] = np.nan
    y_bad = y.copy()
    y_bad[1] = 99  # a masked row's label may be anything

    def masked(lp):
        return NLL(lp, y_bad, where=keep, reduction="mean")

    value, g = jax.value_and_grad(masked)(bad)
    np.testing.assert_allclose(value, NLL(lp[keep], y[keep], reduction="mean"), rtol=1e-6)
    assert np.all(g[~keep] == 0) and np.all(np.isfinite(g))
    per_example = NLL(bad, y_bad, where=keep)
    assert np.all(per_example[~keep] == 0)
    # ignore_index: the same, also for a NaN row
    y_ign = np.where(keep, y, -100)
    value, g = jax.value_and_grad(lambda lp: NLL(lp, y_ign, ignore_index=-100, reduction="mean"))(
        bad
    )
    np.testing.assert_allclose(value, NLL(lp[keep], y[keep], reduction="mean"), rtol=1e-6)
    assert np.all(g[~keep] == 0) and np.all(np.isfinite(g))


def test_nll_all_masked_mean_is_zero_with_zero_gradient(rng):
    lp = _lp(rng, (3, 4))
    lp[0] = np.nan
    y = _labels(rng, (3,), 4)
    for kw in (
        dict(where=np.zeros(3, bool)),
        dict(labels=np.full(3, -1, np.int32), ignore_index=-1),
        dict(class_weights=np.zeros(4, np.float32), where=np.array([False, True, True])),
        dict(sample_weight=np.zeros(3, np.float32), where=np.array([False, True, True])),
    ):
        labels = kw.pop("labels", y)
        value, g = jax.value_and_grad(lambda lp: NLL(lp, labels, reduction="mean", **kw))(lp)
        assert value == 0, kw
        assert np.all(g == 0), kw


def test_nll_neg_inf_at_the_label():
    lp = np.array([[0.0, -np.inf, -np.inf], [-0.5, -np.inf, -1.0]], np.float32)
    y = np.array([0, 1])
    # weight 0 at the label: exactly 0, finite gradient (PyTorch: nan = 0 * -inf)
    w = np.array([1.0, 0.0, 1.0], np.float32)
    value, g = jax.value_and_grad(lambda lp: NLL(lp, y, class_weights=w, reduction="sum"))(lp)
    assert value == 0 and np.all(np.isfinite(g))
    np.testing.assert_array_equal(NLL(lp, y, class_weights=w), [0.0, 0.0])
    # ignored: exactly 0, zero gradient
    value, g = jax.value_and_grad(lambda lp: NLL(lp, y, ignore_index=1, reduction="mean"))(lp)
    assert value == 0 and np.all(g[1] == 0)
    # a weighted -inf at the label: +inf (the true loss)
    np.testing.assert_array_equal(NLL(lp, y), [0.0, np.inf])
    # -inf at other classes is harmless
    value, g = jax.value_and_grad(lambda lp: NLL(lp, np.array([0, 0]), reduction="sum"))(lp)
    assert value == 0.5 and np.all(np.isfinite(g))


def test_nll_bad_labels_are_nan_and_checked_raises(rng):
    lp = _lp(rng, (4, 3))
    for bad in (3, -1, -100):
        y = np.array([0, bad, 2, 1], np.int32)
        out = np.asarray(NLL(lp, y))
        assert np.isnan(out[1]) and np.all(np.isfinite(out[[0, 2, 3]])), bad
        assert np.isnan(NLL(lp, y, reduction="mean")), bad
        with pytest.raises(Exception, match=rf"nll_loss: label {bad} .*outside \[0, 3\)"):
            jaxloss.checked(NLL)(lp, y)
    y = np.array([0, 3, 2, -100], np.int32)
    # masked or ignored bad labels are fine, also under checked
    checked = jaxloss.checked(NLL)
    kw = dict(where=np.array([True, False, True, True]), ignore_index=-100, reduction="sum")
    np.testing.assert_allclose(checked(lp, y, **kw), NLL(lp, y, **kw))
    assert np.isfinite(NLL(lp, y, **kw))
    # a negative class weight given as a JAX array: NaN and the check raises
    w = jnp.array([1.0, -1.0, 1.0])
    y = np.array([0, 1, 2, 0], np.int32)
    out = np.asarray(NLL(lp, y, class_weights=w))
    assert np.isnan(out[1]) and np.all(np.isfinite(out[[0, 2, 3]]))
    with pytest.raises(Exception, match="nll_loss: class weight"):
        jaxloss.checked(NLL)(lp, y, class_weights=w)


def test_bad_values_give_nan_gradients_in_reverse_mode(rng):
    lp = _lp(rng, (2, 3))
    g = jax.grad(lambda lp: NLL(lp, np.array([0, 7])).sum())(lp)
    g_kl = jax.grad(lambda lp: KLT(lp, np.array([[0.5, -1.0, -1.0]] * 2, np.float32)).sum())(lp)
    g_gkl = jax.grad(lambda lp: GKL(lp, np.array([[-0.5, 1.0, 1.0]] * 2, np.float32)).sum())(lp)
    assert np.all(np.isnan(g[1])) and np.all(np.isnan(g_kl)) and np.all(np.isnan(g_gkl))


def test_nll_trace_time_errors():
    lp = np.zeros((4, 3), np.float32)
    y = np.zeros(4, np.int32)
    with pytest.raises(ValueError, match=r"nll_loss: labels has shape \(3,\)"):
        NLL(lp, y[:3])
    with pytest.raises(ValueError, match=r"labels has shape \(4,\).*axis=0"):
        NLL(lp, y, axis=0)
    with pytest.raises(TypeError, match="nll_loss: labels must have an integer dtype"):
        NLL(lp, y.astype(np.float32))
    with pytest.raises(ValueError, match="nll_loss: reduction"):
        NLL(lp, y, reduction="batchmean")
    with pytest.raises(ValueError, match="class_weights"):
        NLL(lp, y, class_weights=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="class_weights|class weight"):
        NLL(lp, y, class_weights=np.array([1.0, -1.0, 1.0], np.float32))
    with pytest.raises(ValueError, match="axis=2 is out of range"):
        NLL(lp, y, axis=2)
    with pytest.raises(ValueError, match="where"):
        NLL(lp, y, where=np.ones(3, bool))
    with pytest.raises(TypeError, match="log_probs"):
        NLL(lp.astype(np.int32), y)


# ============================================================== the divergences


def _kl_inputs(rng, shape, axis=-1):
    return _lp(rng, shape, axis), _lp(rng, shape, axis)


def _gkl_inputs(rng, shape, axis=-1):
    lp = (rng.standard_normal(shape) - 1).astype(np.float32)
    t = _measure(rng, shape)
    t.reshape(-1)[::4] = 0  # zero targets: 0 log 0 = 0
    return lp, t


DIVERGENCES = {
    "kl_log_targets": (KLT, np_kl_log_targets, _kl_inputs),
    "generalized_kl": (GKL, np_generalized_kl, _gkl_inputs),
    "convex_kl": (CKL, np_generalized_kl, _gkl_inputs),
}
OPTAX = {
    "kl_log_targets": optax.losses.kl_divergence_with_log_targets,
    "generalized_kl": optax.losses.generalized_kl_divergence,
    # optax.convex_kl_divergence is the same function and warns that it is deprecated
    "convex_kl": optax.losses.generalized_kl_divergence,
}


@pytest.mark.parametrize("name", ["kl_log_targets", "generalized_kl"])  # convex_kl: below
@pytest.mark.parametrize("shape,axis", [((6, 5), -1), ((3, 4, 5), (1, 2)), ((5,), -1)])
def test_divergence_matches_reference(rng, name, shape, axis):
    fn, np_fn, inputs = DIVERGENCES[name]
    a, b = inputs(rng, shape)
    axes = (axis,) if isinstance(axis, int) else axis
    batch = tuple(s for i, s in enumerate(shape) if i not in [x % len(shape) for x in axes])
    np_axis = axis if isinstance(axis, int) else -1
    a64, b64 = a, b
    if not isinstance(axis, int):  # the reference takes one axis: merge the class axes
        a64, b64 = a.reshape(batch + (-1,)), b.reshape(batch + (-1,))
    elem = rng.random(shape) < 0.7
    example = rng.random(batch) < 0.6
    for where, np_where in [(None, None), (elem, elem), (example, example)]:
        if where is not None and not isinstance(axis, int):
            np_where = where.reshape(batch + (-1,)) if where.shape == shape else where
        for reduction in ("none", "sum", "mean"):
            got = fn(a, b, axis=axis, where=where, reduction=reduction)
            want = np_fn(a64, b64, axis=np_axis, where=np_where, reduction=reduction)
            assert got.dtype == jnp.float32 and got.shape == np.shape(want)
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=reduction)


@pytest.mark.parametrize("name", list(DIVERGENCES))
def test_divergence_matches_optax(rng, name):
    fn, _, inputs = DIVERGENCES[name]
    opt = OPTAX[name]
    a, b = inputs(rng, (6, 5))
    wheres = [
        None,
        rng.random((6, 5)) < 0.7,  # elementwise, as in optax
        np.array([[True, False, True, True, False]]),  # broadcast along the batch
        rng.random((6, 1)) < 0.5,  # per example, in optax's elementwise form
    ]
    for where in wheres:
        got = fn(a, b, where=where)
        want = opt(a, b, where=where)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        g = jax.jit(jax.grad(lambda a, b: fn(a, b, where=where).sum(), (0, 1)))(a, b)
        go = jax.jit(jax.grad(lambda a, b: opt(a, b, where=where).sum(), (0, 1)))(a, b)
        # optax's target gradient is NaN at zero targets (log 0); compare elsewhere
        finite = np.isfinite(go[1])
        np.testing.assert_allclose(g[0], go[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g[1][finite], go[1][finite], rtol=1e-5, atol=1e-6)
        assert np.all(np.isfinite(g[1]))
    # jaxloss's per-example form equals optax's mask with the class axis added
    example = rng.random(6) < 0.5
    np.testing.assert_allclose(
        fn(a, b, where=example), opt(a, b, where=example[:, None]), rtol=1e-5, atol=1e-6
    )
    # axis, as in optax
    a3, b3 = inputs(rng, (3, 4, 5))
    np.testing.assert_allclose(fn(a3, b3, axis=1), opt(a3, b3, axis=1), rtol=1e-5, atol=1e-6)


def test_convex_kl_is_generalized_kl_and_optax_deprecates_it(rng):
    lp, t = _gkl_inputs(rng, (4, 5))
    np.testing.assert_array_equal(CKL(lp, t), GKL(lp, t))
    with pytest.warns(DeprecationWarning, match="generalized_kl_divergence"):
        want = optax.convex_kl_divergence(lp, t)
    np.testing.assert_allclose(CKL(lp, t), want, rtol=1e-5, atol=1e-6)


def test_divergence_golden_values_by_hand():
    ln = math.log
    log_p = np.log(np.array([[0.25, 0.75]], np.float32))
    log_t = np.log(np.array([[0.5, 0.5]], np.float32))
    np.testing.assert_allclose(
        KLT(log_p, log_t), [0.5 * ln(0.5 / 0.25) + 0.5 * ln(0.5 / 0.75)], rtol=1e-6
    )
    # not renormalized: KL(t || p) + the mass terms; for the measures p = [1, 2], t = [2, 2]
    lp = np.log(np.array([[1.0, 2.0]], np.float32))
    t = np.array([[2.0, 2.0]], np.float32)
    np.testing.assert_allclose(GKL(lp, t), [2 * ln(2) + 1 - 2 + 0 + 2 - 2], rtol=1e-6)
    # a zero target contributes exp(lp); equal measures give 0
    np.testing.assert_allclose(GKL(lp, np.array([[0.0, 2.0]], np.float32)), [1.0], rtol=1e-6)
    np.testing.assert_allclose(GKL(lp, np.array([[1.0, 2.0]], np.float32)), [0.0], atol=1e-6)
    # optax's own test numbers (optax/losses/_classification_test.py)
    log_ps = np.array(
        [
            [-2.9957, -3.5066, -3.9120, -1.2040, -0.6931, -2.3026],
            [-1.6094, -1.6094, -1.6094, -2.3026, -1.8971, -1.8971],
        ]
    )
    qs = np.array([[0.2, 0.2, 0.2, 0.1, 0.15, 0.15], [0.05, 0.03, 0.02, 0.3, 0.5, 0.0]])
    np.testing.assert_allclose(GKL(log_ps, qs), [0.88757247, 0.859308], atol=1e-4)
    np.testing.assert_allclose(KLT(log_ps, log_ps[::-1]), [0.8875625, 0.7187436], atol=1e-4)


@pytest.mark.parametrize("name", list(DIVERGENCES))
def test_divergence_reductions_and_masked_nan_rows(rng, name):
    fn, _, inputs = DIVERGENCES[name]
    a, b = inputs(rng, (6, 5))
    keep = np.array([True, False, True, True, False, True])
    a_bad, b_bad = a.copy(), b.copy()
    a_bad[~keep] = np.nan
    b_bad[~keep] = np.nan
    sliced = fn(a[keep], b[keep])
    for reduction, want in [("sum", sliced.sum()), ("mean", sliced.mean())]:
        value, (ga, gb) = jax.jit(
            jax.value_and_grad(lambda a, b: fn(a, b, where=keep, reduction=reduction), (0, 1))
        )(a_bad, b_bad)
        np.testing.assert_allclose(value, want, rtol=1e-5)
        for g in (ga, gb):
            assert np.all(g[~keep] == 0) and np.all(np.isfinite(g))
    out = fn(a_bad, b_bad, where=keep)
    assert np.all(out[~keep] == 0) and np.all(np.isfinite(out))
    # optax's elementwise form: a dropped NaN element is exactly 0 with zero gradient
    drop = np.ones((6, 5), bool)
    drop[0, 1] = drop[2, 3] = False
    a_el, b_el = a.copy(), b.copy()
    a_el[~drop] = np.nan
    b_el[~drop] = np.nan
    value, (ga, gb) = jax.jit(jax.value_and_grad(lambda a, b: fn(a, b, where=drop).sum(), (0, 1)))(
        a_el, b_el
    )
    np.testing.assert_allclose(value, fn(a, b, where=drop).sum(), rtol=1e-6)
    for g in (ga, gb):
        assert np.all(g[~drop] == 0) and np.all(np.isfinite(g))
    # everything masked: "mean" is 0 with zero gradients
    value, (ga, gb) = jax.jit(
        jax.value_and_grad(lambda a, b: fn(a, b, where=np.zeros(6, bool), reduction="mean"), (0, 1))
    )(a_bad, b_bad)
    assert value == 0 and np.all(ga == 0) and np.all(gb == 0)


def test_kl_log_targets_neg_inf_is_zero_where_optax_is_nan():
    lp = np.array([[-np.inf, 0.0, -1.0]], np.float32)
    lt = np.array([[-np.inf, -0.5, -1.0]], np.float32)
    with np.errstate(invalid="ignore"):
        assert np.isnan(optax.losses.kl_divergence_with_log_targets(lp, lt)[0])
    value = KLT(lp, lt)
    want = math.exp(-0.5) * -0.5 + 0.0
    np.testing.assert_allclose(value, [want], rtol=1e-6)
    ga, gb = jax.grad(lambda a, b: KLT(a, b).sum(), (0, 1))(lp, lt)
    assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gb))
    assert ga[0, 0] == 0 and gb[0, 0] == 0
    np.testing.assert_allclose(ga[0, 1:], -np.exp(lt[0, 1:]), rtol=1e-6)
    h = jax.hessian(lambda b: KLT(lp, b).sum())(lt)
    assert np.all(np.isfinite(h))
    # a finite log-target against a -inf log-prediction: +inf
    assert (
        KLT(np.array([[-np.inf, 0.0]], np.float32), np.log(np.full((1, 2), 0.5, np.float32)))[0]
        == np.inf
    )
    # generalized KL: a zero target against a -inf log-prediction contributes 0
    v, g = jax.value_and_grad(lambda a: GKL(a, np.array([[0.0, 1.0]], np.float32)).sum())(
        np.array([[-np.inf, 0.0]], np.float32)
    )
    assert v == 0 and np.all(np.isfinite(g))


def test_generalized_kl_zero_targets_have_finite_target_gradients():
    lp = np.log(np.array([[1.0, 2.0, 0.5]], np.float32))
    t = np.array([[0.0, 2.0, 0.5]], np.float32)
    gl, gt = jax.grad(lambda a, b: GKL(a, b).sum(), (0, 1))(lp, t)
    np.testing.assert_allclose(gl, np.exp(lp) - t, rtol=1e-6)
    assert np.all(np.isfinite(gt))
    np.testing.assert_allclose(gt[0, 1:], np.log(t[0, 1:]) - lp[0, 1:], atol=1e-6)


def test_divergence_bad_values_are_nan_and_checked_raises():
    lp = np.log(np.full((3, 2), 0.5, np.float32))
    lt = np.log(np.full((3, 2), 0.5, np.float32))
    lt[1, 0] = 0.1  # a probability above 1
    out = np.asarray(KLT(lp, lt))
    assert np.isnan(out[1]) and np.all(np.isfinite(out[[0, 2]]))
    with pytest.raises(Exception, match="kl_divergence_with_log_targets: log target 0.1"):
        jaxloss.checked(KLT)(lp, lt)
    lt_nan = np.log(np.full((3, 2), 0.5, np.float32))
    lt_nan[2, 1] = np.nan
    assert np.isnan(KLT(lp, lt_nan)[2])
    t = np.full((3, 2), 0.5, np.float32)
    t[0, 1] = -0.25
    for fn in (GKL, CKL):
        out = np.asarray(fn(lp, t))
        assert np.isnan(out[0]) and np.all(np.isfinite(out[1:]))
        with pytest.raises(Exception, match="target -0.25 .*is negative"):
            jaxloss.checked(fn)(lp, t)
    # targets above 1 are fine for the generalized KL (a measure)
    assert np.all(np.isfinite(GKL(lp, t + 2)))
    # a masked bad value (per example or per element) is neither NaN nor an error
    for where in (np.array([False, True, True]), np.array([[True, False]] + [[True, True]] * 2)):
        out = jaxloss.checked(GKL)(lp, t, where=where)
        assert np.all(np.isfinite(out))
    out = jaxloss.checked(KLT)(lp, lt, where=np.array([True, False, True]))
    assert np.all(np.isfinite(out))


def test_divergence_trace_time_errors():
    a = np.zeros((4, 3), np.float32)
    for fn, other in (
        (KLT, "log_targets"),
        (GKL, "targets"),
        (CKL, "targets"),
    ):
        name = fn.__name__
        with pytest.raises(ValueError, match=rf"{name}: {other} has shape \(4, 2\)"):
            fn(a, a[:, :2])
        with pytest.raises(TypeError, match=rf"{other} must have a floating dtype"):
            fn(a, a.astype(np.int32))
        with pytest.raises(TypeError, match="log_predictions"):
            fn(a.astype(np.int32), a)
        with pytest.raises(ValueError, match=rf"{name}: reduction"):
            fn(a, a, reduction="batchmean")
        with pytest.raises(ValueError, match="axis=2 is out of range"):
            fn(a, a, axis=2)
        with pytest.raises(ValueError, match="where"):
            fn(a, a, where=np.ones((4, 2), bool))


# ================================================================ derivatives


def test_nll_derivatives(rng):
    lp = _lp(rng, (3, 4)).astype(np.float64)
    y = _labels(rng, (3,), 4)
    w = rng.uniform(0.5, 2.0, 4)
    # order 2 in the log-probabilities, with class weights; the class weights'
    # derivatives are checked at order 1 below
    check_derivatives(
        lambda lp, w: NLL(lp, y, class_weights=w),
        lambda lp, w: jnp_nll(lp, y, w),
        lp,
        w,
        argnums=0,
    )
    # order 1 with masks, ignore_index and the weighted mean
    keep = np.array([True, False, True])
    y_ign = y.copy()
    y_ign[2] = -1

    def fn(lp, w):
        return NLL(lp, y_ign, class_weights=w, where=keep, ignore_index=-1, reduction="mean")

    def reference(lp, w):
        return jnp_nll(lp[:1], y[:1], w).sum() / w[y[0]]

    check_derivatives(fn, reference, lp, w, order=1)


def test_kl_log_targets_derivatives(rng):
    lp, lt = (a.astype(np.float64) for a in _kl_inputs(rng, (3, 4)))
    check_derivatives(KLT, jnp_kl_log_targets, lp, lt)
    drop = np.array([[True, False, True, True]] * 3)

    def reference(lp, lt):
        return jnp_kl_log_targets(lp[:, drop[0]], lt[:, drop[0]])

    check_derivatives(lambda a, b: KLT(a, b, where=drop), reference, lp, lt, order=1)


def test_generalized_kl_derivatives(rng):
    lp = rng.standard_normal((3, 4)) - 1
    t = 2 * rng.random((3, 4)) + 0.1
    check_derivatives(GKL, jnp_generalized_kl, lp, t)
    keep = np.array([True, False, True])

    def fn(lp, t):
        return CKL(lp, t, where=keep, reduction="mean")

    def reference(lp, t):
        return jnp_generalized_kl(lp[keep], t[keep]).mean()

    check_derivatives(fn, reference, lp, t, order=1)


# ================================================================ invariants


def test_jit_and_vmap_agree(rng):
    lp = _lp(rng, (4, 3, 5), axis=1)
    y = _labels(rng, (4, 5), 3)
    lp2, t = _gkl_inputs(rng, (4, 3, 5))
    lt = _lp(rng, (4, 3, 5), axis=1)
    cases = [
        (
            lambda a, b: NLL(a, b, axis=0, class_weights=np.array([1.0, 2.0, 0.5], np.float32)),
            lp,
            y,
        ),
        (lambda a, b: KLT(a, b, axis=0), lp, lt),
        (lambda a, b: GKL(a, b, axis=0), lp2, t),
        (lambda a, b: CKL(a, b, axis=0), lp2, t),
    ]
    for fn, a, b in cases:
        batched = fn(a[0], b[0])
        np.testing.assert_allclose(jax.jit(fn)(a[0], b[0]), batched, rtol=1e-6)
        vmapped = jax.vmap(fn)(a, b)
        looped = np.stack([fn(a[i], b[i]) for i in range(a.shape[0])])
        np.testing.assert_allclose(vmapped, looped, rtol=1e-6)
        ga = jax.jit(jax.grad(lambda a: fn(a, b[0]).sum()))(a[0])
        np.testing.assert_allclose(ga, jax.grad(lambda a: fn(a, b[0]).sum())(a[0]), rtol=1e-6)


def test_axis_forms_agree(rng):
    # channels-first (PyTorch's [N, C, d]) and a tuple of class axes
    lp = _lp(rng, (2, 3, 4), axis=1)
    y = _labels(rng, (2, 4), 3)
    np.testing.assert_allclose(NLL(lp, y, axis=1), NLL(np.moveaxis(lp, 1, -1), y), rtol=1e-6)
    flat = np.log(np.exp(lp.astype(np.float64)).reshape(2, 12) / 4).astype(np.float32)
    yt = _labels(rng, (2,), 12)
    np.testing.assert_allclose(
        NLL(flat.reshape(2, 3, 4), yt, axis=(1, 2)), NLL(flat, yt), rtol=1e-6
    )
    for fn, inputs in ((KLT, _kl_inputs), (GKL, _gkl_inputs), (CKL, _gkl_inputs)):
        a, b = inputs(rng, (2, 3, 4))
        np.testing.assert_allclose(
            fn(a, b, axis=1), fn(np.moveaxis(a, 1, -1), np.moveaxis(b, 1, -1)), rtol=1e-6
        )
        np.testing.assert_allclose(
            fn(a, b, axis=(1, 2)), fn(a.reshape(2, 12), b.reshape(2, 12)), rtol=1e-6
        )
        np.testing.assert_allclose(
            fn(a, b, axis=(-1, -2)),
            fn(a.swapaxes(1, 2).reshape(2, 12), b.swapaxes(1, 2).reshape(2, 12)),
            rtol=1e-6,
        )


def test_dtypes(rng):
    lp = _lp(rng, (3, 4))
    y = _labels(rng, (3,), 4)
    lt = _lp(rng, (3, 4))
    for dtype in (jnp.bfloat16,):
        a = jnp.asarray(lp, dtype)
        for fn, b in ((NLL, y), (KLT, jnp.asarray(lt, dtype)), (GKL, jnp.exp(a))):
            out = fn(a, b)
            assert out.dtype == jnp.float32, (fn.__name__, dtype)
            assert jax.grad(lambda a: fn(a, b).sum())(a).dtype == dtype
    with jax.enable_x64(True):
        a = jnp.asarray(lp, jnp.float64)
        np.testing.assert_allclose(NLL(a, y), np_nll(a, y), rtol=1e-12)
        assert NLL(a, y).dtype == jnp.float64
        b = jnp.asarray(lt, jnp.float64)
        np.testing.assert_allclose(KLT(a, b), np_kl_log_targets(a, b), rtol=1e-12)
        np.testing.assert_allclose(GKL(a, jnp.exp(b)), np_generalized_kl(a, np.exp(b)), rtol=1e-12)
    # labels of any integer width
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(NLL(lp, y.astype(np.uint8)), NLL(lp, y))
        np.testing.assert_array_equal(NLL(lp, y.astype(np.int64)), NLL(lp, y))
