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

from . import _checks, _long_rows, _numerics, _reduction, _sigmoid, _softmax
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


def _sigmoid_focal_parts(k, logits, labels, alpha, gamma, mask):
    dtype = _numerics.compute_dtype(logits)
    x = _numerics.mask_rows(logits.astype(dtype), mask)
    raw = _numerics.mask_rows(labels.astype(dtype), mask)
    z = _sigmoid.smoothed(raw, k.smoothing, dtype) + _numerics.nan_outside_unit(raw)
    s_pos, s_neg = jax.nn.sigmoid(x), jax.nn.sigmoid(-x)
    ce = _sigmoid.weighted_softplus(z, 1 - z, x)
    u = s_pos * (1 - z) + s_neg * z
    log_u = jnp.log(jnp.where(u == 0, 1, u))  # double where: u = 0 at agreeing inf logits
    if gamma is None:  # a Python number
        g = k.gamma
        mod = jnp.ones_like(x) if g == 0 else _power(log_u, g, u == 0)
    else:  # traced: NaN unless finite and >= 0; 0**0 = 1
        g = _numerics.valid_weights(gamma.astype(dtype))
        mod = _power(log_u, g, (u == 0) & (g != 0))
    a = None if alpha is None else _numerics.valid_weights(alpha.astype(dtype), upper=1.0)
    a_t = 1 if a is None else a * z + (1 - a) * (1 - z)
    return x, z, g, s_pos, s_neg, ce, log_u, mod, a, a_t


def _sigmoid_focal_value(k, logits, labels, alpha, gamma, mask):
    *_, ce, _, mod, _, a_t = _sigmoid_focal_parts(k, logits, labels, alpha, gamma, mask)
    return _numerics.mask_rows(a_t * ce * mod, mask)


def _sigmoid_focal_tangent(
    k, logits, labels, alpha, gamma, mask, _value, _stats, dx, dz, da, dg, _dm
):
    x, z, g, s_pos, s_neg, ce, log_u, mod, a, a_t = _sigmoid_focal_parts(
        k, logits, labels, alpha, gamma, mask
    )
    dtype = x.dtype
    spread = s_pos * s_neg  # the derivative of s(x); 0 exactly where u can be 0
    # g u**(g-1) s(x) s(-x), finite where u = 0
    static_zero = gamma is None and g == 0
    dmod = 0 if static_zero else g * _power(log_u, g - 1, spread == 0) * spread
    out = 0
    if dx is not None:
        coef = a_t * ((s_pos - z) * mod + ce * dmod * (1 - 2 * z))
        out = out + coef * _numerics.mask_rows(dx.astype(dtype), mask)
    if dz is not None:  # with respect to the smoothed label, times its slope 1 - eps
        # -x u**g is 0 where u = 0 (an infinite logit and the agreeing label): the
        # limit of the finite logits' derivative there (for g = 0, u is 1: -x stays)
        coef = _times(mod, -x) + ce * dmod * (s_neg - s_pos) / jnp.where(spread == 0, 1, spread)
        coef = a_t * coef
        if a is not None:
            coef = coef + (2 * a - 1) * ce * mod
        out = out + (1 - k.smoothing) * coef * _numerics.mask_rows(dz.astype(dtype), mask)
    if da is not None:  # NaN at an invalid alpha, as the cross-entropy's class weights
        out = out + (2 * z - 1) * ce * mod * _numerics.nan_at(a) * da.astype(dtype)
    if dg is not None:  # d/dg u**g = u**g log u (0 where u = 0)
        out = out + a_t * ce * mod * log_u * dg.astype(dtype)
    return _numerics.mask_rows(jnp.broadcast_to(out, x.shape), mask)


_sigmoid_focal = _numerics.custom_rule(_sigmoid_focal_value, _sigmoid_focal_tangent)


