"""Derivatives at invalid run-time inputs (docs/semantics.md, "Bad values: loud, never silently
finite").

One unmasked example holds a value that is only known to be bad at run time: an integer
label outside [0, C) that is not ``ignore_index``, a target or probability outside [0, 1],
a negative weight. Its loss is NaN, and so must be the reverse-mode derivative of the
``"sum"`` with respect to everything that loss depends on:

* per-example arguments (logits, targets, hidden, sample weights): the invalid example's
  entries are NaN; every other example's entries equal the gradient with the invalid
  example removed (sliced out);
* shared arguments (class weights, alpha, pos_weight, bias, the head's weight, epsilon,
  gamma): every entry the invalid example's loss depends on is NaN; the others are NaN
  or equal the gradient without it. NaN is allowed there because the rules are dense:
  a NaN coefficient or cotangent times a zero (a one-hot's other classes) is NaN, and
  forward mode gives NaN for every direction anyway, so reverse mode agrees with it;
* masking the invalid example with ``where`` gives finite gradients equal to slicing it
  out, with exactly 0 for the masked example's own entries.

For ``"mean"`` the value, the invalid example's entries and the shared entries it touches
must be NaN, and masking must equal slicing; the other examples' entries are not checked
(the mean's denominator holds the invalid example's weight).

To compile few programs, each loss configuration (``Loss``) is one jitted program that
all its cases share: the call with a ``where`` mask (all True for the unmasked call, False
at the invalid example for the masked one) and the reference without the invalid example
are compiled once per configuration; a case only changes the data. The two reported
reproducers, without ``where``, are the ``test_issue_example_*`` tests.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss

CE = jaxloss.categorical_cross_entropy
SPARSE = jaxloss.sparse_categorical_cross_entropy

N, C, D = 4, 5, 3  # examples, classes, hidden size
R = 1  # the invalid example (a row; for the elementwise losses, the element (R, K))
K = 2

_rng = np.random.default_rng(0)
LOGITS = (2 * _rng.standard_normal((N, C))).astype(np.float32)
LABELS = np.array([0, 3, 2, 4], np.int32)  # no other example has row R's class 3
_t = _rng.random((N, C)).astype(np.float32) + np.float32(0.1)
TARGETS = _t / _t.sum(1, keepdims=True)  # every entry positive, rows summing to 1
LOG_PROBS = LOGITS - np.log(np.exp(LOGITS).sum(1, keepdims=True))
CLASS_WEIGHTS = _rng.uniform(0.5, 2.0, C).astype(np.float32)
SAMPLE_WEIGHT = _rng.uniform(0.5, 2.0, N).astype(np.float32)
HIDDEN = _rng.standard_normal((N, D)).astype(np.float32)
WEIGHT = _rng.standard_normal((D, C)).astype(np.float32)
BIAS = (0.3 * _rng.standard_normal(C)).astype(np.float32)
BINARY_LABELS = _rng.uniform(0.05, 0.95, (N, C)).astype(np.float32)  # soft, in (0, 1)
PROBS = _rng.uniform(0.05, 0.95, (N, C)).astype(np.float32)
ELEMENT_WEIGHT = _rng.uniform(0.5, 2.0, (N, C)).astype(np.float32)
POS_WEIGHT = _rng.uniform(0.5, 3.0, C).astype(np.float32)
ALPHA01 = _rng.uniform(0.2, 0.8, C).astype(np.float32)  # sigmoid focal: alpha in [0, 1]
GAMMA = np.array(2.0, np.float32)
EPSILON = np.array(2.0, np.float32)
PIXEL_LOGITS = (2 * _rng.standard_normal((N, 3, C))).astype(np.float32)  # [B, H, C]
PIXEL_TARGETS = _rng.uniform(0.0, 1.0, (N, 3, C)).astype(np.float32)
MASK_LOGITS = (2 * _rng.standard_normal((N, 6))).astype(np.float32)  # [B, H] one channel
MASK_TARGETS = _rng.uniform(0.0, 1.0, (N, 6)).astype(np.float32)

# bad rows (row R)
TARGET_OUT = np.array([1.5, -0.5, 0.0, 0.0, 0.0], np.float32)  # the issue's row, padded
TARGET_OUT_DENSE = np.array([1.2, -0.4, 0.1, 0.05, 0.05], np.float32)  # mass on every class
TARGET_NAN = np.array([np.nan, 0.25, 0.25, 0.25, 0.25], np.float32)


def _put(array, index, value):
    out = np.array(array, copy=True)
    out[index] = value
    return out


def _only(*entries):
    mask = np.zeros(C, bool)
    for e in entries:
        mask[e] = True
    return mask


NONE = _only()  # touches no entry of a [C] argument
Y = int(LABELS[R])  # row R's (valid) class


# --------------------------------------------------------------------------- the calls
def _call(fn, positional, own_reduction=True, **static):
    """``loss(a, where, reduction)``: ``fn`` with the arrays of ``a`` (the ``positional``
    ones first, the others as keywords of the same name) and ``static``. Functions
    without a ``reduction`` argument (optax's names, the Dice losses) are summed."""

    def loss(a, where, reduction):
        kwargs = {k: v for k, v in a.items() if k not in positional}
        if where is not None:
            kwargs["where"] = where
        if own_reduction:
            kwargs["reduction"] = reduction
        out = fn(*(a[k] for k in positional), **kwargs, **static)
        if not own_reduction and reduction == "sum":
            out = out.sum()
        return out

    return loss


def _value_and_grad(loss, reduction, arrays, where, weights):
    """The value and the gradient with respect to every float array. With ``weights``: of
    ``sum(weights * loss(reduction="none"))``, divided by the weighted sample weights for
    ``"mean"``: the elementwise losses' reference."""
    diff = {k: v for k, v in arrays.items() if jnp.issubdtype(v.dtype, jnp.floating)}
    rest = {k: v for k, v in arrays.items() if k not in diff}

    def f(diff):
        a = {**rest, **diff}
        if weights is None:
            return loss(a, where, reduction)
        total = (loss(a, None, "none") * weights).sum()
        if reduction == "mean":
            total = total / (weights * a.get("sample_weight", 1.0)).sum()
        return total

    return jax.value_and_grad(f)(diff)


class Loss:
    """A loss configuration and its jitted value-and-gradient program, shared by every
    case that uses the configuration (one compilation per shape)."""

    def __init__(self, name, call, *, shared=(), reduction="sum", where=True):
        self.name, self.shared, self.reduction, self.where = name, shared, reduction, where
        self._jitted = jax.jit(functools.partial(_value_and_grad, call, reduction))

    def __call__(self, arrays, where=None, weights=None):
        value, grads = self._jitted(arrays, where, weights)
        return np.asarray(value), {k: np.asarray(g) for k, g in grads.items()}


# --------------------------------------------------------------------------- the checks
def _expect_nan(g, mask, what):
    finite = np.asarray(mask) & ~np.isnan(g)
    assert not finite.any(), (
        f"{what}: finite where NaN is expected, at {np.argwhere(finite).tolist()}: "
        f"{np.asarray(g)[finite]}"
    )


def _expect_equal(g, ref, what):
    assert np.all(np.isfinite(g)), f"{what}: not finite: {g}"
    np.testing.assert_allclose(g, ref, rtol=2e-5, atol=2e-6, err_msg=what)


@dataclasses.dataclass(frozen=True)
class Case:
    loss: Loss
    arrays: dict  # every array argument; the float ones are differentiated
    touched: dict  # shared argument -> entries the invalid example reaches; default all
    # shared entries that are out of domain themselves (a negative class weight): touched
    # by the invalid example, and left out of the comparisons without it
    invalid: dict
    fixed: dict  # elementwise: a valid value for the invalid element, per argument

    def touched_mask(self, name):
        return self.touched.get(name, np.ones(np.shape(self.arrays[name]), bool))

    def compared_mask(self, name):
        return ~self.invalid.get(name, np.zeros(np.shape(self.arrays[name]), bool))


def _cases(loss, base, kinds):
    """One case per ``kind: (replacements, touched[, invalid[, fixed]])``: ``base`` with
    the replacements, the invalid example at row R (element (R, K) if elementwise)."""
    out = []
    for kind, (replace, touched, *rest) in kinds.items():
        arrays = {**base, **replace}
        invalid, fixed = (rest + [{}, {}])[:2]
        case = Case(loss, arrays, touched, invalid, fixed)
        out.append(pytest.param(case, id=f"{loss.name}-{kind}"))
    return out


# ----------------------------------------------------------------- per-example losses
BAD7 = _put(LABELS, R, 7)
BAD_SW = _put(SAMPLE_WEIGHT, R, -1.0)
CW_NEG = _put(CLASS_WEIGHTS, Y, -1.0)  # used by row R only (without smoothing)
SMOOTH = {"label_smoothing": 0.1}


def _targets(row):
    return _put(TARGETS, R, row)


def _sparse_kinds(smoothing):
    """Labels with class weights and sample weights: a label out of range, a negative
    sample weight and (without smoothing, where only row R uses class Y) a negative class
    weight."""
    every = {"class_weights": np.ones(C, bool)}
    kinds = {
        "label7": ({"labels": BAD7}, every if smoothing else {"class_weights": NONE}),
        "negative_sample_weight": (
            {"sample_weight": BAD_SW},
            every if smoothing else {"class_weights": _only(Y)},
        ),
    }
    if not smoothing:
        kinds["label-1"] = ({"labels": _put(LABELS, R, -1)}, {"class_weights": NONE})
        kinds["negative_class_weight"] = (
            {"class_weights": CW_NEG},
            {"class_weights": _only(Y)},
            {"class_weights": _only(Y)},
        )
    return kinds


SPARSE_BASE = {
    "logits": LOGITS,
    "labels": LABELS,
    "class_weights": CLASS_WEIGHTS,
    "sample_weight": SAMPLE_WEIGHT,
}
CW = ("class_weights",)
LIN = ("hidden", "weight", "labels")
LIN_BASE = {
    "hidden": HIDDEN,
    "weight": WEIGHT,
    "labels": LABELS,
    "bias": BIAS,
    "class_weights": CLASS_WEIGHTS,
    "sample_weight": SAMPLE_WEIGHT,
}


def _linear(path, **static):
    """``linear_cross_entropy``: ``"sum"``/``"mean"`` fold the gradient in during the
    forward pass, ``"none"`` (summed here) is the blocked path; blocks of 2 tokens and 2
    classes, so the invalid row is in a chunk of its own."""
    blocks = {"token_block_size": 2, "block_size": 2}
    call = _call(jaxloss.linear_cross_entropy, LIN, **blocks, **static)
    if path == "none":
        return lambda a, where, reduction: call(a, where, "none").sum()
    return call


def _soft_kinds(bad_row, touched=None):
    """Soft targets with sample weights: a bad target row, a negative sample weight."""
    touched = touched or {}
    return {
        "target_out": ({"targets": _targets(bad_row)}, touched),
        "negative_sample_weight": ({"sample_weight": BAD_SW}, touched),
    }


SOFT_BASE = {"logits": LOGITS, "targets": TARGETS, "sample_weight": SAMPLE_WEIGHT}
SOFT = ("logits", "targets")
MEASURES = 2 * TARGETS  # generalized KL: any measure >= 0

ROW_CASES = [
    # sparse_categorical_cross_entropy
    *_cases(
        Loss(
            "sparse-ignore_index-z_loss-class_weights-sum",
            _call(SPARSE, ("logits", "labels"), ignore_index=-100, z_loss=1e-2),
            shared=CW,
        ),
        SPARSE_BASE,
        _sparse_kinds(smoothing=False),
    ),
    *[
        case
        for reduction in ("sum", "mean")
        for case in _cases(
            Loss(
                f"sparse-class_weights-smoothing-{reduction}",
                _call(SPARSE, ("logits", "labels"), **SMOOTH),
                shared=CW,
                reduction=reduction,
            ),
            SPARSE_BASE,
            _sparse_kinds(smoothing=True),
        )
    ],
    # categorical_cross_entropy
    *_cases(
        Loss("ce-sum", _call(CE, SOFT)),
        {"logits": LOGITS, "targets": TARGETS},
        {
            "target_out": ({"targets": _targets(TARGET_OUT)}, {}),
            "target_nan": ({"targets": _targets(TARGET_NAN)}, {}),
        },
    ),
    *_cases(
        Loss(
            "ce-class_weights-smoothing-z_loss-sum",
            _call(CE, SOFT, z_loss=1e-2, **SMOOTH),
            shared=CW,
        ),
        {**SOFT_BASE, "class_weights": CLASS_WEIGHTS},
        _soft_kinds(TARGET_OUT_DENSE),  # row R has mass on every class: touches every weight
    ),
    # optax's names
    *_cases(
        Loss(
            "softmax_cross_entropy",
            _call(jaxloss.softmax_cross_entropy, ("logits", "labels"), own_reduction=False),
        ),
        {"logits": LOGITS, "labels": TARGETS},
        {"target_out": ({"labels": _targets(TARGET_OUT)}, {})},
    ),
    *_cases(
        Loss(
            "softmax_cross_entropy_with_integer_labels",
            _call(
                jaxloss.softmax_cross_entropy_with_integer_labels,
                ("logits", "labels"),
                own_reduction=False,
            ),
        ),
        {"logits": LOGITS, "labels": LABELS},
        {
            "label7": ({"labels": BAD7}, {}),
            "label-1": ({"labels": _put(LABELS, R, -1)}, {}),  # optax reads class C - 1
        },
    ),
    *_cases(
        Loss(
            "poly_loss-epsilon",
            _call(jaxloss.poly_loss_cross_entropy, ("logits", "labels"), own_reduction=False),
            shared=("epsilon",),
        ),
        {"logits": LOGITS, "labels": TARGETS, "epsilon": EPSILON},
        {"target_out": ({"labels": _targets(TARGET_OUT_DENSE)}, {})},
    ),
    # divergences
    *_cases(
        Loss("kl_divergence-sum", _call(jaxloss.kl_divergence, SOFT)),
        SOFT_BASE,
        _soft_kinds(TARGET_OUT),
    ),
    *_cases(
        Loss("reverse_kl_divergence-sum", _call(jaxloss.reverse_kl_divergence, SOFT)),
        SOFT_BASE,
        _soft_kinds(TARGET_OUT_DENSE),
    ),
    *_cases(
        Loss("js_divergence-sum", _call(jaxloss.js_divergence, SOFT)),
        SOFT_BASE,
        _soft_kinds(TARGET_OUT),
    ),
    *_cases(
        Loss(
            "kl_divergence_with_log_targets-sum",
            _call(jaxloss.kl_divergence_with_log_targets, ("log_predictions", "log_targets")),
        ),
        {
            "log_predictions": LOG_PROBS,
            "log_targets": np.log(TARGETS),
            "sample_weight": SAMPLE_WEIGHT,
        },
        {
            "positive_log_target": (
                {"log_targets": np.log(_targets([1.5, 0.1, 0.1, 0.1, 0.1]))},
                {},
            ),
            "negative_sample_weight": ({"sample_weight": BAD_SW}, {}),
        },
    ),
    *_cases(
        Loss(
            "generalized_kl_divergence-sum",
            _call(jaxloss.generalized_kl_divergence, ("log_predictions", "targets")),
        ),
        {"log_predictions": LOGITS, "targets": MEASURES, "sample_weight": SAMPLE_WEIGHT},
        {
            "negative_target": ({"targets": _put(MEASURES, R, [0.5, -0.3, 1.2, 0.4, 2])}, {}),
            "negative_sample_weight": ({"sample_weight": BAD_SW}, {}),
        },
    ),
    # focal losses
    *_cases(
        Loss(
            "softmax_focal-alpha-sum",
            _call(jaxloss.softmax_focal_loss, ("logits", "labels")),
            shared=("alpha",),
        ),
        {
            "logits": LOGITS,
            "labels": LABELS,
            "alpha": CLASS_WEIGHTS,
            "sample_weight": SAMPLE_WEIGHT,
        },
        {
            "label7": ({"labels": BAD7}, {"alpha": NONE}),
            "negative_sample_weight": ({"sample_weight": BAD_SW}, {"alpha": _only(Y)}),
            "negative_alpha": ({"alpha": CW_NEG}, {"alpha": _only(Y)}, {"alpha": _only(Y)}),
        },
    ),
    *_cases(
        Loss(
            "categorical_focal-alpha-sum",
            _call(jaxloss.categorical_focal_loss, SOFT),
            shared=("alpha",),
        ),
        {**SOFT_BASE, "alpha": CLASS_WEIGHTS},
        _soft_kinds(TARGET_OUT_DENSE),
    ),
    # nll_loss
    *_cases(
        Loss("nll-class_weights-sum", _call(jaxloss.nll_loss, ("log_probs", "labels")), shared=CW),
        {"log_probs": LOG_PROBS, **{k: v for k, v in SPARSE_BASE.items() if k != "logits"}},
        {
            "label7": ({"labels": BAD7}, {"class_weights": NONE}),
            "negative_sample_weight": ({"sample_weight": BAD_SW}, {"class_weights": _only(Y)}),
        },
    ),
    # Dice: row R's targets are out of [0, 1] in every class, so its image loss (the mean
    # over the classes) and every class term of it are NaN.
    *_cases(
        Loss(
            "dice-class_weights",
            _call(jaxloss.dice_loss, ("predictions", "targets"), own_reduction=False),
            shared=CW,
            where=False,
        ),
        {"predictions": PIXEL_LOGITS, "targets": PIXEL_TARGETS, "class_weights": CLASS_WEIGHTS},
        {"target_out": ({"targets": _put(PIXEL_TARGETS, (R, 0), [1.5, -0.5, 1.5, -0.5, 1.5])}, {})},
    ),
    *_cases(
        Loss(
            "binary_dice",
            _call(jaxloss.binary_dice_loss, ("predictions", "targets"), own_reduction=False),
            where=False,
        ),
        {"predictions": MASK_LOGITS, "targets": MASK_TARGETS},
        {"target_out": ({"targets": _put(MASK_TARGETS, (R, 0), 1.5)}, {})},
    ),
    # linear_cross_entropy: row R's logits depend on every column of the weight and bias
    *[
        case
        for path in ("sum", "mean", "none")
        for case in _cases(
            Loss(
                f"linear-class_weights-smoothing-z_loss-softcap-{path}",
                _linear(path, z_loss=1e-2, logit_softcap=5.0, **SMOOTH),
                shared=("weight", "bias", "class_weights"),
                reduction="mean" if path == "mean" else "sum",
            ),
            LIN_BASE,
            _sparse_kinds(smoothing=True),
        )
    ],
    *_cases(
        Loss(
            "linear-class_weights-sum", _linear("sum"), shared=("weight", "bias", "class_weights")
        ),
        LIN_BASE,
        {k: v for k, v in _sparse_kinds(smoothing=False).items() if k != "negative_class_weight"},
    ),
]


@pytest.mark.parametrize("case", ROW_CASES)
def test_invalid_example(case):
    loss, arrays = case.loss, case.arrays
    sliced = {k: v if k in loss.shared else np.delete(v, R, 0) for k, v in arrays.items()}
    value, grads = loss(arrays, np.ones(N, bool) if loss.where else None)
    assert np.isnan(value), f"value {value} is finite"
    # NaN wherever the invalid row's loss reaches
    for name, g in grads.items():
        if name in loss.shared:
            _expect_nan(g, case.touched_mask(name), f"d/d{name}, entries the invalid row touches")
        else:
            _expect_nan(g[R], True, f"d/d{name}, the invalid row {R}")
    # and nowhere else
    ref_value, ref = loss(sliced)
    assert np.isfinite(ref_value), f"the value without row {R} is {ref_value}"
    for name, g in ref.items():
        kept = case.compared_mask(name) if name in loss.shared else True
        assert np.all(np.isfinite(g[kept])), f"d/d{name} without row {R}: {g}"
    if loss.reduction == "sum":
        for name, g in grads.items():
            if name in loss.shared:  # NaN, or the gradient without the invalid row
                other = ~case.touched_mask(name) & case.compared_mask(name) & np.isfinite(g)
                _expect_equal(g[other], ref[name][other], f"d/d{name}, entries it does not touch")
            else:
                _expect_equal(np.delete(g, R, 0), ref[name], f"d/d{name}, the other rows")
    if not loss.where:
        return
    masked_value, masked = loss(arrays, np.arange(N) != R)
    _expect_equal(masked_value, ref_value, "the masked value")
    for name, g in masked.items():
        if name in loss.shared:
            kept = case.compared_mask(name)
            _expect_equal(g[kept], ref[name][kept], f"masked: d/d{name}")
        else:
            assert np.all(g[R] == 0), f"masked: d/d{name}, the masked row is {g[R]}, not 0"
            _expect_equal(np.delete(g, R, 0), ref[name], f"masked: d/d{name}, the other rows")


# ------------------------------------------------------------------- elementwise losses
def _element_kinds(label, fixed_label, touched=None):
    """One element (R, K) bad: its label out of [0, 1], or its sample weight negative;
    with the valid value that replaces it in the reference."""
    touched = touched or {}
    return {
        "label_out": (
            {"labels": _put(BINARY_LABELS, (R, K), label)},
            touched,
            {},
            {"labels": fixed_label},
        ),
        "negative_sample_weight": (
            {"sample_weight": _put(ELEMENT_WEIGHT, (R, K), -1.0)},
            touched,
            {},
            {"sample_weight": 1.0},
        ),
    }


SIGMOID_BASE = {"logits": LOGITS, "labels": BINARY_LABELS, "sample_weight": ELEMENT_WEIGHT}
BINARY = ("logits", "labels")
PW = {"pos_weight": _only(K)}  # the invalid element's label is not 0: it reaches q_K

ELEMENT_CASES = [
    *[
        case
        for reduction, smoothing, label in (("sum", 0.0, 1.5), ("mean", 0.1, -0.5))
        for case in _cases(
            Loss(
                "sigmoid_ce-pos_weight" + ("-smoothing" if smoothing else "") + f"-{reduction}",
                _call(jaxloss.sigmoid_cross_entropy, BINARY, label_smoothing=smoothing),
                shared=("pos_weight",),
                reduction=reduction,
            ),
            {**SIGMOID_BASE, "pos_weight": POS_WEIGHT},
            _element_kinds(label, 1.0, PW),
        )
    ],
    *_cases(
        Loss(
            "sigmoid_binary_ce",
            _call(jaxloss.sigmoid_binary_cross_entropy, BINARY, own_reduction=False),
            where=False,
        ),
        {"logits": LOGITS, "labels": BINARY_LABELS},
        {k: v for k, v in _element_kinds(-0.5, 0.0).items() if k == "label_out"},
    ),
    *_cases(
        Loss("bce-sum", _call(jaxloss.binary_cross_entropy, ("probs", "labels"))),
        {"probs": PROBS, "labels": BINARY_LABELS, "sample_weight": ELEMENT_WEIGHT},
        {
            **_element_kinds(1.5, 1.0),
            "probability_out": ({"probs": _put(PROBS, (R, K), 1.2)}, {}, {}, {"probs": 0.5}),
        },
    ),
    *_cases(
        Loss(
            "sigmoid_focal-alpha-gamma-sum",
            _call(jaxloss.sigmoid_focal_loss, BINARY),
            shared=("alpha", "gamma"),
        ),
        {**SIGMOID_BASE, "alpha": ALPHA01, "gamma": GAMMA},
        _element_kinds(1.5, 1.0, {"alpha": _only(K)}),
    ),
]


@pytest.mark.parametrize("case", ELEMENT_CASES)
def test_invalid_element(case):
    """Sigmoid losses: one loss per element, so the invalid example is the element
    (R, K). The reference replaces it by a valid value and gives it weight 0 in
    ``sum(weights * loss(reduction="none"))``."""
    loss, arrays = case.loss, case.arrays
    keep = _put(np.ones((N, C), np.float32), (R, K), 0.0)
    bad = ~keep.astype(bool)
    value, grads = loss(arrays, np.ones((N, C), bool) if loss.where else None)
    assert np.isnan(value), f"value {value} is finite"
    masks = {n: case.touched_mask(n) if n in loss.shared else bad for n in grads}
    for name, g in grads.items():
        _expect_nan(g, masks[name], f"d/d{name}, entries the invalid element touches")
    fixed = {k: _put(v, (R, K), case.fixed[k]) if k in case.fixed else v for k, v in arrays.items()}
    ref_value, ref = loss(fixed, None, keep)
    assert np.isfinite(ref_value) and all(np.isfinite(g).all() for g in ref.values())
    if loss.reduction == "sum":
        for name, g in grads.items():
            other = ~masks[name]
            if name in loss.shared:  # NaN, or the gradient without the invalid element
                other = other & np.isfinite(g)
            _expect_equal(g[other], ref[name][other], f"d/d{name}, entries it does not touch")
    if not loss.where:
        return
    masked_value, masked = loss(arrays, ~bad)
    _expect_equal(masked_value, ref_value, "the masked value")
    for name, g in masked.items():
        if name not in loss.shared:
            assert np.all(g[bad] == 0), f"masked: d/d{name} at the masked element is {g[bad]}"
        _expect_equal(g, ref[name], f"masked: d/d{name}")


# ------------------------------------------------------------ batch-wide class weights
def test_generalized_dice_invalid_target():
    """The generalized Dice loss weighs the classes by their frequency over the whole
    batch, so the invalid image's loss depends on every target: those derivatives are
    all NaN, and so are those with respect to the invalid image's predictions. (The other
    images' predictions reach that loss through nothing: not checked.)"""
    loss = Loss(
        "generalized_dice",
        _call(jaxloss.multiclass_generalized_dice_loss, ("predictions", "targets"), False),
        where=False,
    )
    targets = _put(PIXEL_TARGETS, (R, 0, 1), 1.5)
    value, grads = loss({"predictions": PIXEL_LOGITS, "targets": targets})
    assert np.isnan(value), f"value {value} is finite"
    _expect_nan(grads["predictions"][R], True, f"d/dpredictions, the invalid image {R}")
    _expect_nan(grads["targets"], True, "d/dtargets")


# ----------------------------------------------------------- the issue's two examples
# As reported: no ``where``, three classes, ``jax.grad`` of the sum.
X3 = LOGITS[:, :3]


def test_issue_example_soft_targets_gradient():
    t = _put(TARGETS[:, :3] / TARGETS[:, :3].sum(1, keepdims=True), R, [1.5, -0.5, 0.0])
    g = np.asarray(jax.jit(jax.grad(lambda t: CE(X3, t, reduction="sum")))(t))
    _expect_nan(g[R], True, f"d/dtargets, the invalid row {R}")
    assert np.all(np.isfinite(np.delete(g, R, 0)))
    kl = np.asarray(jax.jit(jax.grad(lambda t: jaxloss.kl_divergence(X3, t, reduction="sum")))(t))
    _expect_nan(kl[R], True, f"kl_divergence: d/dtargets, the invalid row {R}")


def test_issue_example_class_weights_gradient_with_smoothing():
    labels = _put(LABELS % 3, R, 7)

    def sparse(w):
        return SPARSE(X3, labels, class_weights=w, label_smoothing=0.1, reduction="sum")

    w = CLASS_WEIGHTS[:3]
    _expect_nan(np.asarray(jax.jit(jax.jacfwd(sparse))(w)), True, "d/dclass_weights (jacfwd)")
    _expect_nan(np.asarray(jax.jit(jax.grad(sparse))(w)), True, "d/dclass_weights (grad)")
