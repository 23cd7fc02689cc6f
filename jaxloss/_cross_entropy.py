"""Softmax cross-entropy: soft targets, integer labels, and the optax drop-in names.

One kernel serves both target kinds. Per example (class axis ``c``), with the smoothed,
class-weighted target mass ``s_c = cw_c * t~_c`` and ``S = sum_c s_c``:

    loss = -sum_c s_c log p_c + z * lse**2 = S * lse - sum_c s_c x_c + z * lse**2

computed relative to the row maximum ``m`` (``x_c - m`` is exact near the top, so huge
logits keep their precision). Its derivative rule is a ``custom_jvp``:

    d loss = sum_c ((S + 2 z lse) p_c - s_c) dx_c          (logits)
           + sum_c (1 - eps) cw_c (lse - x_c) dt_c          (soft targets)
           + sum_c t~_c (lse - x_c) dcw_c                   (class weights)

The tangent is computed inside ``jax.checkpoint``, so reverse mode saves only the
inputs and two numbers per example (``m`` and ``log sum exp(x - m)``) and recomputes
the softmax from them; a ``custom_jvp`` (unlike a ``custom_vjp``) keeps forward mode,
``jax.hessian`` and every higher-order combination working.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks, _numerics, _reduction, _softmax
from ._softmax import Axis

# --------------------------------------------------------------------------------------
# The kernel: per-example loss with a hand-derived derivative rule.
#
# Static arguments: axis (a non-negative int), sparse (integer labels or soft targets),
# smoothing (eps) and z_loss. Array arguments: logits, targets (int labels or a
# distribution), class_weights (or None) and mask (bool per example, or None).


def _total_weight(class_weights, num_classes, dtype):
    """``sum_c w_c``."""
    if class_weights is None:
        return jnp.asarray(num_classes, dtype)
    return jnp.sum(class_weights.astype(dtype))


def _weighted_targets(axis, sparse, smoothing, x, targets, class_weights):
    """``t~`` (smoothed targets) and ``s = w * t~``, elementwise, broadcast to ``x``."""
    dtype = x.dtype
    num_classes = x.shape[axis]
    if sparse:
        _, safe = _softmax.sparse_labels(targets, num_classes, axis)
        classes = jax.lax.broadcasted_iota(safe.dtype, x.shape, axis)
        t = (classes == safe).astype(dtype)
    else:
        t = targets.astype(dtype)
    if smoothing:
        t = (1 - smoothing) * t + smoothing / num_classes
    if class_weights is None:
        return t, t
    return t, _softmax.along_classes(class_weights, axis, x.ndim, dtype) * t


def _own_weighted(axis, smoothing, targets, class_weights, dtype, *companions):
    """``s = w * t~`` (soft targets) from a copy of the inputs of its own, and the
    barrier'd ``companions`` (distinct companions keep XLA from merging two copies).

    On XLA:CPU a conversion or broadcast shared by two reductions is written out in
    full before them; one copy per reduction keeps each a single pass.
    """
    num_classes = targets.shape[axis]
    coefs = jnp.array([1 - smoothing, smoothing / num_classes], dtype)
    t, cw, coefs, *companions = _softmax.barrier((targets, class_weights, coefs, *companions))
    s = t.astype(dtype)
    if smoothing:
        s = coefs[0] * s + coefs[1]
    if cw is not None:
        s = _softmax.along_classes(cw, axis, targets.ndim, dtype) * s
    return s, companions


def _forward(axis, sparse, smoothing, z_loss, kl, logits, targets, class_weights, mask):
    """Per-example loss and the statistics ``(shift, lse_rel, mass)`` the rule needs.

    The fast path shifts the logits by the target logit instead of the row maximum,
    which saves the pass over the logits that finds the maximum. It is exact unless
    ``exp(x - shift)`` overflows (some logit above the target logit by more than ~88
    in float32) or a ``0 * (-inf)`` appears; then, rarely, the robust path runs.
    """
    args = (axis, sparse, smoothing, z_loss, kl, logits, targets, class_weights, mask)
    loss, stats, ok = _forward_fast(*args)
    return jax.lax.cond(ok, lambda: (loss, stats), lambda: _forward_robust(*args))


def _forward_fast(axis, sparse, smoothing, z_loss, kl, logits, targets, class_weights, mask):
    """One reduction pass: ``shift`` is the target logit (or the targets' mean logit),
    ``loss = S * log sum_c exp(x_c - shift) - sum_c s_c (x_c - shift)``."""
    dtype = _numerics.compute_dtype(logits)
    num_classes = logits.shape[axis]
    mask_c = _numerics.expand(mask, axis)
    x = logits.astype(dtype)
    labels_ok = None
    if sparse:
        labels_ok, safe = _softmax.sparse_labels(targets, num_classes, axis)
        w_y = _softmax.label_weight(class_weights, safe, dtype)
        # gathered from a barrier'd copy, so that XLA does not share (and write out)
        # the logits' conversion to the compute dtype between the gather and the sum
        x_y = jnp.take_along_axis(_softmax.barrier(logits), safe, axis)
        x_y = _numerics.mask_rows(x_y.astype(dtype), mask_c)
        shift = jax.lax.stop_gradient(x_y)
        mass = (1 - smoothing) * w_y
        # (1 - eps) w_y (x_y - shift) is 0, but its derivative is not: every formula
        # must stay invariant to the (constant) shift for higher derivatives
        target_logit = mass * (x_y - shift)
        if smoothing:
            b = smoothing / num_classes
            mass = mass + b * _total_weight(class_weights, num_classes, dtype)
            # its own copy of the logits: a conversion shared with the log-sum-exp
            # below would be written out (16-bit inputs)
            xb, sb = _softmax.barrier((logits, shift))
            xs = xb.astype(dtype) - sb
            if class_weights is not None:
                xs = _softmax.along_classes(class_weights, axis, x.ndim, dtype) * xs
            target_logit = target_logit + b * jnp.sum(xs, axis, keepdims=True)  # -inf: +inf
    else:
        # Each reduction converts its own (barrier'd) copy of the inputs: a conversion
        # shared by two reductions would be written out in full.
        # (XLA drops constant operands of a barrier, so each copy is told apart by a
        # result computed before it)
        def weighted(*companions):
            return _own_weighted(axis, smoothing, targets, class_weights, dtype, *companions)[0]

        mass = jnp.sum(weighted(), axis, keepdims=True)
        total = jnp.sum(weighted(mass) * _numerics.clamp_low(x), axis, keepdims=True)
        shift = jax.lax.stop_gradient(jnp.where(mass > 0, total / jnp.where(mass > 0, mass, 1), 0))
        target_logit = total - mass * shift  # ~0: what rounding left of the shift
        if kl:  # KL(t || p) = CE(t, p) + sum_c t_c log t_c, 0 log 0 = 0 (here s = t)
            t = weighted(total)
            target_logit = target_logit - jnp.sum(t * _numerics.safe_log(t), axis, keepdims=True)
        x = _softmax.barrier(logits).astype(dtype)
    lse_rel = _softmax.log_sum_exp_rel(x, shift, axis)
    loss = mass * lse_rel - target_logit
    ok = jnp.isfinite(lse_rel) & ~jnp.isnan(loss)
    if mask_c is not None:
        ok = ok | ~mask_c
    if z_loss:
        loss = loss + z_loss * (lse_rel + shift) ** 2
    loss = _finish(loss, labels_ok, mask_c)
    stats = _masked_stats((shift, lse_rel, mass), mask_c)
    return jnp.squeeze(loss, axis), stats, jnp.all(ok)


def _forward_robust(axis, sparse, smoothing, z_loss, kl, logits, targets, class_weights, mask):
    """Shifts by the row maximum: every term is exact, ``0 * (-inf)`` is 0, and target
    mass on a ``-inf`` logit gives ``+inf``.

    Each ``[..., C]`` quantity is a single reduction that converts its own copy of the
    inputs, so XLA fuses each into one pass and never writes out a converted copy of
    the logits or targets (which would cost memory even while this branch is not
    taken). The copies are told apart by barriers over different companions, since
    XLA merges identical barriers.
    """
    dtype = _numerics.compute_dtype(logits)
    num_classes = logits.shape[axis]
    mask_c = _numerics.expand(mask, axis)

    def own_copies(*arrays):
        # the last array only makes this barrier distinct from the others
        return tuple(a.astype(dtype) for a in _softmax.barrier(arrays)[:-1])

    row_max = _softmax.row_max(logits, axis, dtype)
    (x,) = own_copies(logits, row_max)
    lse_rel = _softmax.log_sum_exp_rel(x, row_max, axis)
    labels_ok = infinite = None
    if sparse:
        # -sum_c s_c log p_c with s = w_y (1-eps) onehot(y) + w eps / C
        labels_ok, safe = _softmax.sparse_labels(targets, num_classes, axis)
        w_y = _softmax.label_weight(class_weights, safe, dtype)
        x_y = jnp.take_along_axis(logits, safe, axis).astype(dtype)
        if mask_c is not None:
            x_y = jnp.where(mask_c, x_y, 0)
        a = (1 - smoothing) * w_y
        mass = a
        target_logit = jnp.where(a == 0, 0, a * (x_y - row_max))  # 0 * (-inf) is 0
        if smoothing:
            b = smoothing / num_classes
            mass = mass + b * _total_weight(class_weights, num_classes, dtype)
            w = jnp.ones((), dtype)
            if class_weights is not None:
                w = _softmax.along_classes(class_weights, axis, logits.ndim, dtype)
            x, shift = own_copies(logits, row_max, lse_rel)
            smooth_logit = jnp.sum(w * _numerics.clamp_low(x - shift), axis, keepdims=True)
            (x,) = own_copies(logits, mass)
            infinite = _mass_on_neg_inf(w, x, axis)
            target_logit = target_logit + b * smooth_logit
    else:

        def weighted(*companions):
            return _own_weighted(axis, smoothing, targets, class_weights, dtype, *companions)

        s, _ = weighted(row_max)
        mass = jnp.sum(s, axis, keepdims=True)
        s, (x, shift, _) = weighted(logits, row_max, lse_rel)
        x = _numerics.clamp_low(x.astype(dtype) - shift)
        target_logit = jnp.sum(s * x, axis, keepdims=True)
        s, (x, _) = weighted(logits, mass)
        infinite = _mass_on_neg_inf(s, x.astype(dtype), axis)
        if kl:  # KL(t || p) = CE(t, p) + sum_c t_c log t_c, 0 log 0 = 0 (here s = t)
            t, _ = weighted(target_logit)
            target_logit = target_logit - jnp.sum(t * _numerics.safe_log(t), axis, keepdims=True)
    loss = mass * lse_rel - target_logit
    if infinite is not None:
        loss = jnp.where(infinite, jnp.inf, loss)
    if z_loss:
        loss = loss + z_loss * (lse_rel + row_max) ** 2
    loss = _finish(loss, labels_ok, mask_c)
    return jnp.squeeze(loss, axis), _masked_stats((row_max, lse_rel, mass), mask_c)


def _masked_stats(stats, mask_c):
    """The statistics with masked examples' set to 0 (they may be NaN there)."""
    return tuple(_numerics.mask_rows(v, mask_c) for v in stats)


def _mass_on_neg_inf(s, x, axis):
    """Whether some ``s_c > 0`` sits on a class with a ``-inf`` logit (the loss is then
    ``+inf``): the minimum over ``{c: s_c > 0}`` of ``x_c`` is ``-inf``.

    Written without compares or selects, which XLA:CPU would write out in full before
    the reduction: the bound is ``-inf`` where ``s_c > 0`` and ``+inf`` where
    ``s_c = 0``.
    """
    has_mass = jnp.sign(s)
    bound = jnp.log(1 - has_mass) - jnp.log(has_mass)
    return jnp.min(jnp.maximum(x, bound), axis, keepdims=True) == -jnp.inf


def _finish(value, labels_ok, mask_c):
    """NaN for an out-of-range label (never a wrap-around), exact 0 where masked."""
    if labels_ok is not None:
        value = jnp.where(labels_ok, value, jnp.nan)
    if mask_c is not None:
        value = jnp.where(mask_c, value, 0)
    return value


def _tangent(
    axis,
    sparse,
    smoothing,
    z_loss,
    kl,
    logits,
    targets,
    class_weights,
    mask,
    row_max,
    lse_rel,
    mass,
    d_logits,
    d_targets,
    d_class_weights,
    _d_mask,
):
    """The linear map (d_logits, d_targets, d_class_weights) -> d loss.

    Its residuals are its array inputs, never the ``[..., C]`` softmax, which the
    backward pass recomputes from ``row_max`` and ``lse_rel``. In reverse mode it
    becomes one elementwise pass that writes the gradient.
    """
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, axis)
    x = _numerics.mask_rows(logits.astype(dtype), mask_c)
    xm = x - row_max
    t, s = _weighted_targets(axis, sparse, smoothing, x, targets, class_weights)
    labels_ok = _softmax.sparse_labels(targets, x.shape[axis], axis)[0] if sparse else None
    out = 0
    if d_logits is not None:
        coef = mass
        if z_loss:
            coef = coef + 2 * z_loss * (lse_rel + row_max)
        if labels_ok is not None:  # NaN gradient for a bad label, also in reverse mode
            coef = jnp.where(labels_ok, coef, jnp.nan)
        dx = d_logits.astype(dtype)
        if mask_c is not None:
            dx = jnp.where(mask_c, dx, 0)
        out = out + jnp.sum((coef * jnp.exp(xm - lse_rel) - s) * dx, axis, keepdims=True)
    if d_targets is not None or d_class_weights is not None:
        # -log p_c (+ log t_c + 1 for KL), taken as 0 for a class masked by a -inf logit
        nlp = lse_rel - xm
        if kl:
            nlp = nlp + _numerics.safe_log(t) + 1
        nlp = jnp.where(x > -jnp.inf, nlp, 0)
        if d_targets is not None:
            dt = (1 - smoothing) * d_targets.astype(dtype)
            if mask_c is not None:
                dt = jnp.where(mask_c, dt, 0)
            if class_weights is not None:
                dt = _softmax.along_classes(class_weights, axis, x.ndim, dtype) * dt
            out = out + jnp.sum(nlp * dt, axis, keepdims=True)
        if d_class_weights is not None:
            dcw = _softmax.along_classes(d_class_weights, axis, x.ndim, dtype)
            t = _numerics.mask_rows(t, mask_c)  # a masked row's targets may be NaN
            out = out + jnp.sum(dcw * t * nlp, axis, keepdims=True)
    out = _finish(jnp.broadcast_to(out, lse_rel.shape), labels_ok, mask_c)
    return jnp.squeeze(out, axis)