@dataclasses.dataclass(frozen=True)
class SigmoidFocal(_reduction.Kernel):
    gamma: float | None = 2.0  # None: gamma is an array argument (traced)
    smoothing: float = 0.0

    def check(self, arrays, mask):
        _, labels, alpha, gamma = arrays
        _checks.check_in_unit_interval(self.fn, "label", labels, mask)
        if alpha is not None:
            _checks.check_nonnegative_values(self.fn, "alpha", alpha, upper=1.0)
        if gamma is not None:
            _checks.check_nonnegative_values(self.fn, "gamma", gamma)

    def values(self, arrays, mask):
        return _sigmoid_focal(self, *arrays, mask)


# --------------------------------------------------------------------------------------
# Softmax focal loss, integer labels: loss = -a_y (1 - p_y)**g log p_y.
# With p = p_y and F = a_y [(1 - p)**g - g p (1 - p)**(g-1) log p]:
# d loss/dx_j = F (p_j - [j = y]),   d loss/da_c = [c = y] (-(1 - p)**g log p).


def _stats(k, logits, labels, alpha, mask):
    return _softmax.row_stats(k.axis, logits, mask, k.axis_name)


def _softmax_focal_parts(k, x, labels, alpha, stats):
    """Per example: ``h = -log(p_y)/2``, ``p_y``, ``log(1 - p_y)``, whether ``p_y = 1``,
    the factor ``(1 - p_y)**g``, ``a_y`` and ``x_y``, from logits ``x`` in the compute
    dtype."""
    x_y, a = _softmax.label_terms(x, labels, alpha, k.axis, k.axis_name, x.dtype)
    h = _softmax.half_nll(x_y, stats)
    log_p = -2 * h
    p = jnp.exp(log_p)
    certain = log_p == 0  # p = 1: (1 - p)**g is 0 (double where: log 0)
    log_1mp = jnp.log(-jnp.expm1(jnp.where(certain, -1, log_p)))  # log(1 - p)
    mod = jnp.ones_like(p) if k.gamma == 0 else _power(log_1mp, k.gamma, certain)
    a = a * k.scale
    if alpha is not None:
        a = _numerics.valid_weights(a)
    return h, p, log_1mp, certain, mod, a, x_y


def _softmax_focal_value(k, logits, labels, alpha, mask):
    dtype = _numerics.compute_dtype(logits)
    stats = _softmax.forward_row_stats(k.axis, logits, None, k.axis_name)
    h, _, _, _, mod, a, _ = _softmax_focal_parts(k, logits.astype(dtype), labels, alpha, stats)
    loss = _times(2 * a * mod, h)  # a term with weight 0 is 0, even at a -inf logit
    num_classes = _softmax.num_classes(logits, k.axis, k.axis_name)
    loss = jnp.where(_softmax.labels_ok(labels, num_classes, k.axis), loss, jnp.nan)
    loss = _numerics.mask_rows(loss, _numerics.expand(mask, k.axis))
    return jnp.squeeze(loss, k.axis)


def _softmax_focal_tangent(k, logits, labels, alpha, mask, _value, stats, dx, _dy, da, _dm):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, k.axis)
    x = _softmax.sanitized_logits(logits, mask, k.axis)
    h, p, log_1mp, certain, mod, a, x_y = _softmax_focal_parts(k, x, labels, alpha, stats)
    ok = _softmax.labels_ok(labels, _softmax.num_classes(x, k.axis, k.axis_name), k.axis)
    y, inside = _softmax.shard_labels(labels, x.shape[k.axis], k.axis_name)
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
        one_hot = _softmax.one_hot(y, x.shape, k.axis, dtype)
        g = coef * (_softmax.softmax(x, stats) - one_hot)
        out = out + jnp.sum(
            g * _numerics.mask_rows(dx.astype(dtype), mask_c), k.axis, keepdims=True
        )
    if da is not None:
        safe = _softmax.safe_labels(y, x.shape[k.axis], k.axis)
        da_y = _softmax.take(da.astype(dtype), safe)
        if inside is not None:  # only the device that holds the label
            da_y = jnp.where(jnp.expand_dims(inside, k.axis), da_y, 0)
        # NaN at an invalid alpha (a is NaN there); -log p_y taken as 0 at a -inf label
        # logit, as the softmax cross-entropies do (docs/semantics.md)
        h_read = jnp.where(x_y != -jnp.inf, h, 0)
        out = out + k.scale * da_y * _numerics.nan_at(a) * _times(2 * mod, h_read)
        # a bad label reads no alpha: NaN against every entry, so that reverse mode's
        # gradient of alpha is NaN too (the select below reaches forward mode only)
        out = out + _numerics.nan_where_not(ok, jnp.zeros_like(h)) * jnp.sum(da.astype(dtype))
    out = jnp.broadcast_to(out, h.shape)
    if k.axis_name is not None:  # every device's share of the tangent
        out = _softmax.shard_sum(out, k.axis_name)
    out = jnp.where(ok, out, jnp.nan)
    return jnp.squeeze(_numerics.mask_rows(out, mask_c), k.axis)


