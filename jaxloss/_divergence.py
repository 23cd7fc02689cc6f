"""Divergences and entropy on logits: KL (forward, reverse, logits-vs-logits with a
temperature), Jensen-Shannon, and the entropy of a softmax.

Every direction is stated: ``kl_divergence(logits, targets)`` is
``KL(targets || softmax(logits))``, the one minimized by training a classifier on fixed
targets (it differs from the cross-entropy by the targets' entropy, a constant).

Each kernel is a forward pass and a hand-derived tangent that reads sanitized inputs
(masked rows, ``-inf`` logits) through the double-``where`` pattern, so that every
derivative of every order is finite. ``0 log 0`` is 0 throughout; a class with a
``-inf`` logit and no target mass contributes exactly 0. Forward KL, which the
benchmark grid measures, is written like the cross-entropy (plain arithmetic in its
forward pass, see :mod:`jaxloss._numerics`); the others use selects.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks, _long_rows, _numerics, _reduction, _softmax
from ._softmax import Axis

# --------------------------------------------------------------------------------------
# Shared pieces.


def _targets(targets, mask, axis, dtype):
    """Targets in the compute dtype, NaN where outside [0, 1], masked rows 0."""
    t = targets.astype(dtype)
    t = jnp.where((t >= 0) & (t <= 1), t, jnp.nan)
    return _numerics.mask_rows(t, _numerics.expand(mask, axis))


def _log_softmax(x, stats):
    """``(log p, p == 0)``, with ``log p`` replaced by 0 where ``p == 0`` (double
    where: ``p * log p`` and its derivatives are then 0 there)."""
    p = _softmax.softmax(x, stats)
    zero = p == 0
    return jnp.where(zero, 0, x - stats.row_max - stats.lse_rel), zero


def _finish(value, mask, axis):
    value = _numerics.mask_rows(value, _numerics.expand(mask, axis))
    return jnp.squeeze(value, axis)


def _dtangent(d, mask, axis, dtype):
    return _numerics.mask_rows(d.astype(dtype), _numerics.expand(mask, axis))


def _sum(k, x):
    """The sum over the classes (kept dims), over every shard with ``k.axis_name``."""
    return _softmax.row_sum(x, k.axis, k.axis_name)


def _rows_ok(k, targets, mask, t):
    """Whether every target of the row is in [0, 1] and none is NaN (class axis kept),
    on every shard; True in masked rows (their targets may be anything). ``t``: the
    targets as the rule reads them (masked rows 0), whose row sum carries a NaN."""
    ok = _softmax.targets_ok(targets, k.axis, k.axis_name, _sum(k, t))
    return ok if mask is None else ok | ~_numerics.expand(mask, k.axis)


def _stats(k, logits, targets, mask):
    return _softmax.row_stats(k.axis, logits, mask, k.axis_name)


@dataclasses.dataclass(frozen=True)
class _Divergence(_reduction.Kernel):
    """A divergence on logits and (optionally) a second array: the mask is ``where``,
    every unmasked example weighs 1, targets are probabilities."""

    axis: int
    axis_name: str | None = None  # the classes are split over this shard_map axis
    other_is_logits: ClassVar[bool] = False  # the second array holds probabilities

    def roles(self, arrays):
        return ("classes",) * (1 if isinstance(self, Entropy) else 2)

    def check(self, arrays, mask):
        if len(arrays) > 1 and not self.other_is_logits:
            rows = None
            if mask is not None:
                rows = jnp.broadcast_to(_numerics.expand(mask, self.axis), arrays[1].shape)
            _checks.check_in_unit_interval(self.fn, "target", arrays[1], rows)


# --------------------------------------------------------------------------------------
# Forward KL: KL(t || p) = sum_c t_c log t_c + sum_c t_c (-log p_c), p = softmax(x).
#
# d KL = sum_c (S p_c - t_c) dx_c + sum_c (log t_c + 1 - log p_c) dt_c,  S = sum_c t_c


def _kl_value(k, logits, targets, mask):
    dtype = _numerics.compute_dtype(logits)
    # NaN at a row of -inf or one holding +inf either way: no clamp (_softmax.row_max)
    stats = _softmax.forward_row_stats(k.axis, logits, None, k.axis_name, finite=False)
    stats = _softmax.poison_targets(stats, targets, k.axis, k.axis_name)  # NaN: bad target
    t = targets.astype(dtype)
    h = _softmax.half_nll(logits.astype(dtype), stats)
    terms = _numerics.xlogx(t) + 2 * _numerics.times(t, h) + _softmax.row_poison(stats)
    kl = _sum(k, terms)
    return _finish(kl, mask, k.axis)


def _kl_tangent(k, logits, targets, mask, _value, stats, d_logits, d_targets, _dm):
    dtype = _numerics.compute_dtype(logits)
    x = _softmax.sanitized_logits(logits, mask, k.axis)
    t = _numerics.mask_rows(targets.astype(dtype), _numerics.expand(mask, k.axis))
    ok = _rows_ok(k, targets, mask, t)  # NaN for a target outside [0, 1], or NaN
    out = 0
    if d_logits is not None:
        coef = _numerics.nan_where_not(ok, _sum(k, t))
        g = coef * _softmax.softmax(x, stats, None if k.remat else logits.dtype) - t
        out = out + _sum(k, g * _dtangent(d_logits, mask, k.axis, dtype))
    if d_targets is not None:  # log t + 1 - log p, 0 for a class with a -inf logit
        g = _numerics.safe_log(t) + 1 + 2 * _softmax.half_nll(x, stats)
        g = _numerics.nan_where_not(ok, jnp.where(x != -jnp.inf, g, 0))
        out = out + _sum(k, g * _dtangent(d_targets, mask, k.axis, dtype))
    return _finish(jnp.broadcast_to(out, stats.sum_exp.shape), mask, k.axis)


def _kl_stats(k, logits, targets, mask):
    return _softmax.row_stats(k.axis, logits, mask, k.axis_name, False)


_kl = _numerics.custom_rule(_kl_value, _kl_tangent, _kl_stats)


@dataclasses.dataclass(frozen=True)
class KL(_Divergence):
    remat: bool = True

    def values(self, arrays, mask):
        return _kl(self, *arrays, mask)


# --------------------------------------------------------------------------------------
# Reverse KL: KL(p || t) = sum_c p_c (log p_c - log t_c), p = softmax(x).
#
# d KL = sum_c p_c (log p_c - log t_c - KL) dx_c - sum_c (p_c / t_c) dt_c


def _reverse_kl_parts(k, logits, targets, mask, stats):
    """``p``, ``log p`` (0 where ``p = 0``), where ``p = 0`` exactly (a ``-inf`` logit:
    a finite logit's probability is never 0, even where float32 rounds it to 0), and
    the targets (1 there)."""
    dtype = _numerics.compute_dtype(logits)
    x = _softmax.sanitized_logits(logits, mask, k.axis)
    t = _targets(targets, mask, k.axis, dtype)
    zero = x == -jnp.inf
    log_p = jnp.where(zero, 0, x - stats.row_max - stats.lse_rel)
    t_safe = jnp.where(zero, 1, t)
    return _softmax.softmax(x, stats), log_p, zero, t_safe


def _reverse_kl_terms(p, log_p, zero, t):
    """``p (log p - log t)``: 0 where ``p = 0``, ``+inf`` where ``t = 0 < p`` (even if
    ``p`` underflows: KL(p || t) is infinite whenever t rules out a possible class)."""
    inf = jnp.where(t == 0, jnp.inf, 0)
    # p = 0 from a finite logit (a row spanning more than the float range: log p is
    # -inf) adds p log p -> 0, not 0 * -inf
    term = jnp.where(p == 0, 0, p * (log_p - jnp.log(jnp.where(t == 0, 1, t))))
    return jnp.where(zero, 0, term + inf)


def _reverse_kl_value(k, logits, targets, mask):
    stats = _softmax.row_stats(k.axis, logits, mask, k.axis_name)
    p, log_p, zero, t = _reverse_kl_parts(k, logits, targets, mask, stats)
    terms = _reverse_kl_terms(p, log_p, zero, t)
    return _finish(_sum(k, terms), mask, k.axis)


def _reverse_kl_tangent(k, logits, targets, mask, value, stats, d_logits, d_targets, _dm):
    dtype = _numerics.compute_dtype(logits)
    p, log_p, zero, t = _reverse_kl_parts(k, logits, targets, mask, stats)
    kl = jnp.expand_dims(value, k.axis)
    out = 0
    if d_logits is not None:
        g = jnp.where(zero | (p == 0), 0, p * (log_p - jnp.log(t) - kl))
        out = out + _sum(k, g * _dtangent(d_logits, mask, k.axis, dtype))
    if d_targets is not None:  # NaN in the whole row of a target outside [0, 1]
        g = _numerics.nan_where_not(_rows_ok(k, targets, mask, t), jnp.where(zero, 0, -p / t))
        out = out + _sum(k, g * _dtangent(d_targets, mask, k.axis, dtype))
    return _finish(jnp.broadcast_to(out, stats.sum_exp.shape), mask, k.axis)


_reverse_kl = _numerics.custom_rule(_reverse_kl_value, _reverse_kl_tangent, _stats)


@dataclasses.dataclass(frozen=True)
class ReverseKL(_Divergence):
    def values(self, arrays, mask):
        return _reverse_kl(self, *arrays, mask)


# --------------------------------------------------------------------------------------
# KL between two softmaxes at temperature T: KL(q || p), q = softmax(b), p = softmax(a),
# with a = (x - max x) / T and b = (y - max y) / T. Shifting before scaling makes the
# largest of each exactly 0 whatever T is, and halving first keeps the shift from
# overflowing: a = (x/2 - max/2) * (2/T).
#
# d KL = sum_c (p_c - q_c) dx_c / T + sum_c q_c (log q_c - log p_c - KL) dy_c / T


def _half_scaled(k, logits):
    """``(logits - row max) / (2T)`` in the compute dtype (masked rows: garbage):
    halved, so that a row spanning the whole float range does not overflow."""
    dtype = _numerics.compute_dtype(logits)
    m = _softmax.row_max(logits, k.axis, dtype, k.axis_name)
    return (logits.astype(dtype) / 2 - m / 2) / k.temperature


def _kl_logits_stats(k, logits, target_logits, mask):
    return (
        _softmax.row_stats(k.axis, 2 * _half_scaled(k, logits), mask, k.axis_name),
        _softmax.row_stats(k.axis, 2 * _half_scaled(k, target_logits), mask, k.axis_name),
    )


def _kl_logits_parts(k, logits, target_logits, mask, stats):
    """``p``, ``q``, ``q == 0`` and ``(log q - log p) / 2`` (finite wherever the true
    value is representable, ``+inf`` at a ``-inf`` student logit)."""
    mask_c = _numerics.expand(mask, k.axis)
    a = _numerics.mask_rows(_half_scaled(k, logits), mask_c)
    b = _numerics.mask_rows(_half_scaled(k, target_logits), mask_c)
    p = _softmax.softmax(2 * a, stats[0])
    q = _softmax.softmax(2 * b, stats[1])
    half_ratio = (b - a) + (stats[0].lse - stats[1].lse) / 2
    return p, q, q == 0, half_ratio


def _kl_logits_value(k, logits, target_logits, mask):
    stats = _kl_logits_stats(k, logits, target_logits, mask)
    _, q, q_zero, half_ratio = _kl_logits_parts(k, logits, target_logits, mask, stats)
    # Where q rounds to 0, a class adds 0, unless the student rules it out (a -inf
    # logit) and the teacher does not (a finite one): its true q is positive there,
    # and q (log q - log p) is +inf however small q is.
    ruled_out = (logits == -jnp.inf) & (target_logits > -jnp.inf)
    terms = jnp.where(q_zero, jnp.where(ruled_out, jnp.inf, 0), q * half_ratio)
    return _finish(2 * _sum(k, terms), mask, k.axis)


def _kl_logits_tangent(k, logits, target_logits, mask, value, stats, dx, dy, _dm):
    dtype = _numerics.compute_dtype(logits)
    p, q, q_zero, half_ratio = _kl_logits_parts(k, logits, target_logits, mask, stats)
    out = 0
    if dx is not None:
        g = (p - q) / k.temperature
        out = out + _sum(k, g * _dtangent(dx, mask, k.axis, dtype))
    if dy is not None:
        half_kl = jnp.expand_dims(value, k.axis) / 2
        g = jnp.where(q_zero, 0, q * (2 * (half_ratio - half_kl))) / k.temperature
        out = out + _sum(k, g * _dtangent(dy, mask, k.axis, dtype))
    return _finish(jnp.broadcast_to(out, stats[0].sum_exp.shape), mask, k.axis)


_kl_logits = _numerics.custom_rule(_kl_logits_value, _kl_logits_tangent, _kl_logits_stats)


@dataclasses.dataclass(frozen=True)
class KLWithLogits(_Divergence):
    temperature: float = 1.0
    other_is_logits: ClassVar[bool] = True

    def values(self, arrays, mask):
        return _kl_logits(self, *arrays, mask)


# --------------------------------------------------------------------------------------
# Jensen-Shannon: JS = (KL(p || r) + KL(t || r)) / 2, r = (p + t) / 2, p = softmax(x).
#
# d JS = sum_c p_c (g_c - sum_k p_k g_k) dx_c + sum_c h_c dt_c,
# g_c = log(p_c / r_c) / 2, h_c = log(t_c / r_c) / 2, and sum_k p_k g_k = KL(p || r) / 2.


def _js_parts(k, logits, targets, mask, stats):
    dtype = _numerics.compute_dtype(logits)
    x = _softmax.sanitized_logits(logits, mask, k.axis)
    t = _targets(targets, mask, k.axis, dtype)
    p = _softmax.softmax(x, stats)
    log_p, _ = _log_softmax(x, stats)
    log_r = _numerics.safe_log((p + t) / 2)
    return p, t, log_p, _numerics.safe_log(t), log_r


def _js_value(k, logits, targets, mask):
    stats = _softmax.row_stats(k.axis, logits, mask, k.axis_name)
    p, t, log_p, log_t, log_r = _js_parts(k, logits, targets, mask, stats)
    terms = p * (log_p - log_r) + t * (log_t - log_r)
    return _finish(_sum(k, terms) / 2, mask, k.axis)


def _js_tangent(k, logits, targets, mask, _value, stats, d_logits, d_targets, _dm):
    dtype = _numerics.compute_dtype(logits)
    p, t, log_p, log_t, log_r = _js_parts(k, logits, targets, mask, stats)
    out = 0
    if d_logits is not None:
        g = (log_p - log_r) / 2
        g = p * (g - _sum(k, p * g))
        out = out + _sum(k, g * _dtangent(d_logits, mask, k.axis, dtype))
    if d_targets is not None:  # NaN in the whole row of a target outside [0, 1]
        h = _numerics.nan_where_not(_rows_ok(k, targets, mask, t), (log_t - log_r) / 2)
        out = out + _sum(k, h * _dtangent(d_targets, mask, k.axis, dtype))
    return _finish(jnp.broadcast_to(out, stats.sum_exp.shape), mask, k.axis)


_js = _numerics.custom_rule(_js_value, _js_tangent, _stats)


@dataclasses.dataclass(frozen=True)
class JS(_Divergence):
    def values(self, arrays, mask):
        return _js(self, *arrays, mask)


# --------------------------------------------------------------------------------------
# Entropy of the softmax: H = -sum_c p_c log p_c.
#
# d H = -sum_c p_c (log p_c + H) dx_c


def _entropy_value(k, logits, mask):
    stats = _softmax.row_stats(k.axis, logits, mask, k.axis_name)
    x = _softmax.sanitized_logits(logits, mask, k.axis)
    log_p, zero = _log_softmax(x, stats)
    terms = jnp.where(zero, 0, _softmax.softmax(x, stats) * log_p)
    return _finish(0 - _sum(k, terms), mask, k.axis)


def _entropy_tangent(k, logits, mask, value, stats, d_logits, _dm):
    dtype = _numerics.compute_dtype(logits)
    x = _softmax.sanitized_logits(logits, mask, k.axis)
    log_p, zero = _log_softmax(x, stats)
    h = jnp.expand_dims(value, k.axis)
    g = jnp.where(zero, 0, -_softmax.softmax(x, stats) * (log_p + h))
    out = _sum(k, g * _dtangent(d_logits, mask, k.axis, dtype))
    return _finish(out, mask, k.axis)


_entropy = _numerics.custom_rule(
    _entropy_value,
    _entropy_tangent,
    lambda k, logits, mask: _softmax.row_stats(k.axis, logits, mask, k.axis_name),
)


@dataclasses.dataclass(frozen=True)
class Entropy(_Divergence):
    def values(self, arrays, mask):
        return _entropy(self, *arrays, mask)


# --------------------------------------------------------------------------------------
# Public functions.


def _run(
    fn, kernel_cls, logits, other, other_name, axis, where, reduction, sample_weight, **options
):
    """Checks the arguments, merges the class axes and runs the kernel."""
    options["axis_name"] = _checks.check_axis_name(options.get("axis_name"), fn)
    logits, axes = _softmax.prepare_logits(logits, axis, fn)
    arrays = ()
    if other is not None:
        other = _checks.check_same_shape(fn, logits, other, other_name)
        if kernel_cls is KLWithLogits:
            _checks.check_floating(other, other_name, fn)
        else:
            _checks.check_real(other, other_name, fn)
        arrays = (_softmax.merge_class_axes(other, axes)[0],)
    per_example = _softmax.batch_shape(tuple(logits.shape), axes)
    logits, ax = _softmax.merge_class_axes(logits, axes)
    arrays = (logits, *arrays)
    return _reduction.apply(
        _long_rows.maybe_split(kernel_cls(fn=fn, axis=ax, **options), arrays),
        arrays,
        _checks.check_where(where, per_example, fn),
        _checks.check_sample_weight(sample_weight, per_example, fn, "per-example"),
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
    )


def kl_divergence(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: str = "none",
    residuals: str = "auto",
    axis_name: str | None = None,
) -> jax.Array:
    r"""Kullback-Leibler divergence ``KL(targets || softmax(logits))``.

    .. math::
        \operatorname{KL}(t \,\|\, p) = \sum_c t_c \,(\log t_c - \log p_c),
        \qquad p = \operatorname{softmax}(x)

    with ``0 log 0 = 0``: a class with zero target mass contributes exactly 0, also
    when its logit is ``-inf``. It equals :func:`categorical_cross_entropy` minus the
    targets' entropy, so minimizing it over the logits for fixed targets is minimizing
    the cross-entropy. Passing log-probabilities as ``logits`` gives optax's
    ``kl_divergence(log_predictions, targets)`` (softmax leaves normalized
    log-probabilities unchanged), and PyTorch's ``kl_div(log_p, t, reduction="none")``
    summed over the classes. Targets must lie in [0, 1]; a row with one outside it
    gets NaN.

    Gradients: with respect to the logits ``p - t`` (times the row's target mass);
    with respect to the targets ``log t_c + 1 - log p_c``, where ``log 0`` is read as
    the log of the smallest normal float (finite, where optax gives NaN and PyTorch
    ``-inf``) and a class with a ``-inf`` logit gets 0.

    Args:
      logits: ``[..., C, ...]`` predicted logits (or log-probabilities).
      targets: target distributions, the logits' shape.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask; masked examples give exactly 0.
      sample_weight: float weight per example, ``>= 0``: multiplies its value and its
        weight in ``"mean"``.
      reduction: ``"none"``, ``"sum"``, or ``"mean"`` over unmasked examples
        (PyTorch's ``"batchmean"``, Keras's default).
      residuals: ``"auto"``, ``"lse"`` or ``"softmax"``: what reverse mode keeps (see
        :func:`categorical_cross_entropy`).
      axis_name: inside ``jax.shard_map``, the mesh axis over which the classes are
        split in contiguous shards (``logits`` and ``targets`` are the local shards):
        the same values and derivatives as the unsharded call, from a few numbers per
        example exchanged with ``pmax`` and ``psum``.

    Returns:
      Per-example divergences (the logits' shape without the class axis) or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> targets = jnp.array([[0.5, 0.5], [1.0, 0.0]])
      >>> logits = jnp.log(jnp.array([[0.25, 0.75], [0.25, 0.75]]))
      >>> # .5 log(.5/.25) + .5 log(.5/.75) = 0.1438;  1 * log(1/.25) = 1.3863
      >>> print(jaxloss.kl_divergence(logits, targets))
      [0.1438 1.3863]
    """
    fn = "kl_divergence"
    residuals = _checks.check_residuals(residuals, fn)
    logits = _checks.as_array(logits, "logits", fn)
    return _run(
        fn,
        KL,
        logits,
        targets,
        "targets",
        axis,
        where,
        reduction,
        sample_weight=sample_weight,
        axis_name=axis_name,
        remat=not _softmax.keep_softmax(residuals, logits),
    )


def reverse_kl_divergence(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: str = "none",
    axis_name: str | None = None,
) -> jax.Array:
    r"""Reverse Kullback-Leibler divergence ``KL(softmax(logits) || targets)``.

    .. math::
        \operatorname{KL}(p \,\|\, t) = \sum_c p_c \,(\log p_c - \log t_c),
        \qquad p = \operatorname{softmax}(x)

    The mode-seeking direction (used in variational inference and some distillation
    schemes): it is ``+inf`` where the prediction puts mass on a class the targets rule
    out (``t_c = 0 < p_c``), which is every class with a finite logit, even where
    float32 rounds ``p_c`` to 0; a class with ``p_c = 0`` (a ``-inf`` logit) contributes
    exactly 0. Gradients: ``p_c (log p_c - log t_c - KL)`` for the logits and
    ``-p_c / t_c`` for the targets, 0 wherever ``p_c = 0``. Targets must lie in
    [0, 1]; a row with one outside it gets NaN.

    Args:
      logits: ``[..., C, ...]`` predicted logits.
      targets: target distributions, the logits' shape.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask; masked examples give exactly 0.
      sample_weight: float weight per example, ``>= 0``: multiplies its value and its
        weight in ``"mean"``.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` over unmasked examples.
      axis_name: inside ``jax.shard_map``, the mesh axis over which the classes are
        split in contiguous shards (the arrays are the local shards): the same values
        and derivatives as the unsharded call, from a few numbers per example
        exchanged with ``pmax`` and ``psum``.

    Returns:
      Per-example divergences or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.log(jnp.array([[0.25, 0.75]]))
      >>> targets = jnp.array([[0.5, 0.5]])
      >>> # .25 log(.25/.5) + .75 log(.75/.5) = 0.1308
      >>> print(jaxloss.reverse_kl_divergence(logits, targets))
      [0.1308]
    """
    return _run(
        "reverse_kl_divergence",
        ReverseKL,
        logits,
        targets,
        "targets",
        axis,
        where,
        reduction,
        sample_weight=sample_weight,
        axis_name=axis_name,
    )


def kl_divergence_with_logits(
    logits: ArrayLike,
    target_logits: ArrayLike,
    *,
    temperature: float = 1.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: str = "none",
    axis_name: str | None = None,
) -> jax.Array:
    r"""``KL(softmax(target_logits / T) || softmax(logits / T))``, for distillation.

    .. math::
        \operatorname{KL}(q \,\|\, p) = \sum_c q_c (\log q_c - \log p_c),\qquad
        q = \operatorname{softmax}(y / T),\ p = \operatorname{softmax}(x / T)

    The teacher's (``target_logits``) distribution is the first argument of the KL,
    as in Hinton et al.'s distillation loss. The ``T**2`` factor that keeps the
    gradient's scale independent of ``T`` is left to the caller
    (``temperature**2 * kl_divergence_with_logits(...)``). Both arguments are
    differentiable (wrap the teacher in ``jax.lax.stop_gradient`` to freeze it).
    Equal to optax's ``kl_divergence_with_log_targets`` on the log-softmaxes. Exact
    for logits of any finite size and any temperature: each row is shifted by its
    maximum before it is divided by ``T``. A ``-inf`` teacher logit rules its class
    out (it adds 0); a ``-inf`` student logit where the teacher's is finite makes the
    divergence ``+inf``, even where ``q`` underflows to 0 in floating point.

    Args:
      logits: ``[..., C, ...]`` student logits.
      target_logits: teacher logits, the same shape.
      temperature: ``T``, finite and ``> 0``, dividing both sets of logits.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask; masked examples give exactly 0.
      sample_weight: float weight per example, ``>= 0``: multiplies its value and its
        weight in ``"mean"``.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` over unmasked examples.
      axis_name: inside ``jax.shard_map``, the mesh axis over which the classes are
        split in contiguous shards (the arrays are the local shards): the same values
        and derivatives as the unsharded call, from a few numbers per example
        exchanged with ``pmax`` and ``psum``.

    Returns:
      Per-example divergences or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> student = jnp.log(jnp.array([[0.25, 0.75]]))
      >>> teacher = jnp.log(jnp.array([[0.5, 0.5]]))
      >>> print(jaxloss.kl_divergence_with_logits(student, teacher))  # KL(.5,.5 || .25,.75)
      [0.1438]
      >>> # T = 2: p = softmax(log([.25, .75]) / 2) = [.366, .634], q stays [.5, .5]
      >>> print(jaxloss.kl_divergence_with_logits(student, teacher, temperature=2.0))
      [0.0373]

    References:
      Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", 2015.
    """
    fn = "kl_divergence_with_logits"
    temperature = _checks.check_positive(temperature, "temperature", fn)
    return _run(
        fn,
        KLWithLogits,
        logits,
        target_logits,
        "target_logits",
        axis,
        where,
        reduction,
        sample_weight=sample_weight,
        temperature=temperature,
        axis_name=axis_name,
    )


def js_divergence(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: str = "none",
    axis_name: str | None = None,
) -> jax.Array:
    r"""Jensen-Shannon divergence between ``softmax(logits)`` and ``targets``.

    .. math::
        \operatorname{JS}(p, t) = \tfrac12 \operatorname{KL}(p \,\|\, r)
          + \tfrac12 \operatorname{KL}(t \,\|\, r), \qquad r = \tfrac12 (p + t)

    Symmetric, finite, and between 0 and ``log 2`` for distributions (in nats; divide
    by ``log 2`` for bits, or use :func:`jaxloss.info.js_divergence`). ``0 log 0 = 0``;
    gradients are finite everywhere, with ``log 0`` read as the log of the smallest
    normal float. Targets must lie in [0, 1]; a row with one outside it gets NaN.

    Args:
      logits: ``[..., C, ...]`` predicted logits.
      targets: target distributions, the logits' shape.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask; masked examples give exactly 0.
      sample_weight: float weight per example, ``>= 0``: multiplies its value and its
        weight in ``"mean"``.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` over unmasked examples.
      axis_name: inside ``jax.shard_map``, the mesh axis over which the classes are
        split in contiguous shards (the arrays are the local shards): the same values
        and derivatives as the unsharded call, from a few numbers per example
        exchanged with ``pmax`` and ``psum``.

    Returns:
      Per-example divergences or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.log(jnp.array([[1.0, 0.0], [0.5, 0.5]]))  # p = [1, 0], [.5, .5]
      >>> targets = jnp.array([[0.0, 1.0], [0.5, 0.5]])
      >>> print(jaxloss.js_divergence(logits, targets))  # disjoint: log 2; equal: 0
      [0.6931 0.    ]
    """
    args = (logits, targets, "targets", axis, where, reduction)
    return _run("js_divergence", JS, *args, sample_weight=sample_weight, axis_name=axis_name)


def entropy(
    logits: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    reduction: str = "none",
    axis_name: str | None = None,
) -> jax.Array:
    r"""Entropy of ``softmax(logits)`` in nats.

    .. math:: H(p) = -\sum_c p_c \log p_c, \qquad p = \operatorname{softmax}(x)

    ``0 log 0 = 0`` (classes with ``-inf`` logits add nothing); the gradient
    ``-p_c (log p_c + H)`` is finite everywhere. For probabilities, or bits, see
    :func:`jaxloss.info.entropy`.

    Args:
      logits: ``[..., C, ...]`` logits.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask; masked examples give exactly 0.
      sample_weight: float weight per example, ``>= 0``: multiplies its value and its
        weight in ``"mean"``.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` over unmasked examples.
      axis_name: inside ``jax.shard_map``, the mesh axis over which the classes are
        split in contiguous shards (``logits`` is the local shard): the same values
        and derivatives as the unsharded call, from a few numbers per example
        exchanged with ``pmax`` and ``psum``.

    Returns:
      Per-example entropies or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> print(jaxloss.entropy(jnp.array([[0.0, 0.0], [0.0, -jnp.inf]])))  # log 2, 0
      [0.6931 0.    ]
    """
    args = (logits, None, "", axis, where, reduction)
    return _run("entropy", Entropy, *args, sample_weight=sample_weight, axis_name=axis_name)
