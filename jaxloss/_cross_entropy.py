"""Softmax cross-entropy: soft targets, integer labels, and the optax drop-in names.

One kernel serves both target kinds. Per example (class axis ``c``), with the smoothed
targets ``t~_c = (1 - eps) t_c + eps / C`` and class weights ``w_c``, ``s_c = w_c t~_c``:

    loss = sum_c s_c (-log p_c) + z lse**2

    d loss = sum_c ((S + 2 z lse) p_c - s_c) dx_c         (logits; S = sum_c s_c)
           + sum_c (1 - eps) w_c (-log p_c) dt_c          (soft targets)
           + sum_c t~_c (-log p_c) dw_c                   (class weights)

The forward pass takes three passes over the logits, as optax's does: the row maximum
``m``, ``sum_exp = sum_c exp(x_c - m)``, and the weighted sum of ``-log p_c / 2`` (for
integer labels, a gather of the label's logit instead). The derivative rule
recomputes the softmax from ``m`` and ``sum_exp`` in the backward pass, or keeps it
(``residuals``, see :func:`jaxloss._softmax.keep_softmax`).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks, _long_rows, _numerics, _reduction, _softmax, _vocab_parallel
from ._softmax import Axis

# --------------------------------------------------------------------------------------
# The kernel. Arrays: logits, targets (integer labels or distributions), class_weights
# (or None), mask (per example, or None).


@dataclasses.dataclass(frozen=True)
class CrossEntropy(_reduction.Kernel):
    axis: int
    sparse: bool
    smoothing: float = 0.0
    z_loss: float = 0.0
    ignore_index: int | None = None
    remat: bool = True
    # None, or a _softmax.RowSplit: the long-rows view of XLA:CPU (jaxloss/_long_rows.py).
    # Inside shard_map the classes are split by _vocab_parallel's kernel instead, which
    # stacks its collectives into one psum.
    axis_name: _softmax.RowSplit | None = None

    def mask(self, arrays, where):
        labels = arrays[1] if self.sparse else None
        return _reduction.example_mask(where, labels, self.ignore_index)

    def check(self, arrays, mask):
        logits, targets, class_weights = arrays
        if self.sparse:
            num_classes = logits.shape[self.axis]
            _softmax.check_labels(self.fn, targets, mask, num_classes, self.ignore_index)
        else:
            rows = (
                None
                if mask is None
                else jnp.broadcast_to(_numerics.expand(mask, self.axis), targets.shape)
            )
            _checks.check_in_unit_interval(self.fn, "target", targets, rows)
        if class_weights is not None:
            _checks.check_nonnegative_values(self.fn, "class weight", class_weights)

    def values(self, arrays, mask):
        return _cross_entropy(self, *arrays, mask)

    def roles(self, arrays):
        if self.sparse and arrays[0].dtype.itemsize < 4:
            # 16-bit logits and labels: the view's backward writes out a one-hot and a
            # copy of the logits on XLA:CPU, measured slower than one row per example
            # (256 x 50257 bfloat16: 55 against 32 ms; docs/performance.md)
            return None
        return ("classes", "example" if self.sparse else "classes", "vector")

    def aux(self, arrays, mask):
        """``z lse**2`` per example: the same row statistics as the loss's forward
        pass, which XLA computes once for both (tests/test_cross_entropy.py counts
        the exponentials of the compiled program). Not for 16-bit logits on the
        long-rows view of XLA:CPU: there the aux and the loss read the view through
        two optimization barriers, which XLA does not merge, so ``return_z_loss``
        costs a second ``exp`` pass."""
        logits = jax.lax.stop_gradient(arrays[0])
        stats = _softmax.forward_row_stats(
            self.axis, logits, None, self.axis_name, finite=self.sparse
        )
        lse = jnp.squeeze(stats.lse, self.axis)
        z_term = self.z_loss * lse * lse  # (z lse) lse: lse**2 overflows first
        return _numerics.mask_rows(z_term, mask)

    def weights(self, arrays, mask, dtype):
        _, targets, class_weights = arrays
        if self.sparse:
            return _reduction.sparse_example_weights(mask, targets, class_weights, dtype)
        return _reduction.soft_example_weights(mask, targets, class_weights, self.axis, dtype)


def _class_weights(k, class_weights, ndim, dtype):
    """``w_c`` shaped along the class axis, NaN where invalid; None without."""
    if class_weights is None:
        return None
    w = _numerics.valid_weights(class_weights.astype(dtype))
    return _softmax.along_classes(w, k.axis, ndim, dtype)


def _label_terms(k, logits, labels, class_weights, dtype):
    """``x_y`` and ``w_y`` per example (class axis kept), ``w_y`` NaN where invalid."""
    x_y, w_y = _softmax.label_terms(logits, labels, class_weights, k.axis, k.axis_name, dtype)
    return x_y, (w_y if class_weights is None else _numerics.valid_weights(w_y))


def _value(k, logits, targets, class_weights, mask):
    dtype = _numerics.compute_dtype(logits)
    num_classes = _softmax.num_classes(logits, k.axis, k.axis_name)
    # masked rows: dropped below. Soft targets: a row of -inf or one holding +inf is NaN
    # either way, and the plain row maximum saves XLA:CPU a pass (_softmax.row_max)
    stats = _softmax.forward_row_stats(k.axis, logits, None, k.axis_name, finite=k.sparse)
    x = logits.astype(dtype)
    w = _class_weights(k, class_weights, x.ndim, dtype)
    b = k.smoothing / num_classes
    if k.sparse:
        # (1 - eps) w_y (-log p_y) + (eps / C) sum_c w_c (-log p_c)
        x_y, w_y = _label_terms(k, logits, targets, class_weights, dtype)
        half = _numerics.times((1 - k.smoothing) * w_y, _softmax.half_nll(x_y, stats))
        if k.smoothing:
            bw = b if w is None else b * w
            half = half + _softmax.row_sum(
                _numerics.times(bw, _softmax.half_nll(x, stats)), k.axis, k.axis_name
            )
        loss = 2 * half
        loss = jnp.where(_softmax.labels_ok(targets, num_classes, k.axis), loss, jnp.nan)
    else:
        t = targets.astype(dtype)
        s = (1 - k.smoothing) * t + b if k.smoothing else t
        if w is not None:
            s = w * s
        checked = _softmax.poison_targets(stats, targets, k.axis, k.axis_name)
        terms = _numerics.times(s, _softmax.half_nll(x, checked)) + _softmax.row_poison(checked)
        loss = 2 * _softmax.row_sum(terms, k.axis, k.axis_name)
    if k.z_loss:
        loss = loss + k.z_loss * stats.lse * stats.lse  # (z lse) lse: lse**2 overflows first
    loss = _numerics.mask_rows(loss, _numerics.expand(mask, k.axis))
    return jnp.squeeze(loss, k.axis)


def _stats(k, logits, targets, class_weights, mask):
    return _softmax.row_stats(k.axis, logits, mask, k.axis_name, k.sparse)


def _tangent(
    k, logits, targets, class_weights, mask, _value, stats, d_logits, d_targets, d_cw, _dm
):
    """The linear map (d_logits, d_targets, d_class_weights) -> d loss. In reverse mode
    it becomes one elementwise pass that writes the gradient."""
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, k.axis)
    x = _softmax.sanitized_logits(logits, mask, k.axis)
    num_classes = _softmax.num_classes(x, k.axis, k.axis_name)
    w = _class_weights(k, class_weights, x.ndim, dtype)
    b = k.smoothing / num_classes
    ok = None
    if k.sparse:
        ok = _softmax.labels_ok(targets, num_classes, k.axis)
        if mask_c is not None:  # a masked row's label may be anything
            ok = ok | ~mask_c
        y, inside = _softmax.shard_labels(targets, x.shape[k.axis], k.axis_name)

        def one_hot_smoothed():  # logits-sized: only where no gather serves
            t = _softmax.one_hot(y, x.shape, k.axis, dtype)
            return (1 - k.smoothing) * t + b if k.smoothing else t

    else:
        t = _numerics.mask_rows(targets.astype(dtype), mask_c)
        t_smooth = (1 - k.smoothing) * t + b if k.smoothing else t
        s = t_smooth if w is None else w * t_smooth
        s_sum = _softmax.row_sum(s, k.axis, k.axis_name)  # NaN for a NaN target
        ok = _softmax.targets_ok(targets, k.axis, k.axis_name, s_sum)  # outside [0, 1]
        if mask_c is not None:
            ok = ok | ~mask_c
    out = 0
    if d_logits is not None:
        dx = _numerics.mask_rows(d_logits.astype(dtype), mask_c)
        if k.sparse:  # S = (1 - eps) w_y + (eps / C) sum_c w_c
            _, w_y = _label_terms(k, logits, targets, class_weights, dtype)
            if w is None:
                coef = (1 - k.smoothing) * w_y + k.smoothing
            elif not k.smoothing:  # no class but the label's: an unused bad weight is not read
                coef = w_y
            else:
                w_sum = _softmax.shard_sum(jnp.sum(w), k.axis_name)
                coef = (1 - k.smoothing) * w_y + b * w_sum
        else:
            coef = s_sum
        if k.z_loss:
            coef = coef + 2 * k.z_loss * stats.lse
        coef = _numerics.nan_where_not(ok, coef)  # a NaN gradient for bad labels or targets
        p = _softmax.softmax(x, stats, None if k.remat else logits.dtype)
        rows_split = isinstance(k.axis_name, _softmax.RowSplit)
        # One row: the kernel of one example, as under vmap(grad(loss of one example)).
        one_row = x.size == x.shape[k.axis]
        if k.sparse and logits.dtype.itemsize >= 4 and (rows_split or one_row):
            # g = coef p - (eps / C) w - (1 - eps) w_y [c == y]. On the long-rows view
            # and for one row the label's term is a gather of dx (a scatter in reverse
            # mode), not a one-hot: XLA:CPU wrote the one-hot out, logits-sized (view,
            # 256 x 50257: 73 against 50 ms; 8192 x 1024 x 131072 after h @ W: 12
            # against 8 GiB of temporaries; per-example gradients at 8192 x 1000: 31
            # MiB, 0.31-0.36x the time). Elsewhere the scatter kept the gradient from
            # taking the logits' buffer after h @ W (2048 x 512 x 32768: 512 against
            # 256 MiB) and was no faster. 16-bit logits round the gradient after the
            # subtraction, in the one elementwise pass below.
            g = coef * p - (b if w is None else b * w) if k.smoothing else coef * p
            dx_y = _softmax.take_label(dx, y, k.axis)
            if inside is not None:  # only the shard that holds the label
                dx_y = jnp.where(jnp.expand_dims(inside, k.axis), dx_y, 0)
            label_term = (1 - k.smoothing) * w_y * dx_y
            out = out + jnp.sum(g * dx, k.axis, keepdims=True) - label_term
        else:
            if k.sparse:
                t_smooth = one_hot_smoothed()
                s = t_smooth if w is None else w * t_smooth
            out = out + jnp.sum((coef * p - s) * dx, k.axis, keepdims=True)
    if d_targets is not None or d_cw is not None:
        # -log p_c, taken as 0 for a class masked by a -inf logit; NaN in a row with a
        # bad label or target: a coefficient, so that reverse mode's gradients of the
        # targets and the class weights are NaN there too, not 0
        nlp = jnp.where(x != -jnp.inf, 2 * _softmax.half_nll(x, stats), 0)
        nlp = _numerics.nan_where_not(ok, nlp)
        if d_targets is not None:
            dt = (1 - k.smoothing) * _numerics.mask_rows(d_targets.astype(dtype), mask_c)
            if w is not None:
                dt = w * dt
            out = out + jnp.sum(nlp * dt, k.axis, keepdims=True)
        if d_cw is not None:
            if k.sparse:
                t_smooth = one_hot_smoothed()
            dw = _softmax.along_classes(d_cw, k.axis, x.ndim, dtype)
            coef = t_smooth * nlp * _numerics.nan_at(w)  # NaN at an invalid class weight
            out = out + jnp.sum(coef * dw, k.axis, keepdims=True)
    out = jnp.broadcast_to(out, stats.sum_exp.shape)
    if k.axis_name is not None:  # every shard's share of the tangent
        out = _softmax.shard_sum(out, k.axis_name)
    if ok is not None:
        out = jnp.where(ok, out, jnp.nan)
    return jnp.squeeze(_numerics.mask_rows(out, mask_c), k.axis)


_cross_entropy = _numerics.custom_rule(_value, _tangent, _stats)


# --------------------------------------------------------------------------------------
# Public functions.


def _run(
    fn,
    logits,
    targets,
    axes,
    *,
    sparse,
    where,
    sample_weight,
    ignore_index,
    class_weights,
    label_smoothing,
    z_loss,
    reduction,
    residuals,
    axis_name=None,
    return_z_loss=False,
):
    """Checks the options, merges the class axes and runs the kernel."""
    if len(axes) > 1 and not sparse:
        targets, _ = _softmax.merge_class_axes(targets, axes)
    per_example = _softmax.batch_shape(tuple(logits.shape), axes)
    logits, axis = _softmax.merge_class_axes(logits, axes)
    options = dict(
        fn=fn,
        axis=axis,
        sparse=sparse,
        smoothing=_checks.check_fraction(label_smoothing, "label_smoothing", fn),
        z_loss=_checks.check_nonnegative(z_loss, "z_loss", fn),
        ignore_index=_checks.check_ignore_index(ignore_index, fn),
    )
    residuals = _checks.check_residuals(residuals, fn)
    if _checks.check_axis_name(axis_name, fn) is not None:  # classes split over shard_map
        kernel = _vocab_parallel.VocabParallelCrossEntropy(axis_name=axis_name, **options)
    else:
        kernel = CrossEntropy(remat=not _softmax.keep_softmax(residuals, logits), **options)
    class_weights = _checks.check_class_weights(class_weights, logits.shape[axis], fn)
    arrays = (logits, targets, class_weights)
    return _reduction.apply(
        _long_rows.maybe_split(kernel, arrays),
        arrays,
        _checks.check_where(where, per_example, fn),
        _checks.check_sample_weight(sample_weight, per_example, fn, "per-example"),
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
        aux=bool(return_z_loss),
    )


def _categorical(fn, logits, targets, axis, **options):
    logits, axes = _softmax.prepare_logits(logits, axis, fn)
    targets = _checks.check_same_shape(
        fn,
        logits,
        targets,
        "targets",
        " (soft targets; for integer labels use sparse_categorical_cross_entropy)",
    )
    _checks.check_real(targets, "targets", fn)
    return _run(fn, logits, targets, axes, sparse=False, ignore_index=None, **options)


def _sparse(fn, logits, labels, axis, **options):
    logits, axes = _softmax.prepare_logits(logits, axis, fn)
    hint = " (integer class indices; for probability targets use categorical_cross_entropy)"
    labels = _softmax.prepare_labels(labels, logits, axes, axis, fn, hint=hint)
    return _run(fn, logits, labels, axes, sparse=True, **options)


def categorical_cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: str = "none",
    residuals: str = "auto",
    axis_name: str | None = None,
    return_z_loss: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    r"""Softmax cross-entropy against soft (or one-hot) target distributions.

    .. math::
        \ell_i = -\sum_c w_c\,\tilde t_{ic} \log \operatorname{softmax}(x_i)_c
                 + z \,\big(\log \textstyle\sum_c e^{x_{ic}}\big)^2,
        \qquad \tilde t_{ic} = (1-\varepsilon)\, t_{ic} + \varepsilon / C

    where ``w`` are the class weights (1 without) and ``eps`` the label smoothing
    (mass ``eps/C`` to every class, PyTorch's and Keras's convention).

    The targets are not renormalized: a row summing to ``a`` weighs ``a`` times as
    much (optax behaves the same); each target must lie in [0, 1], and a row holding
    one outside it (or NaN) gets a NaN loss. Classes can be masked by ``-inf`` logits:
    a class with ``-inf`` logit and zero target mass contributes exactly 0 to the
    value and the gradient (optax's gradient is NaN there). Positive target mass on
    such a class, which label smoothing gives every class, makes the loss ``inf``
    (as in PyTorch) while the gradient with respect to the logits stays finite. The
    gradient with respect to ``targets`` is ``-(1 - eps) w_c log p_c``, taken as 0 for
    a masked (``-inf``) class. Logits of any finite size are exact: a row spanning
    more than the float range still gets its true loss where that is representable.

    Args:
      logits: ``[..., C, ...]`` unnormalized log-probabilities, class axis ``axis``.
        bfloat16/float16 are computed in float32.
      targets: target distributions with the shape of ``logits``; any real dtype
        (one-hot integers are fine), each entry in [0, 1].
      axis: the class axis, or a tuple of axes that together index the classes
        (flattened in the order given, like optax), or None for all axes.
      where: boolean mask broadcastable to the per-example shape (``logits`` without
        the class axis). Masked examples give exactly 0 loss and 0 gradient, even if
        their logits or targets are NaN or inf, and no weight in ``"mean"``.
      sample_weight: float weight per example (broadcastable to the per-example
        shape), ``>= 0``: multiplies the example's loss and its weight in ``"mean"``.
      class_weights: ``[C]`` weight per class, ``>= 0``. The example's loss is
        ``-sum_c w_c t~_c log p_c`` and its weight in ``"mean"`` is
        ``sum_c w_c t_c`` (unsmoothed targets), so one-hot targets give exactly
        what :func:`sparse_categorical_cross_entropy` gives for their labels.
      label_smoothing: ``eps`` in [0, 1].
      z_loss: coefficient of the ``log Z`` penalty (PaLM, T5X), added to every
        unmasked example.
      reduction: ``"none"`` (per-example losses), ``"sum"``, or ``"mean"``
        (``sum_i s_i loss_i / sum_i s_i weight_i``; 0.0 with zero gradient when every
        example is masked, where PyTorch gives NaN).
      residuals: what reverse mode keeps between the forward and the backward pass:
        ``"lse"`` the inputs and two numbers per example (the softmax is recomputed),
        ``"softmax"`` also the softmax, logits-sized (no recomputation), ``"auto"``
        (default) ``"softmax"`` on CPU for at most 2**24 logits, where recomputing
        costs more than keeping, else ``"lse"``.
      axis_name: inside ``jax.shard_map``, the mesh axis over which the class axis
        is split in contiguous shards (vocabulary parallelism). ``logits``,
        ``targets`` and ``class_weights`` are then the local shards; values and
        derivatives equal the unsharded call's, and the forward pass exchanges one
        ``pmax`` and one ``psum`` of a few numbers per example (the logits' backward
        pass none). ``residuals`` does not apply: the softmax is recomputed.
      return_z_loss: also return the z-loss term ``z lse**2`` on its own, weighted
        and reduced like the loss (T5X, Levanter and Liger log it): ``(loss,
        z_term)``, where ``loss`` already includes the term. It comes from the loss's
        own pass over the logits (no second pass) and carries no gradient.

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
    return _categorical(
        "categorical_cross_entropy",
        logits,
        targets,
        axis,
        where=where,
        sample_weight=sample_weight,
        class_weights=class_weights,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        reduction=reduction,
        residuals=residuals,
        axis_name=axis_name,
        return_z_loss=return_z_loss,
    )


def sparse_categorical_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: str = "none",
    residuals: str = "auto",
    axis_name: str | None = None,
    return_z_loss: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
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
        (an int, or a tuple of axes whose flattened index, in the order given, is the
        label, like optax).
      labels: integer labels, the shape of ``logits`` without the class axes.
      axis: the class axis (or axes).
      where: boolean mask broadcastable to ``labels.shape``.
      sample_weight: float weight per example, ``>= 0``, broadcastable to
        ``labels.shape``.
      ignore_index: a label value to skip (PyTorch's ``ignore_index``, e.g. -100).
      class_weights: ``[C]`` weight per class, ``>= 0``.
      label_smoothing: ``eps`` in [0, 1]; mass ``eps/C`` goes to every class.
      z_loss: coefficient of the ``lse**2`` penalty added to every unmasked example.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` (weighted mean; 0.0 with zero
        gradient when every example is masked).
      residuals: ``"auto"``, ``"lse"`` or ``"softmax"``: what reverse mode keeps (see
        :func:`categorical_cross_entropy`).
      axis_name: inside ``jax.shard_map``, the mesh axis over which the class axis is
        split (see :func:`categorical_cross_entropy`). Labels stay global class
        indices; ``class_weights`` is the local shard.
      return_z_loss: also return the z-loss term ``z lse**2`` on its own, weighted
        and reduced like the loss (T5X, Levanter and Liger log it): ``(loss,
        z_term)``, where ``loss`` already includes the term. It comes from the loss's
        own pass over the logits (no second pass) and carries no gradient.

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
    return _sparse(
        "sparse_categorical_cross_entropy",
        logits,
        labels,
        axis,
        where=where,
        sample_weight=sample_weight,
        ignore_index=ignore_index,
        class_weights=class_weights,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        reduction=reduction,
        residuals=residuals,
        axis_name=axis_name,
        return_z_loss=return_z_loss,
    )


def _optax_where(fn, logits, targets, axis, where, *, sparse):
    """optax's two kinds of ``where``: one of the logits' rank masks classes, any
    other masks examples. A class mask becomes ``-inf`` logits (and zero targets)
    on the dropped classes, plus an example mask for rows with none left (their
    loss is 0, as in optax). Returns ``(logits, targets, per-example where)``."""
    if where is None:
        return logits, targets, None
    logits = _checks.as_array(logits, "logits", fn)
    where = _checks.as_array(where, "where", fn)
    if where.ndim != logits.ndim:
        return logits, targets, where
    if where.dtype != jnp.bool_:
        raise TypeError(f"{fn}: where must be a boolean mask, got dtype {where.dtype}")
    _checks.check_floating(logits, "logits", fn)
    try:
        keep = jnp.broadcast_to(where, logits.shape)
    except ValueError:
        raise ValueError(
            f"{fn}: where has shape {tuple(where.shape)}, the logits' rank, but does not "
            f"broadcast to the logits' shape {tuple(logits.shape)}"
        ) from None
    axes = _checks.canonicalize_axes(axis, tuple(logits.shape), "logits", fn)
    logits = jnp.where(keep, logits, -jnp.inf)
    if not sparse and jnp.shape(targets) == logits.shape:
        targets = jnp.where(keep, targets, 0)
    return logits, targets, jnp.any(keep, axis=axes)


def _poly_term(logits, targets, axis):
    """``sum_c t_c (1 - p_c)`` per example, ``p = softmax(logits)`` (JAX's own
    softmax and its derivative rule: this term is not on a hot path)."""
    dtype = _numerics.compute_dtype(logits)
    t = targets.astype(dtype)
    p = jax.nn.softmax(logits.astype(dtype), axis=axis)
    return jnp.sum(t * (1 - p), axis)


def safe_softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
    r"""Drop-in for ``optax.safe_softmax_cross_entropy``: :func:`softmax_cross_entropy`
    over the last axis, ``labels`` broadcast to the logits' shape.

    .. math:: \ell_i = -\sum_c t_{ic} \log \operatorname{softmax}(x_i)_c

    optax keeps a second function for the ``0 log 0 = 0`` case (a ``-inf`` logit
    with a zero label); in jaxloss every softmax loss handles it, so this is the same
    function under optax's name.

    Args:
      logits: ``[..., C]`` unnormalized log-probabilities.
      labels: target distributions broadcastable to the logits' shape.

    Returns:
      Per-example losses, the logits' shape without the last axis.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.array([[0.0, -jnp.inf, 0.0]])
      >>> print(jaxloss.safe_softmax_cross_entropy(logits, jnp.array([0.5, 0.0, 0.5])))
      [0.6931]
    """
    fn = "safe_softmax_cross_entropy"
    logits = _checks.as_array(logits, "logits", fn)
    labels = _checks.check_broadcastable(labels, tuple(logits.shape), "labels", fn, "logits")
    labels = jnp.broadcast_to(labels, logits.shape)
    return _categorical(fn, logits, labels, -1, where=None, **_OPTAX_DEFAULTS)


def poly_loss_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: ArrayLike = 2.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Drop-in for ``optax.poly_loss_cross_entropy``: Poly-1, the cross-entropy plus
    ``epsilon`` times the first polynomial term of its Taylor expansion.

    .. math:: \ell_i = -\sum_c t_{ic} \log p_{ic}
        + \epsilon \sum_c t_{ic} (1 - p_{ic}),
        \qquad p_i = \operatorname{softmax}(x_i)

    ``epsilon = 0`` is :func:`softmax_cross_entropy`; the paper recommends 2 for
    ImageNet classification and -1 for detection. ``epsilon`` may be a traced array
    (and is differentiable). ``where`` follows :func:`softmax_cross_entropy`: per
    example, or a class mask of the logits' rank, as in optax.

    Args:
      logits: ``[..., C]`` unnormalized log-probabilities.
      labels: target distributions of the logits' shape.
      epsilon: the coefficient of the first polynomial term.
      axis: the class axis (or axes).
      where: a per-example mask, or a class mask of the logits' rank.

    Returns:
      Per-example losses, the logits' shape without the class axes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.log(jnp.array([[0.25, 0.75]]))
      >>> labels = jnp.array([[0.0, 1.0]])
      >>> # -log .75 + 2 (1 - .75) = 0.2877 + 0.5
      >>> print(jaxloss.poly_loss_cross_entropy(logits, labels))
      [0.7877]

    References:
      Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
      Functions", ICLR 2022.
    """
    fn = "poly_loss_cross_entropy"
    logits, labels, where = _optax_where(fn, logits, labels, axis, where, sparse=False)
    ce = _categorical(fn, logits, labels, axis, where=where, **_OPTAX_DEFAULTS)
    logits, axes = _softmax.prepare_logits(logits, axis, fn)
    labels = _checks.check_same_shape(fn, logits, labels, "labels")
    if isinstance(epsilon, jax.Array):
        epsilon = epsilon.astype(ce.dtype)
    else:
        epsilon = _checks.static_float(epsilon, "epsilon", fn)
    logits, ax = _softmax.merge_class_axes(logits, axes)
    labels = _softmax.merge_class_axes(labels, axes)[0]
    mask = None if where is None else jnp.broadcast_to(where, ce.shape)
    x = _numerics.mask_rows(logits, _numerics.expand(mask, ax))  # masked rows: NaN-free
    t = _numerics.mask_rows(labels, _numerics.expand(mask, ax))
    term = _numerics.mask_rows(_poly_term(x, t, ax), mask)
    # NaN where ce is (a label outside [0, 1]): then d/d epsilon is NaN there too. A
    # per-example select on ce's own check, not a second pass over the labels
    term = _numerics.nan_where_not(~jnp.isnan(ce), term)
    return ce + epsilon * term


def smooth_labels(
    labels: ArrayLike,
    alpha: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Drop-in for ``optax.smooth_labels``: ``(1 - alpha) * labels + alpha / C``.

    .. math:: \tilde t_{c} = (1 - \alpha)\, t_c + \alpha / C

    The losses take ``label_smoothing=alpha`` themselves (without building the
    smoothed targets); this is for code that wants the targets. With ``where`` (a
    class mask broadcastable to the labels) ``C`` is the number of kept classes of
    each example, as in optax.

    Args:
      labels: one-hot (or soft) labels, floating.
      alpha: the smoothing factor in ``[0, 1]``.
      axis: the class axis (or axes).
      where: a boolean class mask broadcastable to the labels.

    Returns:
      The smoothed labels, the labels' shape.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> print(jaxloss.smooth_labels(jnp.array([0.0, 1.0, 0.0, 0.0]), 0.2))
      [0.05 0.85 0.05 0.05]
    """
    fn = "smooth_labels"
    labels = _checks.as_array(labels, "labels", fn)
    _checks.check_floating(labels, "labels", fn)
    if not isinstance(alpha, jax.Array):
        alpha = _checks.check_fraction(alpha, "alpha", fn)
    axes = _checks.canonicalize_axes(axis, tuple(labels.shape), "labels", fn)
    if where is None:
        num_classes = math.prod(labels.shape[a] for a in axes)
    else:
        where = _checks.check_where(where, tuple(labels.shape), fn, what="labels'")
        num_classes = jnp.sum(where, axes, keepdims=True).astype(labels.dtype)
    return (1 - alpha) * labels + alpha / num_classes


_OPTAX_DEFAULTS = dict(
    sample_weight=None,
    class_weights=None,
    label_smoothing=0.0,
    z_loss=0.0,
    reduction="none",
    residuals="auto",
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
    handling. ``where`` is read as optax reads it: a mask of the logits' rank drops
    classes (they get ``-inf`` logits and no target mass; an example with no class
    left gives 0 and no weight), any other shape masks whole examples.

    Args:
      logits: ``[..., C]`` unnormalized log-probabilities.
      labels: target distributions of the logits' shape.
      axis: the class axis (or axes, or None for all).
      where: a class mask of the logits' rank, or a per-example mask.

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
    fn = "softmax_cross_entropy"
    logits, labels, where = _optax_where(fn, logits, labels, axis, where, sparse=False)
    return _categorical(fn, logits, labels, axis, where=where, **_OPTAX_DEFAULTS)


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
    NaN here, where optax silently reads another class (-1 as C-1). ``where`` is
    read as in :func:`softmax_cross_entropy`; a label whose class the mask drops gives
    ``inf`` (its probability is 0), where optax returns a finite number that is not a
    loss.

    Args:
      logits: ``[..., C]`` unnormalized log-probabilities.
      labels: integer labels, the logits' shape without the class axes.
      axis: the class axis (or axes).
      where: a class mask of the logits' rank, or a per-example mask.

    Returns:
      Per-example losses of the labels' shape.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxloss
      >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
      >>> print(jaxloss.softmax_cross_entropy_with_integer_labels(logits, jnp.array([0, 1])))
      [0.2761 2.9518]
    """
    fn = "softmax_cross_entropy_with_integer_labels"
    logits, labels, where = _optax_where(fn, logits, labels, axis, where, sparse=True)
    return _sparse(fn, logits, labels, axis, where=where, ignore_index=None, **_OPTAX_DEFAULTS)