_softmax_focal = _numerics.custom_rule(_softmax_focal_value, _softmax_focal_tangent, _stats)


@dataclasses.dataclass(frozen=True)
class SoftmaxFocal(_reduction.Kernel):
    axis: int = -1
    gamma: float = 2.0
    scale: float = 1.0
    ignore_index: int | None = None
    axis_name: str | None = None  # the classes are split over this shard_map axis

    def mask(self, arrays, where):
        return _reduction.example_mask(where, arrays[1], self.ignore_index)

    def check(self, arrays, mask):
        logits, labels, alpha = arrays
        num_classes = _softmax.num_classes(logits, self.axis, self.axis_name)
        _softmax.check_labels(self.fn, labels, mask, num_classes, self.ignore_index)
        if alpha is not None:
            _checks.check_nonnegative_values(self.fn, "alpha", alpha)

    def values(self, arrays, mask):
        return _softmax_focal(self, *arrays, mask)

    def roles(self, arrays):
        return ("classes", "example", "vector")

    def weights(self, arrays, mask, dtype):
        _, labels, alpha = arrays
        return _reduction.sparse_example_weights(mask, labels, alpha, dtype, self.axis_name)


# --------------------------------------------------------------------------------------
# Categorical focal loss, soft targets (Keras's CategoricalFocalCrossentropy), or
# integer labels with label smoothing: with s_c = a_c t~_c and f(p) = -(1 - p)**g log p,
#   loss = sum_c s_c f(p_c),
#   d loss/dx_j = p_j sum_c s_c F_c - s_j F_j,   F = (1 - p)**g - g p (1 - p)**(g-1) log p
#   (p f'(p) = -F(p); gamma = 0 gives the cross-entropy's p_j S - s_j),
#   d loss/dt_c = (1 - eps) a_c f(p_c),   d loss/da_c = t~_c f(p_c).


def _focal_factors(k, x, stats):
    """Per class: ``h = -log(p)/2``, ``p``, ``(1 - p)**g`` and ``F`` (above)."""
    h = _softmax.half_nll(x, stats)
    log_p = -2 * h
    p = jnp.exp(log_p)
    certain = log_p == 0  # p = 1: (1 - p)**g is 0 (double where: log 0)
    log_1mp = jnp.log(-jnp.expm1(jnp.where(certain, -1, log_p)))
    if k.gamma == 0:
        return h, p, jnp.ones_like(p), jnp.ones_like(p)
    mod = _power(log_1mp, k.gamma, certain)
    edge = certain | (p == 0)  # where g p (1 - p)**(g-1) log p tends to 0
    second = _power(log_1mp, k.gamma - 1, edge) * jnp.where(edge, 0, 2 * p * h)
    return h, p, mod, mod + k.gamma * second


def _sum(k, x):
    """The sum over the classes (kept dims), over every shard with ``k.axis_name``."""
    return _softmax.row_sum(x, k.axis, k.axis_name)