# d loss = sum_c ((S + 2 z lse) p_c - s_c) dx_c + sum_c (1 - eps) w_c (lse - x_c) dt_c
#        + sum_c t~_c (lse - x_c) dw_c     (+ (log t_c + 1) dt_c for KL)
_softmax_xent = _numerics.custom_rule(_forward, _tangent, num_static=5)


# --------------------------------------------------------------------------------------
# The jitted implementation behind both public functions (options are static).


@functools.partial(
    jax.jit,
    static_argnames=(
        "fn",
        "axis",
        "sparse",
        "ignore_index",
        "smoothing",
        "z_loss",
        "kl",
        "reduction",
        "checks",
    ),
)
def _cross_entropy(
    logits,
    targets,
    where,
    class_weights,
    *,
    fn,
    axis,
    sparse,
    ignore_index,
    smoothing,
    z_loss,
    reduction,
    checks,
    kl=False,
):
    dtype = _numerics.compute_dtype(logits)
    if sparse:
        mask = _reduction.example_mask(where, targets, ignore_index)
        if checks:
            _softmax.check_labels(fn, targets, mask, logits.shape[axis], ignore_index)
        weights = _reduction.sparse_example_weights(mask, targets, class_weights, dtype)
    else:
        mask = _reduction.example_mask(where)
        weights = _reduction.soft_example_weights(mask, targets, class_weights, axis, dtype)
    losses = _softmax_xent(
        axis, sparse, smoothing, z_loss, kl, logits, targets, class_weights, mask
    )
    return _reduction.reduce(losses, weights, reduction)


