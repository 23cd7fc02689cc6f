"""Divergences and entropy on logits: KL (forward, reverse, logits-vs-logits with a
temperature), Jensen-Shannon, and the entropy of a softmax.

Every direction is stated: ``kl_divergence(logits, targets)`` is
``KL(targets || softmax(logits))``, the one minimized by training a classifier on fixed
targets (it differs from the cross-entropy by the targets' entropy, a constant).

Each kernel follows the softmax cross-entropy's pattern: a forward pass of fused
reductions that leaves a few numbers per example, and a hand-derived tangent, run
under ``jax.checkpoint``, that recomputes the softmax. ``0 log 0`` is 0 throughout; a
class with a ``-inf`` logit and no target mass contributes exactly 0.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks, _numerics, _reduction, _softmax
from ._cross_entropy import _cross_entropy
from ._softmax import Axis

# --------------------------------------------------------------------------------------
# Shared pieces. ``x`` are the (row-masked) logits in the compute dtype, ``m`` the row
# maximum and ``lse`` (``lse_rel``) the log-sum-exp of ``x - m``; ``log p = x - m - lse``.


def _logits_in(logits, mask_c, dtype):
    return _numerics.mask_rows(logits.astype(dtype), mask_c)


def _log_probs_clamped(x, m, lse):
    """``log p`` with ``-inf`` raised to the most negative float: ``p * this`` is 0
    for a class with a ``-inf`` logit."""
    return _numerics.clamp_low(x - m) - lse


def _finish(value, mask_c, axis):
    value = _numerics.mask_rows(value, mask_c)
    return jnp.squeeze(value, axis)


def _masked_tangent(d, mask_c, dtype):
    return None if d is None else _numerics.mask_rows(d.astype(dtype), mask_c)


# --------------------------------------------------------------------------------------
# Reverse KL: KL(p || t) = sum_c p_c (log p_c - log t_c), p = softmax(x).
#
# d KL = sum_c p_c (log p_c - log t_c - KL) dx_c - sum_c (p_c / t_c) dt_c


def _reverse_kl_forward(axis, logits, targets, mask):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, axis)
    x = _logits_in(logits, mask_c, dtype)
    t = _numerics.mask_rows(targets.astype(dtype), mask_c, 1)
    m = _softmax.row_max(_numerics.mask_rows(logits, mask_c), axis, dtype)
    lse = _softmax.log_sum_exp_rel(x, m, axis)
    shift = _softmax.barrier(m)
    e = jnp.exp(x - shift)
    # sum_c e_c (log p_c - log t_c) / Z with 0 where p_c = 0, +inf where t_c = 0 < p_c
    terms = jnp.where(e == 0, 0, e * (x - shift - jnp.log(t)))
    value = jnp.sum(terms, axis, keepdims=True) / jnp.exp(lse) - lse
    return _finish(value, mask_c, axis), (m, lse, value)


def _reverse_kl_tangent(axis, logits, targets, mask, m, lse, value, d_logits, d_targets, _dm):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, axis)
    x = _logits_in(logits, mask_c, dtype)
    t = _numerics.mask_rows(targets.astype(dtype), mask_c, 1)
    p = jnp.exp(x - m - lse)
    out = 0
    if d_logits is not None:
        g = jnp.where(p == 0, 0, p * (x - m - lse - jnp.log(t) - value))
        out = out + jnp.sum(g * _masked_tangent(d_logits, mask_c, dtype), axis, keepdims=True)
    if d_targets is not None:
        g = jnp.where(p == 0, 0, -p / t)
        out = out + jnp.sum(g * _masked_tangent(d_targets, mask_c, dtype), axis, keepdims=True)
    return _finish(jnp.broadcast_to(out, lse.shape), mask_c, axis)


_reverse_kl = _numerics.custom_rule(_reverse_kl_forward, _reverse_kl_tangent, num_static=1)


# --------------------------------------------------------------------------------------
# KL between two softmaxes at temperature T: KL(q || p), q = softmax(b), p = softmax(a),
# a = x / T, b = y / T:  KL = sum_c q_c (b_c - a_c) - lse(b) + lse(a).
#
# d KL = sum_c (p_c - q_c) da_c + sum_c q_c (log q_c - log p_c - KL) db_c,
# with da = dx / T and db = dy / T.


def _scale(x, temperature):
    return x if temperature == 1.0 else x / temperature


def _scaled(logits, mask_c, dtype, temperature):
    return _scale(_logits_in(logits, mask_c, dtype), temperature)


def _kl_logits_forward(axis, temperature, logits, target_logits, mask):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, axis)
    a = _scaled(logits, mask_c, dtype, temperature)
    b = _scaled(target_logits, mask_c, dtype, temperature)
    ma = _scale(_softmax.row_max(_numerics.mask_rows(logits, mask_c), axis, dtype), temperature)
    mb = _scale(
        _softmax.row_max(_numerics.mask_rows(target_logits, mask_c), axis, dtype), temperature
    )
    lse_a = _softmax.log_sum_exp_rel(a, ma, axis)
    lse_b = _softmax.log_sum_exp_rel(b, mb, axis)
    sa, sb = _softmax.barrier(ma), _softmax.barrier(mb)
    # sum_c e^(b_c - mb) (log q_c - log p_c) / Zb; clamping keeps 0 * (-inf) at 0
    log_ratio = _numerics.clamp_low(b - sb) - _numerics.clamp_low(a - sa)
    weighted = jnp.sum(jnp.exp(b - sb) * log_ratio, axis, keepdims=True)
    value = weighted / jnp.exp(lse_b) - lse_b + lse_a
    # target mass where the prediction has none: KL is +inf
    infinite = jnp.any((b > -jnp.inf) & (a == -jnp.inf), axis, keepdims=True)
    value = jnp.where(infinite, jnp.inf, value)
    return _finish(value, mask_c, axis), (ma, mb, lse_a, lse_b, value)


def _kl_logits_tangent(
    axis, temperature, logits, target_logits, mask, ma, mb, lse_a, lse_b, value, dx, dy, _dm
):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, axis)
    a = _scaled(logits, mask_c, dtype, temperature)
    b = _scaled(target_logits, mask_c, dtype, temperature)
    q = jnp.exp(b - mb - lse_b)
    out = 0
    if dx is not None:
        p = jnp.exp(a - ma - lse_a)
        g = (p - q) / temperature
        out = out + jnp.sum(g * _masked_tangent(dx, mask_c, dtype), axis, keepdims=True)
    if dy is not None:
        log_ratio = _log_probs_clamped(b, mb, lse_b) - _log_probs_clamped(a, ma, lse_a)
        g = q * (log_ratio - value) / temperature
        out = out + jnp.sum(g * _masked_tangent(dy, mask_c, dtype), axis, keepdims=True)
    return _finish(jnp.broadcast_to(out, lse_a.shape), mask_c, axis)


_kl_logits = _numerics.custom_rule(_kl_logits_forward, _kl_logits_tangent, num_static=2)


# --------------------------------------------------------------------------------------
# Jensen-Shannon: JS = (KL(p || r) + KL(t || r)) / 2, r = (p + t) / 2, p = softmax(x).
#
# d JS = sum_c p_c (g_c - sum_k p_k g_k) dx_c + sum_c h_c dt_c,
# g_c = log(p_c / r_c) / 2, h_c = log(t_c / r_c) / 2, and sum_k p_k g_k = KL(p || r) / 2.


def _js_parts(x, t, m, lse):
    """Elementwise ``p``, ``log p`` (clamped), ``log t`` (clamped) and ``log r``."""
    log_p = _log_probs_clamped(x, m, lse)
    p = jnp.exp(x - m - lse)
    return p, log_p, _numerics.safe_log(t), _numerics.safe_log((p + t) / 2)


def _js_forward(axis, logits, targets, mask):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, axis)
    x = _logits_in(logits, mask_c, dtype)
    t = _numerics.mask_rows(targets.astype(dtype), mask_c)
    m = _softmax.row_max(_numerics.mask_rows(logits, mask_c), axis, dtype)
    lse = _softmax.log_sum_exp_rel(x, m, axis)
    p, log_p, log_t, log_r = _js_parts(x, t, _softmax.barrier(m), lse)
    kl_p = jnp.sum(p * (log_p - log_r), axis, keepdims=True)
    kl_t = jnp.sum(t * (log_t - log_r), axis, keepdims=True)
    value = (kl_p + kl_t) / 2
    return _finish(value, mask_c, axis), (m, lse, kl_p)


def _js_tangent(axis, logits, targets, mask, m, lse, kl_p, d_logits, d_targets, _dm):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, axis)
    x = _logits_in(logits, mask_c, dtype)
    t = _numerics.mask_rows(targets.astype(dtype), mask_c)
    p, log_p, log_t, log_r = _js_parts(x, t, m, lse)
    out = 0
    if d_logits is not None:
        g = p * (log_p - log_r - kl_p) / 2
        out = out + jnp.sum(g * _masked_tangent(d_logits, mask_c, dtype), axis, keepdims=True)
    if d_targets is not None:
        h = (log_t - log_r) / 2
        out = out + jnp.sum(h * _masked_tangent(d_targets, mask_c, dtype), axis, keepdims=True)
    return _finish(jnp.broadcast_to(out, lse.shape), mask_c, axis)


_js = _numerics.custom_rule(_js_forward, _js_tangent, num_static=1)


# --------------------------------------------------------------------------------------
# Entropy of the softmax: H = -sum_c p_c log p_c = lse - sum_c p_c (x_c - m).
#
# d H = -sum_c p_c (log p_c + H) dx_c


def _entropy_forward(axis, logits, mask):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, axis)
    x = _logits_in(logits, mask_c, dtype)
    m = _softmax.row_max(_numerics.mask_rows(logits, mask_c), axis, dtype)
    lse = _softmax.log_sum_exp_rel(x, m, axis)
    shift = _softmax.barrier(m)
    weighted = jnp.sum(jnp.exp(x - shift) * _numerics.clamp_low(x - shift), axis, keepdims=True)
    value = lse - weighted / jnp.exp(lse)
    return _finish(value, mask_c, axis), (m, lse, value)


def _entropy_tangent(axis, logits, mask, m, lse, value, d_logits, _dm):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, axis)
    x = _logits_in(logits, mask_c, dtype)
    p = jnp.exp(x - m - lse)
    g = -p * (_log_probs_clamped(x, m, lse) + value)
    out = jnp.sum(g * _masked_tangent(d_logits, mask_c, dtype), axis, keepdims=True)
    return _finish(out, mask_c, axis)


_entropy = _numerics.custom_rule(_entropy_forward, _entropy_tangent, num_static=1)


# --------------------------------------------------------------------------------------
# The jitted implementation and the public functions.


@functools.partial(jax.jit, static_argnames=("kind", "axis", "temperature", "reduction"))
def _divergence(logits, other, where, *, kind, axis, temperature, reduction):
    mask = _reduction.example_mask(where)
    if kind == "reverse_kl":
        values = _reverse_kl(axis, logits, other, mask)
    elif kind == "kl_logits":
        values = _kl_logits(axis, temperature, logits, other, mask)
    elif kind == "js":
        values = _js(axis, logits, other, mask)
    else:
        values = _entropy(axis, logits, mask)
    weights = _reduction.count_weights(mask, values.dtype)
    return _reduction.reduce(values, weights, reduction)


def _prepare(fn, logits, other, other_name, axis, where, reduction, other_is_logits=False):
    logits, axes = _softmax.prepare_logits(logits, axis, fn)
    if other is not None:
        other = _softmax.check_same_shape(fn, logits, other, other_name)
        if other_is_logits:
            _checks.check_floating(other, other_name, fn)
        elif not jnp.issubdtype(other.dtype, jnp.number) or jnp.issubdtype(
            other.dtype, jnp.complexfloating
        ):
            raise TypeError(f"{fn}: {other_name} must be real numbers, got {other.dtype}")
        if len(axes) > 1:
            other = _softmax.flatten_class_axes(other, axes)
    logits, ax = _softmax.single_axis(logits, axes)
    where = _checks.check_where(where, _softmax.batch_shape(logits, ax), fn)
    return logits, other, ax, where, _checks.check_reduction(reduction, fn)


def kl_divergence(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    reduction: str = "none",
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
    summed over the classes.

    Gradients: with respect to the logits ``p - t`` (times the row's target mass);
    with respect to the targets ``log t_c + 1 - log p_c``, where ``log 0`` is read as
    the log of the smallest normal float (finite, where optax gives NaN and PyTorch
    ``-inf``) and a class with a ``-inf`` logit gets 0.

    Args:
      logits: ``[..., C, ...]`` predicted logits (or log-probabilities).
      targets: target distributions, the logits' shape.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask; masked examples give exactly 0.
      reduction: ``"none"``, ``"sum"``, or ``"mean"`` over unmasked examples
        (PyTorch's ``"batchmean"``, Keras's default).

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
    logits, targets, ax, where, reduction = _prepare(
        fn, logits, targets, "targets", axis, where, reduction
    )
    return _cross_entropy(
        logits,
        targets,
        where,
        None,
        fn=fn,
        axis=ax,
        sparse=False,
        ignore_index=None,
        smoothing=0.0,
        z_loss=0.0,
        reduction=reduction,
        checks=False,
        kl=True,
    )


def reverse_kl_divergence(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    r"""Reverse Kullback-Leibler divergence ``KL(softmax(logits) || targets)``.

    .. math::
        \operatorname{KL}(p \,\|\, t) = \sum_c p_c \,(\log p_c - \log t_c),
        \qquad p = \operatorname{softmax}(x)

    The mode-seeking direction (used in variational inference and some distillation
    schemes): it is ``+inf`` where the prediction puts mass on a class the targets rule
    out (``t_c = 0 < p_c``), and a class with ``p_c = 0`` (a ``-inf`` logit) contributes
    exactly 0. Gradients: ``p_c (log p_c - log t_c - KL)`` for the logits and
    ``-p_c / t_c`` for the targets, 0 wherever ``p_c = 0``.

    Args:
      logits: ``[..., C, ...]`` predicted logits.
      targets: target distributions, the logits' shape.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask; masked examples give exactly 0.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` over unmasked examples.

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
    fn = "reverse_kl_divergence"
    logits, targets, ax, where, reduction = _prepare(
        fn, logits, targets, "targets", axis, where, reduction
    )
    return _divergence(
        logits, targets, where, kind="reverse_kl", axis=ax, temperature=1.0, reduction=reduction
    )