def _categorical_targets(k, targets, x, dtype, rule=False):
    """``(t, ok)``: the unsmoothed targets (one-hot for integer labels) and whether
    each example's are valid (class axis kept), for the (local) logits ``x``. In a
    derivative ``rule``, a NaN target is invalid too (a forward pass's terms carry it)."""
    if k.sparse:
        num_classes = _softmax.num_classes(x, k.axis, k.axis_name)
        ok = _softmax.labels_ok(targets, num_classes, k.axis)
        y, _ = _softmax.shard_labels(targets, x.shape[k.axis], k.axis_name)
        return _softmax.one_hot(y, x.shape, k.axis, dtype), ok
    t = targets.astype(dtype)
    total = _sum(k, t) if rule else None
    return t, _softmax.targets_ok(targets, k.axis, k.axis_name, total)


def _categorical_weights(k, alpha, t, ndim, dtype):
    """``a_c t~_c`` (``a`` the class weights times the scalar ``scale``)."""
    num_classes = _softmax.num_classes(t, k.axis, k.axis_name)
    s = (1 - k.smoothing) * t + k.smoothing / num_classes if k.smoothing else t
    a = k.scale
    if alpha is not None:
        a = a * _softmax.along_classes(_numerics.valid_weights(alpha), k.axis, ndim, dtype)
    return s, a


def _categorical_focal_value(k, logits, targets, alpha, mask):
    dtype = _numerics.compute_dtype(logits)
    # masked rows: dropped below
    stats = _softmax.forward_row_stats(k.axis, logits, None, k.axis_name)
    x = logits.astype(dtype)
    t, ok = _categorical_targets(k, targets, x, dtype)
    t_s, a = _categorical_weights(k, alpha, t, x.ndim, dtype)
    h, _, mod, _ = _focal_factors(k, x, stats)
    loss = _sum(k, _times(2 * a * t_s * mod, h))
    loss = _numerics.nan_where_not(ok, loss)
    return jnp.squeeze(_numerics.mask_rows(loss, _numerics.expand(mask, k.axis)), k.axis)


def _categorical_focal_tangent(k, logits, targets, alpha, mask, _value, stats, dx, dt, da, _dm):
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, k.axis)
    x = _softmax.sanitized_logits(logits, mask, k.axis)
    t, ok = _categorical_targets(k, targets, x, dtype, rule=True)
    t = _numerics.mask_rows(t, mask_c)
    if mask_c is not None:
        ok = ok | ~mask_c
    t_s, a = _categorical_weights(k, alpha, t, x.ndim, dtype)
    t_s = _numerics.nan_where_not(ok, t_s)  # NaN coefficients: kept by reverse mode too
    # every row reads every alpha (a_c t~_c, NaN for an invalid a_c even where t~_c is
    # 0): an invalid one makes every row's coefficients NaN, as in the cross-entropy
    poison = 0
    if alpha is not None:
        poison = _softmax.shard_sum(jnp.sum(0 * a), k.axis_name)  # 0 * a: no overflow
        t_s = t_s + poison
    h, p, mod, coef = _focal_factors(k, x, stats)
    out = 0
    if dx is not None:
        s_f = a * t_s * coef
        g = p * _sum(k, s_f) - s_f
        d = _numerics.mask_rows(dx.astype(dtype), mask_c)
        out = out + jnp.sum(g * d, k.axis, keepdims=True)
    # the targets' and the class weights' derivatives take -log p_c as 0 at a -inf
    # logit, as the softmax cross-entropies do (docs/semantics.md)
    h_read = jnp.where(x != -jnp.inf, h, 0) if dt is not None or da is not None else None
    if dt is not None and not k.sparse:
        d = _numerics.mask_rows(dt.astype(dtype), mask_c)
        g = _numerics.nan_where_not(ok, _times((1 - k.smoothing) * a, 2 * mod * h_read))
        g = g + poison
        out = out + jnp.sum(g * d, k.axis, keepdims=True)
    if da is not None:
        d = k.scale * _softmax.along_classes(da, k.axis, x.ndim, dtype)
        out = out + jnp.sum(_times(t_s, 2 * mod * h_read) * d, k.axis, keepdims=True)
    out = jnp.broadcast_to(out, ok.shape)
    if k.axis_name is not None:  # every device's share of the tangent
        out = _softmax.shard_sum(out, k.axis_name)
    return jnp.squeeze(_numerics.mask_rows(out, mask_c), k.axis)