def _common_options(fn, logits, axis, where, class_weights, smoothing, z_loss, red):
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1 :]
    return dict(
        where=_checks.check_where(where, batch_shape, fn),
        class_weights=_checks.check_class_weights(class_weights, logits.shape[axis], fn),
        smoothing=_checks.check_fraction(smoothing, "label_smoothing", fn),
        z_loss=_checks.check_nonnegative(z_loss, "z_loss", fn),
        reduction=_checks.check_reduction(red, fn),
    )


# --------------------------------------------------------------------------------------
# Public functions.


def categorical_cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: str = "none",
) -> jax.Array:
    r"""Softmax cross-entropy against soft (or one-hot) target distributions.

    .. math::
        \ell_i = -\sum_c w_c\,\tilde t_{ic} \log \operatorname{softmax}(x_i)_c
                 + z \,\big(\log \textstyle\sum_c e^{x_{ic}}\big)^2,
        \qquad \tilde t_{ic} = (1-\varepsilon)\, t_{ic} + \varepsilon / C

    where ``w`` are the class weights (1 without) and ``eps`` the label smoothing
    (mass ``eps/C`` to every class, PyTorch's and Keras's convention).

    The targets are not renormalized: a row summing to ``a`` weighs ``a`` times as
    much (optax behaves the same). Classes can be masked by ``-inf`` logits: a class
    with ``-inf`` logit and zero target mass contributes exactly 0 to the value and
    the gradient (optax's gradient is NaN there). Positive target mass on such a class,
    which label smoothing gives every class, makes the loss infinite (about ``1e38``
    or more; PyTorch gives ``inf``) while the gradient with respect to the logits
    stays finite. The gradient with respect to ``targets`` is
    ``-(1 - eps) w_c log p_c``, taken as 0 for a masked (``-inf``) class.

    Args:
      logits: ``[..., C, ...]`` unnormalized log-probabilities, class axis ``axis``.
        bfloat16/float16 are computed in float32.
      targets: target distributions with the shape of ``logits``; any numeric dtype
        (one-hot integers are fine).
      axis: the class axis, or a tuple of axes that together index the classes (they
        are flattened in order), or None for all axes.
      where: boolean mask broadcastable to the per-example shape (``logits`` without
        the class axis). Masked examples give exactly 0 loss and 0 gradient, even if
        their logits are NaN or inf, and no weight in ``"mean"``.
      class_weights: ``[C]`` weight per class. The example's loss is
        ``-sum_c w_c t~_c log p_c`` and its weight in ``"mean"`` is
        ``sum_c w_c t_c`` (unsmoothed targets), so one-hot targets give exactly
        what :func:`sparse_categorical_cross_entropy` gives for their labels.
      label_smoothing: ``eps`` in [0, 1].
      z_loss: coefficient of the ``log Z`` penalty (PaLM, T5X), added to every
        unmasked example.
      reduction: ``"none"`` (per-example losses), ``"sum"``, or ``"mean"``
        (``sum_i loss_i / sum_i weight_i``; 0.0 with zero gradient when every
        example is masked, where PyTorch gives NaN).

    Returns:
      The per-example losses, shape ``logits.shape`` without the class axes, for
      ``reduction="none"``; a scalar otherwise. float32 for 16-bit logits, else the
      logits' dtype. Gradients come back in the inputs' dtypes.

    Differences from others:
      * optax ``softmax_cross_entropy``: same values for the same arguments; optax's
        ``where`` may also mask classes, ours masks examples only (use ``-inf``).
      * PyTorch ``cross_entropy`` with probability targets: ``reduction="mean"``
        divides by the number of examples, we divide by the summed example weights
        (the same without class weights and with normalized targets).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.log(jnp.array([[1.0, 3.0], [2.0, 2.0]]))  # p = [.25, .75], [.5, .5]
      >>> targets = jnp.array([[0.0, 1.0], [0.5, 0.5]])
      >>> print(jaxloss.categorical_cross_entropy(logits, targets))  # -log .75, -log .5
      [0.2877 0.6931]
      >>> print(jaxloss.categorical_cross_entropy(logits, targets, reduction="mean"))
      0.4904
      >>> # smoothing 0.5: targets [.25, .75] -> -(.25 log .25 + .75 log .75) = 0.5623
      >>> print(jaxloss.categorical_cross_entropy(logits, targets, label_smoothing=0.5))
      [0.5623 0.6931]

    References:
      Szegedy et al., "Rethinking the Inception Architecture for Computer Vision"
      (label smoothing), 2016. Chowdhery et al., "PaLM" (z-loss), 2022.
    """
    fn = "categorical_cross_entropy"
    logits, axes = _softmax.prepare_logits(logits, axis, fn)
    targets = _checks.as_array(targets, "targets", fn)
    if targets.shape != logits.shape:
        raise ValueError(
            f"{fn}: targets has shape {tuple(targets.shape)} but logits have shape "
            f"{tuple(logits.shape)}; soft targets need the logits' shape (for integer "
            f"labels use sparse_categorical_cross_entropy)"
        )
    if not (
        jnp.issubdtype(targets.dtype, jnp.number) or targets.dtype == jnp.bool_
    ) or jnp.issubdtype(targets.dtype, jnp.complexfloating):
        raise TypeError(f"{fn}: targets must be real numbers, got {targets.dtype}")
    if len(axes) > 1:
        targets = _softmax.flatten_class_axes(targets, axes)
    logits, ax = _softmax.single_axis(logits, axes)
    opts = _common_options(fn, logits, ax, where, class_weights, label_smoothing, z_loss, reduction)
    return _cross_entropy(
        logits,
        targets,
        opts.pop("where"),
        opts.pop("class_weights"),
        fn=fn,
        axis=ax,
        sparse=False,
        ignore_index=None,
        checks=_checks.checks_enabled(),
        **opts,
    )


