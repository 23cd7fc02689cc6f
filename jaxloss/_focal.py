"""Focal losses (Lin et al., RetinaNet): cross-entropy scaled by ``(1 - p_t)**gamma``,
which down-weights the examples the model already gets right.

``gamma = 0`` gives back the plain cross-entropy in value and gradient. The
modulating factor is computed from logarithms (``exp(gamma * log(1 - p_t))``), and its
derivative is written so that it stays finite where ``1 - p_t`` reaches 0.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks, _numerics, _reduction, _sigmoid, _softmax
from ._softmax import Axis


def _power(log_u, gamma, guard):
    """``u**gamma`` from ``log u``, 0 where ``guard`` (there ``u = 0``)."""
    safe = jnp.where(guard, 0, log_u)
    return jnp.where(guard, 0, jnp.exp(gamma * safe))


# --------------------------------------------------------------------------------------
# Sigmoid focal loss, per element (torchvision.ops.sigmoid_focal_loss):
#   ce = z softplus(-x) + (1 - z) softplus(x),  u = 1 - p_t = s(x)(1 - z) + s(-x) z,
#   loss = a_t ce u**g,  a_t = a z + (1 - a)(1 - z)  (1 without alpha).
# d loss/dx = a_t [(s(x) - z) u**g + ce g u**(g-1) s(x) s(-x) (1 - 2z)]
# d loss/dz = a_t [-x u**g + ce g u**(g-1) (s(-x) - s(x))] + (2a - 1) ce u**g
# d loss/da = (2z - 1) ce u**g


def _sigmoid_focal_parts(gamma, logits, labels, alpha, mask):
    dtype = _numerics.compute_dtype(logits)
    x = _numerics.mask_rows(logits.astype(dtype), mask)
    z = _numerics.mask_rows(labels.astype(dtype), mask)
    s_pos, s_neg = jax.nn.sigmoid(x), jax.nn.sigmoid(-x)
    ce = _sigmoid._weighted_softplus(z, 1 - z, x)
    u = s_pos * (1 - z) + s_neg * z
    log_u = jnp.log(jnp.where(u == 0, 1, u))  # double where: u = 0 at agreeing inf logits
    mod = jnp.ones_like(x) if gamma == 0 else _power(log_u, gamma, u == 0)
    a = None if alpha is None else alpha.astype(dtype)
    a_t = 1 if a is None else a * z + (1 - a) * (1 - z)
    return x, z, s_pos, s_neg, ce, log_u, mod, a, a_t


def _sigmoid_focal_forward(gamma, logits, labels, alpha, mask):
    _, _, _, _, ce, _, mod, _, a_t = _sigmoid_focal_parts(gamma, logits, labels, alpha, mask)
    return _numerics.mask_rows(a_t * ce * mod, mask), ()


def _sigmoid_focal_tangent(gamma, logits, labels, alpha, mask, dx, dz, da, _dm):
    x, z, s_pos, s_neg, ce, log_u, mod, a, a_t = _sigmoid_focal_parts(
        gamma, logits, labels, alpha, mask
    )
    dtype = x.dtype
    spread = s_pos * s_neg  # the derivative of s(x); 0 exactly where u can be 0
    # g u**(g-1) s(x) s(-x), finite where u = 0
    dmod = 0 if gamma == 0 else gamma * _power(log_u, gamma - 1, spread == 0) * spread
    out = 0
    if dx is not None:
        g = a_t * ((s_pos - z) * mod + ce * dmod * (1 - 2 * z))
        out = out + g * _numerics.mask_rows(dx.astype(dtype), mask)
    if dz is not None:
        g = a_t * (-x * mod + ce * dmod * (s_neg - s_pos) / jnp.where(spread == 0, 1, spread))
        if a is not None:
            g = g + (2 * a - 1) * ce * mod
        out = out + g * _numerics.mask_rows(dz.astype(dtype), mask)
    if da is not None:
        out = out + (2 * z - 1) * ce * mod * da.astype(dtype)
    return _numerics.mask_rows(jnp.broadcast_to(out, x.shape), mask)


_sigmoid_focal = _numerics.custom_rule(_sigmoid_focal_forward, _sigmoid_focal_tangent, num_static=1)


# --------------------------------------------------------------------------------------
# Softmax focal loss, integer labels: loss = -a_y (1 - p_y)**g log p_y.
# With p = p_y and F = a_y [(1 - p)**g - g p (1 - p)**(g-1) log p]:
# d loss/dx_j = F (p_j - [j = y]),   d loss/da_c = [c = y] (-(1 - p)**g log p).


def _softmax_focal_forward(axis, gamma, scale, logits, labels, alpha, mask):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, axis)
    x = _numerics.mask_rows(logits.astype(dtype), mask_c)
    m = _softmax.row_max(_numerics.mask_rows(logits, mask_c), axis, dtype)
    lse = _softmax.log_sum_exp_rel(x, m, axis)
    ok, safe = _softmax.sparse_labels(labels, x.shape[axis], axis)
    x_y = _numerics.mask_rows(jnp.take_along_axis(logits, safe, axis).astype(dtype), mask_c)
    log_p = x_y - m - lse
    p = jnp.exp(log_p)
    a = _softmax.label_weight(alpha, safe, dtype) * scale
    if gamma == 0:
        mod, coef = jnp.ones_like(p), a
    else:
        certain = log_p == 0  # p = 1: (1 - p)**gamma is 0 (double where: log 0)
        log_1mp = jnp.log(-jnp.expm1(jnp.where(certain, -1, log_p)))  # log(1 - p)
        mod = _power(log_1mp, gamma, certain)
        edge = certain | (p == 0)  # where the second term's limit is 0
        second = gamma * p * _power(log_1mp, gamma - 1, edge) * jnp.where(edge, 0, log_p)
        coef = a * (mod - second)
    base = mod * (0 - log_p)  # the loss per unit of a (0 - x: no -0.0)
    loss = jnp.where(ok, a * base, jnp.nan)
    loss = _numerics.mask_rows(loss, mask_c)
    return jnp.squeeze(loss, axis), (m, lse, coef, base)


def _softmax_focal_tangent(
    axis, gamma, scale, logits, labels, alpha, mask, m, lse, coef, base, dx, _dy, da, _dm
):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, axis)
    x = _numerics.mask_rows(logits.astype(dtype), mask_c)
    ok, safe = _softmax.sparse_labels(labels, x.shape[axis], axis)
    out = 0
    if dx is not None:
        classes = jax.lax.broadcasted_iota(safe.dtype, x.shape, axis)
        one_hot = (classes == safe).astype(dtype)
        g = jnp.where(ok, coef, jnp.nan) * (jnp.exp(x - m - lse) - one_hot)
        out = out + jnp.sum(g * _numerics.mask_rows(dx.astype(dtype), mask_c), axis, keepdims=True)
    if da is not None:
        out = out + scale * jnp.take(da.astype(dtype), safe) * base
    out = _numerics.mask_rows(jnp.where(ok, out, jnp.nan), mask_c)
    return jnp.squeeze(out, axis)


_softmax_focal = _numerics.custom_rule(_softmax_focal_forward, _softmax_focal_tangent, num_static=3)


# --------------------------------------------------------------------------------------
# Public functions.


def _check_gamma(gamma, fn):
    gamma = _checks.static_float(gamma, "gamma", fn)
    if gamma < 0:
        raise ValueError(f"{fn}: gamma must be >= 0, got {gamma}")
    return gamma


@functools.partial(jax.jit, static_argnames=("gamma", "reduction"))
def _sigmoid_focal_impl(logits, labels, alpha, where, *, gamma, reduction):
    losses = _sigmoid_focal(gamma, logits, labels, alpha, where)
    weights = _reduction.count_weights(where, losses.dtype)
    return _reduction.reduce(losses, weights, reduction)


def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | ArrayLike | None = None,
    gamma: float = 2.0,
    where: ArrayLike | None = None,
    reduction: str = "none",
) -> jax.Array:
    r"""Sigmoid focal loss (RetinaNet; torchvision's ``sigmoid_focal_loss``), per element.

    .. math::
        \ell = \alpha_t\,(1 - p_t)^\gamma\,\operatorname{BCE}(x, z),\quad
        p_t = p z + (1 - p)(1 - z),\quad \alpha_t = \alpha z + (1 - \alpha)(1 - z)

    with ``p = sigmoid(x)``; without ``alpha``, ``alpha_t = 1``. ``gamma = 0`` (and no
    alpha) is :func:`sigmoid_cross_entropy`, value and gradient. Soft labels are allowed.
    Infinite logits that agree with their labels give 0 loss and 0 gradient.

    Args:
      logits: logits, any shape.
      labels: the logits' shape; 0/1, booleans or probabilities.
      alpha: weight of the positive class in [0, 1] (0.25 in the paper), or an array
        broadcastable to the logits (one per label, say); None for no weighting.
      gamma: focusing exponent, ``>= 0``.
      where: boolean mask broadcastable to the logits; masked elements give 0.
      reduction: ``"none"``, ``"sum"``, or ``"mean"`` over unmasked elements
        (torchvision's mean).

    Returns:
      Per-element losses, or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.log(jnp.array([3.0, 1 / 3]))  # p = .75 and .25, label 1
      >>> labels = jnp.array([1.0, 1.0])
      >>> # (1 - p)**2 * -log p: .0625 * .2877 = .0180 and .5625 * 1.3863 = .7798
      >>> print(jaxloss.sigmoid_focal_loss(logits, labels))
      [0.018  0.7798]

    References:
      Lin, Goyal, Girshick, He and Dollar, "Focal Loss for Dense Object Detection", 2017.
    """
    fn = "sigmoid_focal_loss"
    logits, labels, where, _, reduction = _sigmoid._prepare(
        fn, logits, labels, where, 0.0, reduction, "logits"
    )
    gamma = _check_gamma(gamma, fn)
    if alpha is not None:
        if isinstance(alpha, int | float):
            if not 0 <= alpha <= 1:
                raise ValueError(f"{fn}: alpha must be in [0, 1], got {alpha}")
        alpha = _sigmoid.broadcastable_to(fn, "alpha", alpha, logits.shape)
        if not jnp.issubdtype(alpha.dtype, jnp.floating):
            alpha = alpha.astype(_numerics.compute_dtype(logits))
    return _sigmoid_focal_impl(logits, labels, alpha, where, gamma=gamma, reduction=reduction)


@functools.partial(
    jax.jit, static_argnames=("axis", "gamma", "scale", "ignore_index", "reduction", "checks", "fn")
)
def _softmax_focal_impl(
    logits, labels, alpha, where, *, axis, gamma, scale, ignore_index, reduction, checks, fn
):
    mask = _reduction.example_mask(where, labels, ignore_index)
    if checks:
        _softmax.check_labels(fn, labels, mask, logits.shape[axis], ignore_index)
    losses = _softmax_focal(axis, gamma, scale, logits, labels, alpha, mask)
    weights = _reduction.sparse_example_weights(mask, labels, alpha, losses.dtype)
    return _reduction.reduce(losses, weights, reduction)


def softmax_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | ArrayLike | None = None,
    gamma: float = 2.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: str = "none",
) -> jax.Array:
    r"""Softmax (multi-class) focal loss for integer labels.

    .. math:: \ell_i = -\alpha_{y_i}\,(1 - p_{i y_i})^\gamma \log p_{i y_i},
        \qquad p_i = \operatorname{softmax}(x_i)

    ``gamma = 0`` gives :func:`sparse_categorical_cross_entropy` in value and
    gradient, with ``alpha`` as its ``class_weights``. ``alpha`` is either a scalar,
    which multiplies every loss (the ``"mean"`` divides by the number of unmasked
    examples), or one weight per class, which weighs like ``class_weights``: the
    ``"mean"`` divides by ``sum_i alpha_{y_i}``, PyTorch's weighted mean. Masking,
    ``ignore_index`` and out-of-range labels (NaN) behave as in
    :func:`sparse_categorical_cross_entropy`. Computed from ``log p``:
    ``(1 - p)**gamma = exp(gamma * log(-expm1(log p)))``.

    Args:
      logits: ``[..., C, ...]`` logits.
      labels: integer labels, the logits' shape without the class axis.
      alpha: None, a scalar ``>= 0``, or a ``[C]`` array of class weights.
      gamma: focusing exponent, ``>= 0``.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask.
      ignore_index: a label value to skip.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.

    Returns:
      Per-example losses, or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.log(jnp.array([[1.0, 3.0], [3.0, 1.0]]))  # p_y = .75, .25
      >>> labels = jnp.array([1, 1])
      >>> print(jaxloss.softmax_focal_loss(logits, labels))  # .0625 * .2877, .5625 * 1.3863
      [0.018  0.7798]
      >>> print(jaxloss.softmax_focal_loss(logits, labels, gamma=0.0))  # cross-entropy
      [0.2877 1.3863]
    """
    fn = "softmax_focal_loss"
    logits, axes = _softmax.prepare_logits(logits, axis, fn)
    labels = _checks.as_array(labels, "labels", fn)
    _checks.check_integer(labels, "labels", fn)
    shape = tuple(s for a, s in enumerate(logits.shape) if a not in axes)
    if labels.shape != shape:
        raise ValueError(
            f"{fn}: labels has shape {tuple(labels.shape)} but logits "
            f"{tuple(logits.shape)} with axis={axis!r} need labels of shape {shape}"
        )
    if labels.dtype.itemsize < 4:
        labels = labels.astype(jnp.int32)
    logits, ax = _softmax.single_axis(logits, axes)
    gamma = _check_gamma(gamma, fn)
    scale = 1.0
    if alpha is not None and jnp.ndim(alpha) == 0:
        scale = _checks.check_nonnegative(alpha, "alpha", fn)
        alpha = None
    elif alpha is not None:
        alpha = _checks.as_array(alpha, "alpha", fn)
        if alpha.shape != (logits.shape[ax],):
            raise ValueError(
                f"{fn}: alpha has shape {tuple(alpha.shape)} but logits have "
                f"{logits.shape[ax]} classes; it needs a scalar or shape ({logits.shape[ax]},)"
            )
        _checks.check_floating(alpha, "alpha", fn)
    return _softmax_focal_impl(
        logits,
        labels,
        alpha,
        _checks.check_where(where, _softmax.batch_shape(logits, ax), fn),
        axis=ax,
        gamma=gamma,
        scale=scale,
        ignore_index=_checks.check_ignore_index(ignore_index, fn),
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
        fn=fn,
    )