_categorical_focal = _numerics.custom_rule(
    _categorical_focal_value, _categorical_focal_tangent, _stats
)


@dataclasses.dataclass(frozen=True)
class CategoricalFocal(_reduction.Kernel):
    axis: int = -1
    gamma: float = 2.0
    scale: float = 1.0
    smoothing: float = 0.0
    sparse: bool = False  # integer labels (softmax_focal_loss with label smoothing)
    ignore_index: int | None = None
    axis_name: str | None = None  # the classes are split over this shard_map axis

    def mask(self, arrays, where):
        labels = arrays[1] if self.sparse else None
        return _reduction.example_mask(where, labels, self.ignore_index)

    def check(self, arrays, mask):
        logits, targets, alpha = arrays
        if self.sparse:
            num_classes = _softmax.num_classes(logits, self.axis, self.axis_name)
            _softmax.check_labels(self.fn, targets, mask, num_classes, self.ignore_index)
        else:
            rows = None
            if mask is not None:
                rows = jnp.broadcast_to(_numerics.expand(mask, self.axis), targets.shape)
            _checks.check_in_unit_interval(self.fn, "target", targets, rows)
        if alpha is not None:
            _checks.check_nonnegative_values(self.fn, "alpha", alpha)

    def values(self, arrays, mask):
        return _categorical_focal(self, *arrays, mask)

    def roles(self, arrays):
        return ("classes", "example" if self.sparse else "classes", "vector")

    def weights(self, arrays, mask, dtype):
        _, targets, alpha = arrays
        if self.sparse:
            return _reduction.sparse_example_weights(mask, targets, alpha, dtype, self.axis_name)
        return _reduction.soft_example_weights(
            mask, targets, alpha, self.axis, dtype, self.axis_name
        )


# --------------------------------------------------------------------------------------
# Public functions.


def _check_gamma(gamma, fn):
    return _checks.check_nonnegative(gamma, "gamma", fn)


def _gamma_argument(gamma, fn):
    """``(static gamma, None)`` for a number known at trace time, ``(None, array)``
    for a JAX array (traced under ``jit``, as optax allows)."""
    if isinstance(gamma, jax.Array):
        if gamma.ndim != 0:
            raise ValueError(f"{fn}: gamma must be a scalar, got shape {tuple(gamma.shape)}")
        if not jnp.issubdtype(gamma.dtype, jnp.floating):
            gamma = gamma.astype(jnp.float32)
        return None, gamma
    return _check_gamma(gamma, fn), None