def sparse_categorical_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: str = "none",
) -> jax.Array:
    r"""Softmax cross-entropy against integer class labels.

    .. math::
        \ell_i = (1-\varepsilon)\, w_{y_i} \big(\operatorname{lse}(x_i) - x_{i y_i}\big)
          + \frac{\varepsilon}{C} \sum_{c} w_c \big(\operatorname{lse}(x_i) - x_{ic}\big)
          + z\, \operatorname{lse}(x_i)^2

    the same value and gradient as :func:`categorical_cross_entropy` on the one-hot
    encoding of ``labels``, under every option. Without smoothing, class weights give
    PyTorch's ``CrossEntropyLoss(weight=w, reduction="none")`` values and, with
    ``reduction="mean"``, its weighted mean ``sum_i w_{y_i} loss_i / sum_i w_{y_i}``;
    with smoothing, PyTorch's values as well.

    An example whose label equals ``ignore_index``, or where ``where`` is False, gives
    exactly 0 loss and 0 gradient and no weight in ``"mean"``. A label outside
    ``[0, C)`` that is not ``ignore_index`` gives a NaN loss (and NaN gradient) for
    its example, never another class's loss (optax reads -100 as class C-100); wrap the
    call in :func:`jaxloss.checked` to raise an error naming it instead.

    Args:
      logits: ``[..., C, ...]`` unnormalized log-probabilities, class axis ``axis``
        (an int, or a tuple of axes whose flattened index is the label, like optax).
      labels: integer labels, the shape of ``logits`` without the class axes.
      axis: the class axis (or axes).
      where: boolean mask broadcastable to ``labels.shape``.
      ignore_index: a label value to skip (PyTorch's ``ignore_index``, e.g. -100).
      class_weights: ``[C]`` weight per class.
      label_smoothing: ``eps`` in [0, 1]; mass ``eps/C`` goes to every class.
      z_loss: coefficient of the ``lse**2`` penalty added to every unmasked example.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` (weighted mean; 0.0 with zero
        gradient when every example is masked).

    Returns:
      Per-example losses of shape ``labels.shape`` for ``reduction="none"``, else a
      scalar; float32 for 16-bit logits, else the logits' dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.log(jnp.array([[1.0, 3.0], [2.0, 2.0]]))  # p = [.25, .75], [.5, .5]
      >>> labels = jnp.array([1, 0])
      >>> print(jaxloss.sparse_categorical_cross_entropy(logits, labels))  # -log .75, -log .5
      [0.2877 0.6931]
      >>> # weighted mean: (3 * 0.2877 + 1 * 0.6931) / (3 + 1)
      >>> print(jaxloss.sparse_categorical_cross_entropy(
      ...     logits, labels, class_weights=jnp.array([1.0, 3.0]), reduction="mean"))
      0.389
      >>> print(jaxloss.sparse_categorical_cross_entropy(
      ...     logits, jnp.array([1, -100]), ignore_index=-100, reduction="mean"))
      0.2877

    References:
      PyTorch ``torch.nn.CrossEntropyLoss``; optax
      ``softmax_cross_entropy_with_integer_labels``.
    """
    fn = "sparse_categorical_cross_entropy"
    logits, axes = _softmax.prepare_logits(logits, axis, fn)
    labels = _checks.as_array(labels, "labels", fn)
    _checks.check_integer(
        labels,
        "labels",
        fn,
        " (integer class indices; for probability targets use categorical_cross_entropy)",
    )
    batch_shape = tuple(s for a, s in enumerate(logits.shape) if a not in axes)
    if labels.shape != batch_shape:
        raise ValueError(
            f"{fn}: labels has shape {tuple(labels.shape)} but logits "
            f"{tuple(logits.shape)} with axis={axis!r} need labels of shape "
            f"{batch_shape}"
        )
    ignore_index = _checks.check_ignore_index(ignore_index, fn)
    if labels.dtype.itemsize < 4:  # iota in int8 would overflow past 127 classes
        labels = labels.astype(jnp.int32)
    logits, ax = _softmax.single_axis(logits, axes)
    opts = _common_options(fn, logits, ax, where, class_weights, label_smoothing, z_loss, reduction)
    return _cross_entropy(
        logits,
        labels,
        opts.pop("where"),
        opts.pop("class_weights"),
        fn=fn,
        axis=ax,
        sparse=True,
        ignore_index=ignore_index,
        checks=_checks.checks_enabled(),
        **opts,
    )


def softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Drop-in for ``optax.softmax_cross_entropy``: :func:`categorical_cross_entropy`.

    .. math:: \ell_i = -\sum_c t_{ic} \log \operatorname{softmax}(x_i)_c

    Same arguments (``axis`` and ``where`` may be positional) and the same values as
    optax for them, with this library's derivative rules, memory use and ``-inf``
    handling. ``where`` masks whole examples (shape ``[batch]``, as optax allows);
    optax's other form, a mask of the logits' shape that drops classes, is refused
    with an error: give those classes ``-inf`` logits instead.

    Args:
      logits: ``[..., C]`` unnormalized log-probabilities.
      labels: target distributions of the logits' shape.
      axis: the class axis (or axes, or None for all).
      where: per-example boolean mask.

    Returns:
      Per-example losses, the logits' shape without the class axes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
      >>> print(jaxloss.softmax_cross_entropy(logits, labels))  # optax's docstring example
      [0.2761 2.9518]
    """
    return categorical_cross_entropy(logits, labels, axis=axis, where=where)


def softmax_cross_entropy_with_integer_labels(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Drop-in for ``optax.softmax_cross_entropy_with_integer_labels``.

    .. math:: \ell_i = \log \sum_c e^{x_{ic}} - x_{i y_i}

    :func:`sparse_categorical_cross_entropy` with optax's argument order (``axis`` may
    be an int or a tuple of axes whose flattened index is the label, as in optax).
    Same values as optax for labels in ``[0, C)``; a label outside that range gives
    NaN here, where optax silently reads another class (-1 as C-1). ``where`` masks
    whole examples (see :func:`softmax_cross_entropy`).

    Args:
      logits: ``[..., C]`` unnormalized log-probabilities.
      labels: integer labels, the logits' shape without the class axes.
      axis: the class axis (or axes).
      where: per-example boolean mask.

    Returns:
      Per-example losses of the labels' shape.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> print(jaxloss.softmax_cross_entropy_with_integer_labels(logits, jnp.array([0, 1])))
      [0.2761 2.9518]
    """
    return sparse_categorical_cross_entropy(logits, labels, axis=axis, where=where)