def kl_divergence_with_logits(
    logits: ArrayLike,
    target_logits: ArrayLike,
    *,
    temperature: float = 1.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    reduction: str = "none",
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
    Equal to optax's ``kl_divergence_with_log_targets`` on the log-softmaxes.

    Args:
      logits: ``[..., C, ...]`` student logits.
      target_logits: teacher logits, the same shape.
      temperature: ``T > 0``, dividing both sets of logits.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask; masked examples give exactly 0.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` over unmasked examples.

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
    temperature = _checks.static_float(temperature, "temperature", fn)
    if not temperature > 0:
        raise ValueError(f"{fn}: temperature must be > 0, got {temperature}")
    logits, target_logits, ax, where, reduction = _prepare(
        fn, logits, target_logits, "target_logits", axis, where, reduction, other_is_logits=True
    )
    return _divergence(
        logits,
        target_logits,
        where,
        kind="kl_logits",
        axis=ax,
        temperature=temperature,
        reduction=reduction,
    )


def js_divergence(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    r"""Jensen-Shannon divergence between ``softmax(logits)`` and ``targets``.

    .. math::
        \operatorname{JS}(p, t) = \tfrac12 \operatorname{KL}(p \,\|\, r)
          + \tfrac12 \operatorname{KL}(t \,\|\, r), \qquad r = \tfrac12 (p + t)

    Symmetric, finite, and between 0 and ``log 2`` for distributions (in nats; divide
    by ``log 2`` for bits, or use :func:`jaxloss.info.js_divergence`). ``0 log 0 = 0``;
    gradients are finite everywhere, with ``log 0`` read as the log of the smallest
    normal float.

    Args:
      logits: ``[..., C, ...]`` predicted logits.
      targets: target distributions, the logits' shape.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask; masked examples give exactly 0.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` over unmasked examples.

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
    fn = "js_divergence"
    logits, targets, ax, where, reduction = _prepare(
        fn, logits, targets, "targets", axis, where, reduction
    )
    return _divergence(
        logits, targets, where, kind="js", axis=ax, temperature=1.0, reduction=reduction
    )


def entropy(
    logits: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    reduction: str = "none",
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
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` over unmasked examples.

    Returns:
      Per-example entropies or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> print(jaxloss.entropy(jnp.array([[0.0, 0.0], [0.0, -jnp.inf]])))  # log 2, 0
      [0.6931 0.    ]
    """
    fn = "entropy"
    logits, _, ax, where, reduction = _prepare(fn, logits, None, "", axis, where, reduction)
    return _divergence(
        logits, None, where, kind="entropy", axis=ax, temperature=1.0, reduction=reduction
    )