def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | ArrayLike | None = None,
    gamma: float | ArrayLike = 2.0,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "none",
) -> jax.Array:
    r"""Sigmoid focal loss (RetinaNet; torchvision's ``sigmoid_focal_loss``), per element.

    .. math::
        \ell = \alpha_t\,(1 - p_t)^\gamma\,\operatorname{BCE}(x, z),\quad
        p_t = p z + (1 - p)(1 - z),\quad \alpha_t = \alpha z + (1 - \alpha)(1 - z)

    with ``p = sigmoid(x)``; without ``alpha``, ``alpha_t = 1``. ``gamma = 0`` (and no
    alpha) is :func:`sigmoid_cross_entropy`, value and gradient. Soft labels are allowed.
    ``label_smoothing=eps`` moves the labels to ``z (1 - eps) + eps / 2`` before
    everything else (``p_t``, ``alpha_t`` and the cross-entropy), as Keras's
    ``BinaryFocalCrossentropy`` does. ``gamma`` may be a JAX array (traced under
    ``jit``, as in optax), and is then differentiable; a negative or non-finite one
    gives NaN, and :func:`jaxloss.checked` raises.
    Infinite logits that agree with their labels give 0 loss and 0 gradient.

    Args:
      logits: logits, any shape.
      labels: 0/1, booleans or probabilities, broadcastable to the logits' shape
        (as in optax).
      alpha: weight of the positive class in [0, 1] (0.25 in the paper), or an array
        broadcastable to the logits (one per label, say); None for no weighting. An
        entry outside [0, 1] given as a JAX array makes its elements' losses NaN.
      gamma: focusing exponent, finite and ``>= 0``: a number, or a scalar array.
      where: boolean mask broadcastable to the logits; masked elements give 0.
      sample_weight: float weights ``>= 0`` broadcastable to the logits.
      label_smoothing: ``eps`` in [0, 1]: labels become ``z (1 - eps) + eps / 2``.
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
    logits, labels, where, weights = _sigmoid.prepare(
        fn, logits, labels, where, sample_weight, broadcast_labels=True
    )
    if alpha is not None:
        _checks.check_weights(alpha, "alpha", fn, upper=1.0)
        alpha = _checks.check_broadcastable(alpha, tuple(logits.shape), "alpha", fn)
        if not jnp.issubdtype(alpha.dtype, jnp.floating):
            alpha = alpha.astype(_numerics.compute_dtype(logits))
    static_gamma, gamma = _gamma_argument(gamma, fn)
    kernel = SigmoidFocal(
        fn=fn,
        gamma=static_gamma,
        smoothing=_checks.check_fraction(label_smoothing, "label_smoothing", fn),
    )
    return _reduction.apply(
        kernel,
        (logits, labels, alpha, gamma),
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
    label_smoothing: float = 0.0,
    reduction: str = "none",
    axis_name: str | None = None,
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
    ``(1 - p)**gamma = exp(gamma * log(-expm1(log p)))``. With ``label_smoothing``,
    it is :func:`categorical_focal_loss` of the smoothed one-hot targets (every
    class's focal term; the example weights stay ``alpha_{y_i}``).

    Args:
      logits: ``[..., C, ...]`` logits.
      labels: integer labels, the logits' shape without the class axis.
      alpha: None, a scalar ``>= 0``, or a ``[C]`` array of class weights ``>= 0``.
      gamma: focusing exponent, finite and ``>= 0``.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask.
      sample_weight: float weight per example, ``>= 0``.
      ignore_index: a label value to skip.
      label_smoothing: ``eps`` in [0, 1]: targets ``(1 - eps) onehot + eps / C``.
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.
      axis_name: inside ``jax.shard_map``, the mesh axis over which the classes are
        split in contiguous shards (the logits and ``alpha`` are the local shards,
        labels are global class indices): the same values and derivatives as the
        unsharded call, from a few numbers per example exchanged with ``pmax`` and
        ``psum``.

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
    labels = _softmax.prepare_labels(labels, logits, axes, axis, fn)
    per_example = _softmax.batch_shape(tuple(logits.shape), axes)
    logits, ax = _softmax.merge_class_axes(logits, axes)
    scale = 1.0
    if alpha is not None and jnp.ndim(alpha) == 0:
        scale = _checks.check_nonnegative(alpha, "alpha", fn)
        alpha = None
    else:
        alpha = _checks.check_class_weights(alpha, logits.shape[ax], fn, name="alpha")
    options = dict(
        fn=fn,
        axis=ax,
        gamma=_check_gamma(gamma, fn),
        scale=scale,
        ignore_index=_checks.check_ignore_index(ignore_index, fn),
        axis_name=_checks.check_axis_name(axis_name, fn),
    )
    smoothing = _checks.check_fraction(label_smoothing, "label_smoothing", fn)
    if smoothing:  # every class's term: the soft-target kernel, on the labels
        kernel = CategoricalFocal(smoothing=smoothing, sparse=True, **options)
    else:
        kernel = SoftmaxFocal(**options)
    arrays = (logits, labels, alpha)
    return _reduction.apply(
        _long_rows.maybe_split(kernel, arrays),
        arrays,
        _checks.check_where(where, per_example, fn),
        _checks.check_sample_weight(sample_weight, per_example, fn, "per-example"),
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
    )


def categorical_focal_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: float | ArrayLike | None = None,
    gamma: float = 2.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "none",
    axis_name: str | None = None,
) -> jax.Array:
    r"""Softmax focal loss for soft (or one-hot) targets, Keras's
    ``CategoricalFocalCrossentropy``.

    .. math:: \ell_i = -\sum_c \alpha_c\, \tilde t_{ic}\, (1 - p_{ic})^\gamma
        \log p_{ic}, \qquad p_i = \operatorname{softmax}(x_i),\quad
        \tilde t = (1 - \epsilon)\, t + \epsilon / C

    Every class with target mass gets its focal term, so for one-hot targets without
    smoothing it is :func:`softmax_focal_loss` of the labels, and ``gamma = 0`` is
    :func:`categorical_cross_entropy` with ``class_weights=alpha``, in value and
    gradient. ``alpha`` is a scalar that multiplies every loss, or one weight per class
    (the ``"mean"`` then divides by ``sum_i sum_c alpha_c t_ic``, as the cross-entropy's
    class weights do). Keras's defaults differ: ``alpha=0.25`` and a mean over the
    batch (``reduction="mean"``), and it takes probabilities unless ``from_logits``;
    it also clips ``p`` to ``[1e-7, 1 - 1e-7]``, which jaxloss does not. A class with
    a ``-inf`` logit and no target mass contributes exactly 0; targets outside
    ``[0, 1]`` make their example NaN.

    Args:
      logits: ``[..., C, ...]`` logits.
      targets: target distributions of the logits' shape.
      alpha: None, a scalar ``>= 0``, or a ``[C]`` array of class weights ``>= 0``.
      gamma: focusing exponent, finite and ``>= 0``.
      axis: the class axis (or a tuple of them).
      where: per-example boolean mask.
      sample_weight: float weight per example, ``>= 0``.
      label_smoothing: ``eps`` in [0, 1].
      reduction: ``"none"``, ``"sum"`` or ``"mean"``.
      axis_name: inside ``jax.shard_map``, the mesh axis over which the classes are
        split in contiguous shards (the logits, ``targets`` and ``alpha`` are the local
        shards): the same values and derivatives as the unsharded call, from a few
        numbers per example exchanged with ``pmax`` and ``psum``.

    Returns:
      Per-example losses (the logits' shape without the class axis), or a scalar.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.log(jnp.array([[1.0, 3.0]]))  # p = .25, .75
      >>> # .5 (.75**2)(-log .25) + .5 (.25**2)(-log .75) = .3899 + .0090
      >>> print(jaxloss.categorical_focal_loss(logits, jnp.array([[0.5, 0.5]])))
      [0.3989]

    References:
      Lin, Goyal, Girshick, He and Dollar, "Focal Loss for Dense Object Detection", 2017.
    """
    fn = "categorical_focal_loss"
    logits, axes = _softmax.prepare_logits(logits, axis, fn)
    targets = _checks.check_same_shape(fn, logits, targets, "targets")
    _checks.check_real(targets, "targets", fn)
    per_example = _softmax.batch_shape(tuple(logits.shape), axes)
    logits, ax = _softmax.merge_class_axes(logits, axes)
    targets = _softmax.merge_class_axes(targets, axes)[0]
    scale = 1.0
    if alpha is not None and jnp.ndim(alpha) == 0:
        scale = _checks.check_nonnegative(alpha, "alpha", fn)
        alpha = None
    else:
        alpha = _checks.check_class_weights(alpha, logits.shape[ax], fn, name="alpha")
    kernel = CategoricalFocal(
        fn=fn,
        axis=ax,
        gamma=_check_gamma(gamma, fn),
        scale=scale,
        smoothing=_checks.check_fraction(label_smoothing, "label_smoothing", fn),
        axis_name=_checks.check_axis_name(axis_name, fn),
    )
    arrays = (logits, targets, alpha)
    return _reduction.apply(
        _long_rows.maybe_split(kernel, arrays),
        arrays,
        _checks.check_where(where, per_example, fn),
        _checks.check_sample_weight(sample_weight, per_example, fn, "per-example"),
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
    )
