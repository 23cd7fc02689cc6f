"""Losses on log-probabilities taken as given (not renormalized): PyTorch's
``nll_loss``, and optax's divergences on ``log_predictions``.

These are sums of elementwise terms, so their derivatives are elementwise too: the
gradient of ``nll_loss`` with respect to its input is ``-w_y`` at the label and 0
elsewhere (PyTorch's ``NLLLoss``), not the softmax gradient ``p - onehot`` that
:func:`jaxloss.sparse_categorical_cross_entropy` gives for logits. The pair
``log_softmax`` then ``nll_loss`` is the cross-entropy ("CrossEntropyLoss = LogSoftmax
+ NLLLoss"), in value and, through ``jax.nn.log_softmax``, in gradient.

Each term has a hand-written tangent that reads sanitized inputs (masked rows and
elements, zero target mass) through the double-``where`` pattern, so that every
derivative of every order is finite wherever the value is.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _checks, _numerics, _reduction, _softmax
from ._softmax import Axis

# --------------------------------------------------------------------------------------
# nll_loss: l_i = -w_{y_i} lp_{i y_i}.
#   d l = -w_y d lp_y - lp_y d w_y.


def _nll_value(k, log_probs, labels, class_weights, mask):
    dtype = _numerics.compute_dtype(log_probs)
    lp_y = _softmax.take_label(log_probs, labels, k.axis).astype(dtype)
    w_y = _softmax.label_weight(class_weights, labels, k.axis, dtype)
    if class_weights is not None:
        w_y = _numerics.valid_weights(w_y)
    loss = -jnp.where(w_y == 0, 0, w_y * lp_y)  # a weight-0 term is 0, even at -inf
    loss = jnp.where(_softmax.labels_ok(labels, log_probs.shape[k.axis], k.axis), loss, jnp.nan)
    loss = _numerics.mask_rows(loss, _numerics.expand(mask, k.axis))
    return jnp.squeeze(loss, k.axis)


def _nll_tangent(k, log_probs, labels, class_weights, mask, _value, _stats, d_lp, _dy, d_w, _dm):
    dtype = _numerics.compute_dtype(log_probs)
    mask_c = _numerics.expand(mask, k.axis)
    ok = _softmax.labels_ok(labels, log_probs.shape[k.axis], k.axis)
    if mask_c is not None:
        ok = ok | ~mask_c
    w_y = _softmax.label_weight(class_weights, labels, k.axis, dtype)
    if class_weights is not None:
        w_y = _numerics.valid_weights(w_y)
    # NaN coefficients (not a select on the tangent) for a bad label, so that reverse
    # mode, which transposes the map, keeps the NaN too
    w_y = _numerics.nan_where_not(ok, jnp.broadcast_to(w_y, ok.shape))
    out = 0
    if d_lp is not None:
        d_lp = _numerics.mask_rows(d_lp.astype(dtype), mask_c)
        out = out - w_y * _softmax.take_label(d_lp, labels, k.axis)
        # a bad label's whole row of the gradient is NaN, as for the cross-entropy
        poison = _numerics.nan_where_not(ok, jnp.zeros(ok.shape, dtype))
        out = out + poison * jnp.sum(d_lp, k.axis, keepdims=True)
    if d_w is not None:
        lp_y = _softmax.take_label(log_probs, labels, k.axis).astype(dtype)
        lp_y = _numerics.nan_where_not(ok, _numerics.mask_rows(lp_y, mask_c))
        safe = _softmax.safe_labels(labels, class_weights.shape[0], k.axis)
        out = out - _softmax.take(d_w.astype(dtype), safe) * lp_y
    out = jnp.broadcast_to(out, ok.shape)
    return jnp.squeeze(_numerics.mask_rows(out, mask_c), k.axis)


_nll = _numerics.custom_rule(_nll_value, _nll_tangent)


@dataclasses.dataclass(frozen=True)
class NLL(_reduction.Kernel):
    axis: int
    ignore_index: int | None = None

    def mask(self, arrays, where):
        return _reduction.example_mask(where, arrays[1], self.ignore_index)

    def check(self, arrays, mask):
        log_probs, labels, class_weights = arrays
        _softmax.check_labels(self.fn, labels, mask, log_probs.shape[self.axis], self.ignore_index)
        if class_weights is not None:
            _checks.check_nonnegative_values(self.fn, "class weight", class_weights)

    def values(self, arrays, mask):
        return _nll(self, *arrays, mask)

    def weights(self, arrays, mask, dtype):
        _, labels, class_weights = arrays
        return _reduction.sparse_example_weights(mask, labels, class_weights, dtype)


# --------------------------------------------------------------------------------------
# Divergences on log-predictions, as sums over the class axis of elementwise terms
# f(lp, y). Each kernel gives f and its two partial derivatives; ``keep`` is optax's
# elementwise ``where`` (a term it drops is 0), ``mask`` the per-example mask.


@dataclasses.dataclass(frozen=True)
class _TermSum(_reduction.Kernel):
    axis: int
    target_name: ClassVar[str] = "target"

    # The terms, from sanitized inputs (a dropped element reads lp = y = 0).
    def terms(self, lp, y):
        raise NotImplementedError

    def partials(self, lp, y):
        raise NotImplementedError

    def target_ok(self, y):
        """Whether each target is in its domain (NaN otherwise)."""
        raise NotImplementedError

    def check(self, arrays, mask):
        _, y, keep = arrays
        bad = ~self.target_ok(y)
        if keep is not None:
            bad = bad & keep
        if mask is not None:
            bad = bad & _numerics.expand(mask, self.axis)
        _checks.check_values(self.fn, self.target_name, y, bad, self.domain)

    def values(self, arrays, mask):
        return _term_sum(self, *arrays, mask)


def _sanitized(k, lp, y, keep, mask):
    dtype = _numerics.compute_dtype(lp)
    use = _numerics.expand(mask, k.axis)
    if keep is not None:
        use = keep if use is None else use & keep
    lp = _numerics.mask_rows(lp.astype(dtype), use)
    y = _numerics.mask_rows(y.astype(dtype), use)
    return lp, y, use


def _term_sum_value(k, lp, y, keep, mask):
    lp, y, use = _sanitized(k, lp, y, keep, mask)
    terms = jnp.where(k.target_ok(y), k.terms(lp, y), jnp.nan)
    return jnp.sum(_numerics.mask_rows(terms, use), k.axis)


def _term_sum_tangent(k, lp, y, keep, mask, _value, _stats, d_lp, d_y, _dk, _dm):
    lp, y, use = _sanitized(k, lp, y, keep, mask)
    # NaN coefficients for an example with a bad target or a NaN log-prediction (a
    # select on the tangent would vanish in reverse mode), and 0 for dropped elements
    valid = k.target_ok(y) & ~jnp.isnan(lp)
    ok = jnp.all(_numerics.mask_rows(valid, use, True), k.axis, keepdims=True)
    g_lp, g_y = (_numerics.mask_rows(jnp.where(ok, g, jnp.nan), use) for g in k.partials(lp, y))
    out = 0
    if d_lp is not None:
        out = out + g_lp * _numerics.mask_rows(d_lp.astype(lp.dtype), use)
    if d_y is not None:
        out = out + g_y * _numerics.mask_rows(d_y.astype(lp.dtype), use)
    return jnp.sum(jnp.broadcast_to(out, lp.shape), k.axis)


_term_sum = _numerics.custom_rule(_term_sum_value, _term_sum_tangent)


@dataclasses.dataclass(frozen=True)
class KLWithLogTargets(_TermSum):
    """``e^lt (lt - lp)``; d/dlp = ``-e^lt``, d/dlt = ``e^lt (lt - lp + 1)``; 0 where
    ``e^lt = 0``."""

    target_name: ClassVar[str] = "log target"
    domain: ClassVar[str] = "is positive (a log-probability must be <= 0)"

    def target_ok(self, lt):
        return ~(lt > 0) & ~jnp.isnan(lt)

    def terms(self, lp, lt):
        t = jnp.exp(lt)
        zero = t == 0
        # where e^lt rounds to 0 the class adds 0, unless the prediction rules it out
        # (lp = -inf) and the target does not (a finite lt: its mass is positive)
        ruled_out = (lp == -jnp.inf) & (lt > -jnp.inf)
        inside = t * (jnp.where(zero, 0, lt) - jnp.where(zero, 0, lp))
        return jnp.where(zero, jnp.where(ruled_out, jnp.inf, 0), inside)

    def partials(self, lp, lt):
        t = jnp.exp(lt)
        zero = t == 0
        ratio = jnp.where(zero, 0, lt) - jnp.where(zero, 0, lp)
        return -t, jnp.where(zero, 0, t * (ratio + 1))


@dataclasses.dataclass(frozen=True)
class GeneralizedKL(_TermSum):
    """``t (log t - lp) + e^lp - t``; d/dlp = ``e^lp - t``, d/dt = ``log t - lp`` (0 where
    ``t = 0`` and ``lp = -inf``)."""

    domain: ClassVar[str] = "is negative"

    def target_ok(self, t):
        return t >= 0

    def terms(self, lp, t):
        zero = t == 0
        safe_lp = jnp.where(zero, 0, lp)
        return jnp.where(zero, 0, t * (_numerics.safe_log(t) - safe_lp)) + jnp.exp(lp) - t

    def partials(self, lp, t):
        # a class that neither measure has (t = 0, lp = -inf: a masked class) adds 0 to
        # the targets' derivative too, as in KLWithLogTargets (log 0 - lp was +inf)
        d_t = jnp.where((t == 0) & (lp == -jnp.inf), 0, _numerics.safe_log(t) - lp)
        return jnp.exp(lp) - t, d_t


def _run_terms(
    fn, kernel_cls, log_predictions, other, other_name, axis, where, reduction, sample_weight
):
    """optax's argument handling: ``where`` masks examples (the per-example shape) or
    elements (broadcastable to the inputs, as in optax)."""
    lp, axes = _softmax.prepare_logits(log_predictions, axis, fn, "log_predictions")
    other = _checks.check_same_shape(fn, lp, other, other_name)
    _checks.check_floating(other, other_name, fn)
    per_example = _softmax.batch_shape(tuple(lp.shape), axes)
    example_mask, keep = _split_where(fn, where, tuple(lp.shape), per_example, axes)
    lp, ax = _softmax.merge_class_axes(lp, axes)
    other = _softmax.merge_class_axes(other, axes)[0]
    if keep is not None:
        keep = _softmax.merge_class_axes(keep, axes)[0]
    return _reduction.apply(
        kernel_cls(fn=fn, axis=ax),
        (lp, other, keep),
        example_mask,
        _checks.check_sample_weight(sample_weight, per_example, fn, "per-example"),
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
    )


def _split_where(fn, where, shape, per_example, axes):
    """``(per-example mask, elementwise mask)``. As in optax, a ``where`` that
    broadcasts to the inputs' shape drops elements from the sums (an example with none
    left is masked: 0, and no weight in ``"mean"``); one that does not, but broadcasts
    to the per-example shape, masks examples."""
    if where is None:
        return None, None
    where = _checks.as_array(where, "where", fn)
    try:
        elementwise = np.broadcast_shapes(where.shape, shape) == shape
    except ValueError:
        elementwise = False
    if not elementwise:
        return _checks.check_where(where, per_example, fn, what="per-example or inputs'"), None
    keep = _checks.check_where(where, shape, fn, what="inputs'")
    return jnp.any(keep, axis=axes), keep


# --------------------------------------------------------------------------------------
# Public functions.


def nll_loss(
    log_probs: ArrayLike,
    labels: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: str = "none",
) -> jax.Array:
    r"""Negative log-likelihood of integer labels under given log-probabilities
    (PyTorch's ``nll_loss`` / ``NLLLoss``).

    .. math:: \ell_i = -w_{y_i}\, \mathrm{lp}_{i y_i}

    The input is taken as given, not renormalized: its gradient is ``-w_{y_i}`` at the
    label and 0 at every other class. ``nll_loss(jax.nn.log_softmax(logits), labels)``
    is :func:`sparse_categorical_cross_entropy` in value and gradient ("CrossEntropyLoss
    = LogSoftmax + NLLLoss"); the fused loss is faster and keeps less for reverse mode.
    Like PyTorch, the input is not checked to be ``<= 0`` or normalized. A ``-inf``
    log-probability at the label gives ``+inf``, unless its weight is 0 (then 0).
    Masking, ``ignore_index``, class and sample weights and the weighted ``"mean"``
    (``sum_i s_i l_i / sum_i s_i w_{y_i}``, PyTorch's) follow
    :func:`sparse_categorical_cross_entropy`; a label outside ``[0, C)`` gives NaN.
    PyTorch's defaults differ: ``ignore_index=-100`` and ``reduction="mean"``; pass
    them to get its numbers.

    Args:
      log_probs: ``[..., C, ...]`` log-probabilities (for PyTorch's ``[N, C, d1, ...]``
        pass ``axis=1``).
      labels: integer labels, the input's shape without the class axis.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask.
      sample_weight: float weight per example, ``>= 0``.
      class_weights: ``[C]`` weights ``>= 0`` (PyTorch's ``weight``).
      ignore_index: a label value to skip.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      Per-example losses of the labels' shape, or a scalar.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> log_probs = jnp.log(jnp.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]]))
      >>> labels = jnp.array([0, 2])
      >>> print(jaxloss.nll_loss(log_probs, labels))  # -log .7, -log .5
      [0.3567 0.6931]
      >>> print(jax.grad(lambda lp: jaxloss.nll_loss(lp, labels, reduction="sum"))(log_probs))
      [[-1.  0.  0.]
       [ 0.  0. -1.]]
    """
    fn = "nll_loss"
    log_probs, axes = _softmax.prepare_logits(log_probs, axis, fn, "log_probs")
    labels = _softmax.prepare_labels(labels, log_probs, axes, axis, fn, name="log_probs")
    per_example = _softmax.batch_shape(tuple(log_probs.shape), axes)
    log_probs, ax = _softmax.merge_class_axes(log_probs, axes)
    class_weights = _checks.check_class_weights(class_weights, log_probs.shape[ax], fn)
    kernel = NLL(fn=fn, axis=ax, ignore_index=_checks.check_ignore_index(ignore_index, fn))
    return _reduction.apply(
        kernel,
        (log_probs, labels, class_weights),
        _checks.check_where(where, per_example, fn),
        _checks.check_sample_weight(sample_weight, per_example, fn, "per-example"),
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
    )


def kl_divergence_with_log_targets(
    log_predictions: ArrayLike,
    log_targets: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    r"""Drop-in for ``optax.kl_divergence_with_log_targets``: ``KL(t || p)`` from
    log-probabilities of both.

    .. math:: \operatorname{KL}_i = \sum_c e^{\mathrm{lt}_{ic}}
        (\mathrm{lt}_{ic} - \mathrm{lp}_{ic})

    The inputs are taken as given (not renormalized), as in optax: the gradient with
    respect to ``log_predictions`` is ``-exp(log_targets)``. For normalized
    ``log_predictions = log_softmax(x)`` this equals :func:`kl_divergence` of ``x``
    and ``exp(log_targets)``, and :func:`kl_divergence_with_logits` with
    ``temperature=1`` when ``log_targets`` is a log-softmax too. A class with
    ``log_target = -inf`` contributes exactly 0, also where ``log_predictions`` is
    ``-inf`` (optax: NaN); a finite ``log_target`` where ``log_predictions`` is
    ``-inf`` gives ``+inf``, also where ``exp(log_target)`` underflows to 0. A positive
    log-target (a probability above 1) makes its example NaN, and
    :func:`jaxloss.checked` raises.

    Args:
      log_predictions: ``[..., C, ...]`` predicted log-probabilities.
      log_targets: target log-probabilities, the same shape.
      axis: the class axis (or axes).
      where: as in optax, a boolean mask broadcastable to the inputs that drops
        elements from the sums (an example with none left is masked); a mask of the
        per-example shape that does not broadcast to the inputs masks examples.
      sample_weight: float weight per example, ``>= 0`` (not in optax).
      reduction: ``"none"`` (optax), ``"sum"`` or ``"mean"`` over unmasked examples.

    Returns:
      Per-example divergences (the inputs' shape without the class axes), or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> log_p = jnp.log(jnp.array([0.25, 0.75]))
      >>> log_t = jnp.log(jnp.array([0.5, 0.5]))
      >>> print(jaxloss.kl_divergence_with_log_targets(log_p, log_t))  # .5 log 2 + .5 log(2/3)
      0.1438
    """
    fn = "kl_divergence_with_log_targets"
    args = (log_predictions, log_targets, "log_targets", axis, where, reduction, sample_weight)
    return _run_terms(fn, KLWithLogTargets, *args)


def generalized_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    r"""Drop-in for ``optax.generalized_kl_divergence``: the KL divergence extended to
    non-negative measures that need not sum to 1 (a Bregman divergence, convex in
    ``log_predictions``).

    .. math:: D_i = \sum_c t_{ic} (\log t_{ic} - \mathrm{lp}_{ic})
        + e^{\mathrm{lp}_{ic}} - t_{ic}

    With ``0 log 0 = 0``: a zero target contributes ``exp(lp)``. It is 0 exactly
    where ``exp(lp) = t`` and equals the KL divergence when both sum to 1. Gradients:
    ``exp(lp) - t`` for ``log_predictions`` and ``log t - lp`` for the targets (``log 0``
    read as the log of the smallest normal float, finite where optax gives NaN; 0 for a
    class that neither measure has, ``t = 0`` and ``lp = -inf``, as dropping it would
    give).
    Targets must be ``>= 0`` (they may exceed 1); a negative one makes its example
    NaN, and :func:`jaxloss.checked` raises.

    Args:
      log_predictions: ``[..., C, ...]`` log of the predicted measure.
      targets: the target measure, ``>= 0``, the same shape.
      axis: the class axis (or axes).
      where: as in optax, a boolean mask broadcastable to the inputs that drops
        elements from the sums (an example with none left is masked); a mask of the
        per-example shape that does not broadcast to the inputs masks examples.
      sample_weight: float weight per example, ``>= 0`` (not in optax).
      reduction: ``"none"`` (optax), ``"sum"`` or ``"mean"`` over unmasked examples.

    Returns:
      Per-example divergences (the inputs' shape without the class axes), or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> log_p = jnp.log(jnp.array([1.0, 2.0]))
      >>> t = jnp.array([2.0, 2.0])
      >>> # 2 log 2 + 1 - 2  +  0 + 2 - 2
      >>> print(jaxloss.generalized_kl_divergence(log_p, t))
      0.3863

    References:
      Boyd and Vandenberghe, "Convex Optimization", 2004, p. 90.
    """
    fn = "generalized_kl_divergence"
    args = (log_predictions, targets, "targets", axis, where, reduction, sample_weight)
    return _run_terms(fn, GeneralizedKL, *args)


def convex_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    sample_weight: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    r"""Drop-in for ``optax.convex_kl_divergence``, which optax deprecates in favour of
    its new name: :func:`generalized_kl_divergence`, the same function.

    .. math:: D_i = \sum_c t_{ic} (\log t_{ic} - \mathrm{lp}_{ic})
        + e^{\mathrm{lp}_{ic}} - t_{ic}

    Args:
      log_predictions: ``[..., C, ...]`` log of the predicted measure.
      targets: the target measure, ``>= 0``, the same shape.
      axis: the class axis (or axes).
      where: an elementwise mask as in optax, or a per-example one.
      sample_weight: float weight per example, ``>= 0`` (not in optax).
      reduction: ``"none"`` (optax), ``"sum"`` or ``"mean"``.

    Returns:
      Per-example divergences, or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> print(jaxloss.convex_kl_divergence(jnp.log(jnp.array([1.0, 2.0])), jnp.array([2.0, 2.0])))
      0.3863
    """
    fn = "convex_kl_divergence"
    args = (log_predictions, targets, "targets", axis, where, reduction, sample_weight)
    return _run_terms(fn, GeneralizedKL, *args)
