"""Focal losses (Lin et al., RetinaNet): cross-entropy scaled by ``(1 - p_t)**gamma``,
which down-weights the examples the model already gets right.

``gamma = 0`` gives back the plain cross-entropy in value and gradient. The
modulating factor is computed from logarithms (``exp(gamma * log(1 - p_t))``), and its
derivative is written so that it stays finite where ``1 - p_t`` reaches 0.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks, _numerics, _reduction, _sigmoid, _softmax
from ._softmax import Axis


def _power(log_u, gamma, guard):
    """``u**gamma`` from ``log u``, 0 where ``guard`` (there ``u = 0``)."""
    safe = jnp.where(guard, 0, log_u)
    return jnp.where(guard, 0, jnp.exp(gamma * safe))


def _times(coef, value):
    """``coef * value`` with ``0 * inf = 0``, for every derivative too."""
    return coef * jnp.where(coef == 0, 0, value)


# --------------------------------------------------------------------------------------
# Sigmoid focal loss, per element (torchvision.ops.sigmoid_focal_loss):
#   ce = z softplus(-x) + (1 - z) softplus(x),  u = 1 - p_t = s(x)(1 - z) + s(-x) z,
#   loss = a_t ce u**g,  a_t = a z + (1 - a)(1 - z)  (1 without alpha).
# d loss/dx = a_t [(s(x) - z) u**g + ce g u**(g-1) s(x) s(-x) (1 - 2z)]
# d loss/dz = a_t [-x u**g + ce g u**(g-1) (s(-x) - s(x))] + (2a - 1) ce u**g
# d loss/da = (2z - 1) ce u**g


def _sigmoid_focal_parts(k, logits, labels, alpha, mask):
    dtype = _numerics.compute_dtype(logits)
    x = _numerics.mask_rows(logits.astype(dtype), mask)
    z = _numerics.mask_rows(labels.astype(dtype), mask)
    z = z + _numerics.nan_outside_unit(z)
    s_pos, s_neg = jax.nn.sigmoid(x), jax.nn.sigmoid(-x)
    ce = _sigmoid.weighted_softplus(z, 1 - z, x)
    u = s_pos * (1 - z) + s_neg * z
    log_u = jnp.log(jnp.where(u == 0, 1, u))  # double where: u = 0 at agreeing inf logits
    mod = jnp.ones_like(x) if k.gamma == 0 else _power(log_u, k.gamma, u == 0)
    a = None if alpha is None else _numerics.valid_weights(alpha.astype(dtype), upper=1.0)
    a_t = 1 if a is None else a * z + (1 - a) * (1 - z)
    return x, z, s_pos, s_neg, ce, log_u, mod, a, a_t


def _sigmoid_focal_value(k, logits, labels, alpha, mask):
    *_, ce, _, mod, _, a_t = _sigmoid_focal_parts(k, logits, labels, alpha, mask)
    return _numerics.mask_rows(a_t * ce * mod, mask)


def _sigmoid_focal_tangent(k, logits, labels, alpha, mask, _value, _stats, dx, dz, da, _dm):
    x, z, s_pos, s_neg, ce, log_u, mod, a, a_t = _sigmoid_focal_parts(
        k, logits, labels, alpha, mask
    )
    dtype = x.dtype
    spread = s_pos * s_neg  # the derivative of s(x); 0 exactly where u can be 0
    # g u**(g-1) s(x) s(-x), finite where u = 0
    dmod = 0 if k.gamma == 0 else k.gamma * _power(log_u, k.gamma - 1, spread == 0) * spread
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


_sigmoid_focal = _numerics.custom_rule(_sigmoid_focal_value, _sigmoid_focal_tangent)


@dataclasses.dataclass(frozen=True)
class SigmoidFocal(_reduction.Kernel):
    gamma: float = 2.0

    def check(self, arrays, mask):
        _, labels, alpha = arrays
        _checks.check_in_unit_interval(self.fn, "label", labels, mask)
        if alpha is not None:
            _checks.check_nonnegative_values(self.fn, "alpha", alpha, upper=1.0)

    def values(self, arrays, mask):
        return _sigmoid_focal(self, *arrays, mask)


# --------------------------------------------------------------------------------------
# Softmax focal loss, integer labels: loss = -a_y (1 - p_y)**g log p_y.
# With p = p_y and F = a_y [(1 - p)**g - g p (1 - p)**(g-1) log p]:
# d loss/dx_j = F (p_j - [j = y]),   d loss/da_c = [c = y] (-(1 - p)**g log p).


def _softmax_focal_parts(k, x, labels, alpha, stats):
    """Per example: ``h = -log(p_y)/2``, ``p_y``, the factor ``(1 - p_y)**g`` and
    ``a_y``, from logits ``x`` in the compute dtype."""
    dtype = x.dtype
    h = _softmax.half_nll(_softmax.take_label(x, labels, k.axis), stats)
    log_p = -2 * h
    p = jnp.exp(log_p)
    certain = log_p == 0  # p = 1: (1 - p)**g is 0 (double where: log 0)
    log_1mp = jnp.log(-jnp.expm1(jnp.where(certain, -1, log_p)))  # log(1 - p)
    mod = jnp.ones_like(p) if k.gamma == 0 else _power(log_1mp, k.gamma, certain)
    a = _softmax.label_weight(alpha, labels, k.axis, dtype) * k.scale
    if alpha is not None:
        a = _numerics.valid_weights(a)
    return h, p, log_1mp, certain, mod, a


def _softmax_focal_value(k, logits, labels, alpha, mask):
    dtype = _numerics.compute_dtype(logits)
    stats = _softmax.forward_row_stats(k.axis, logits, None)
    h, _, _, _, mod, a = _softmax_focal_parts(k, logits.astype(dtype), labels, alpha, stats)
    loss = _times(2 * a * mod, h)  # a term with weight 0 is 0, even at a -inf logit
    loss = jnp.where(_softmax.labels_ok(labels, logits.shape[k.axis], k.axis), loss, jnp.nan)
    loss = _numerics.mask_rows(loss, _numerics.expand(mask, k.axis))
    return jnp.squeeze(loss, k.axis)


def _softmax_focal_tangent(k, logits, labels, alpha, mask, _value, stats, dx, _dy, da, _dm):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, k.axis)
    x = _softmax.sanitized_logits(logits, mask, k.axis)
    h, p, log_1mp, certain, mod, a = _softmax_focal_parts(k, x, labels, alpha, stats)
    ok = _softmax.labels_ok(labels, x.shape[k.axis], k.axis)
    if mask_c is not None:
        ok = ok | ~mask_c
    out = 0
    if dx is not None:
        coef = mod
        if k.gamma:
            edge = certain | (p == 0)  # where the second term's limit is 0
            second = _power(log_1mp, k.gamma - 1, edge) * jnp.where(edge, 0, 2 * p * h)
            coef = mod + k.gamma * second  # (1-p)^g - g p (1-p)^(g-1) log p
        coef = jnp.where(ok, _times(a, coef), jnp.nan)
        one_hot = _softmax.one_hot(labels, x.shape, k.axis, dtype)
        g = coef * (_softmax.softmax(x, stats) - one_hot)
        out = out + jnp.sum(
            g * _numerics.mask_rows(dx.astype(dtype), mask_c), k.axis, keepdims=True
        )
    if da is not None:
        safe = _softmax.safe_labels(labels, x.shape[k.axis], k.axis)
        out = out + k.scale * _softmax.take(da.astype(dtype), safe) * _times(2 * mod, h)
    out = jnp.where(ok, jnp.broadcast_to(out, h.shape), jnp.nan)
    return jnp.squeeze(_numerics.mask_rows(out, mask_c), k.axis)


_softmax_focal = _numerics.custom_rule(
    _softmax_focal_value,
    _softmax_focal_tangent,
    lambda k, logits, labels, alpha, mask: _softmax.row_stats(k.axis, logits, mask),
)


@dataclasses.dataclass(frozen=True)
class SoftmaxFocal(_reduction.Kernel):
    axis: int = -1
    gamma: float = 2.0
    scale: float = 1.0
    ignore_index: int | None = None

    def mask(self, arrays, where):
        return _reduction.example_mask(where, arrays[1], self.ignore_index)

    def check(self, arrays, mask):
        logits, labels, alpha = arrays
        num_classes = logits.shape[self.axis]
        _softmax.check_labels(self.fn, labels, mask, num_classes, self.ignore_index)
        if alpha is not None:
            _checks.check_nonnegative_values(self.fn, "alpha", alpha)

    def values(self, arrays, mask):
        return _softmax_focal(self, *arrays, mask)

    def weights(self, arrays, mask, dtype):
        _, labels, alpha = arrays
        return _reduction.sparse_example_weights(mask, labels, alpha, dtype)


# --------------------------------------------------------------------------------------
# Public functions.


def _check_gamma(gamma, fn):
    return _checks.check_nonnegative(gamma, "gamma", fn)


def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | ArrayLike | None = None,
    gamma: float = 2.0,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
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
        broadcastable to the logits (one per label, say); None for no weighting. An
        entry outside [0, 1] given as a JAX array makes its elements' losses NaN.
      gamma: focusing exponent, finite and ``>= 0``.
      where: boolean mask broadcastable to the logits; masked elements give 0.
      sample_weight: float weights ``>= 0`` broadcastable to the logits.
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
    logits, labels, where, weights = _sigmoid.prepare(fn, logits, labels, where, sample_weight)
    if alpha is not None:
        _checks.check_weights(alpha, "alpha", fn, upper=1.0)
        alpha = _checks.check_broadcastable(alpha, tuple(logits.shape), "alpha", fn)
        if not jnp.issubdtype(alpha.dtype, jnp.floating):
            alpha = alpha.astype(_numerics.compute_dtype(logits))
    kernel = SigmoidFocal(fn=fn, gamma=_check_gamma(gamma, fn))
    return _reduction.apply(
        kernel,
        (logits, labels, alpha),
        where,
        weights,
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
    )


def softmax_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | ArrayLike | None = None,
    gamma: float = 2.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
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
    :func:`sparse_categorical_cross_entropy`; a term of weight 0 is exactly 0, also
    at a ``-inf`` logit. Computed from ``log p``:
    ``(1 - p)**gamma = exp(gamma * log(-expm1(log p)))``.

    Args:
      logits: ``[..., C, ...]`` logits.
      labels: integer labels, the logits' shape without the class axis.
      alpha: None, a scalar ``>= 0``, or a ``[C]`` array of class weights ``>= 0``.
      gamma: focusing exponent, finite and ``>= 0``.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask.
      sample_weight: float weight per example, ``>= 0``.
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
    per_example = _softmax.batch_shape(tuple(logits.shape), axes)
    if labels.shape != per_example:
        raise ValueError(
            f"{fn}: labels has shape {tuple(labels.shape)} but logits "
            f"{tuple(logits.shape)} with axis={axis!r} need labels of shape {per_example}"
        )
    if labels.dtype.itemsize < 4:
        labels = labels.astype(jnp.int32)
    logits, ax = _softmax.merge_class_axes(logits, axes)
    scale = 1.0
    if alpha is not None and jnp.ndim(alpha) == 0:
        scale = _checks.check_nonnegative(alpha, "alpha", fn)
        alpha = None
    else:
        alpha = _checks.check_class_weights(alpha, logits.shape[ax], fn, name="alpha")
    kernel = SoftmaxFocal(
        fn=fn,
        axis=ax,
        gamma=_check_gamma(gamma, fn),
        scale=scale,
        ignore_index=_checks.check_ignore_index(ignore_index, fn),
    )
    return _reduction.apply(
        kernel,
        (logits, labels, alpha),
        _checks.check_where(where, per_example, fn),
        _checks.check_sample_weight(sample_weight, per_example, fn, "per-example"),
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
    )
