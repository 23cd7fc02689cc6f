"""The one shell every loss runs in: kernel, then mask, then weights, then reduction.

The rules (``docs/semantics.md``):

* each example has a weight ``w_i``: 0 where ``where`` is False or the label equals
  ``ignore_index``; otherwise ``class_weights[y_i]`` for integer labels,
  ``sum_c class_weights[c] * t_ic`` (unsmoothed targets) for soft targets, and 1 when
  no class weights are given;
* ``sample_weight`` ``s_i`` multiplies each loss and its weight;
* ``"sum"`` adds the per-example losses (masked ones are exactly 0);
* ``"mean"`` is ``sum_i s_i loss_i / sum_i s_i w_i`` (PyTorch's weighted mean), and
  0.0 with zero gradient when every weight is 0.

A loss is a :class:`Kernel`, a frozen (hashable) dataclass holding its static options,
and :func:`apply` is the jitted shell that runs it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from . import _checks, _numerics, _softmax


@dataclasses.dataclass(frozen=True)
class Kernel:
    """A loss's static options and its four steps. Subclasses override what differs.

    ``arrays`` is the tuple of the loss's array arguments (None where an optional one
    is absent); ``mask`` is a boolean per-example (or per-element) array, or None
    when every example counts.
    """

    fn: str  # the public function's name, for error messages

    def mask(self, arrays: tuple, where: jax.Array | None) -> jax.Array | None:
        """Which examples count (``where`` by default)."""
        return where

    def check(self, arrays: tuple, mask: jax.Array | None) -> None:
        """Run-time value checks (emitted only under :func:`jaxloss.checked`)."""

    def values(self, arrays: tuple, mask: jax.Array | None) -> jax.Array:
        """Per-example (or per-element) values, exactly 0 where masked."""
        raise NotImplementedError

    def weights(self, arrays: tuple, mask: jax.Array | None, dtype) -> jax.Array | None:
        """``w_i`` per example, or None when every example weighs 1."""
        return count_weights(mask, dtype)

    def total(self, arrays: tuple, mask: jax.Array | None, scale: jax.Array | None):
        """``(sum_i scale_i * loss_i, number of examples)`` (``scale`` None: all 1)
        computed directly, for kernels with a faster path for a scalar reduction;
        None to use ``values``."""
        return None

    # Running on shards of the classes (``jaxloss._long_rows``). Kernels that can do it
    # override ``roles``; ``split`` needs their ``axis`` and ``axis_name`` fields.

    def roles(self, arrays: tuple) -> tuple[str, ...] | None:
        """What each array holds along the class axis: ``"classes"`` (the logits'
        shape), ``"example"`` (one value per example, such as labels) or ``"vector"``
        (one per class); None when the kernel cannot (or, measured, should not) run
        on shards of the classes for these arrays."""
        return None

    def split(self, parts: int) -> Kernel:
        """This kernel for a 2-D view whose every ``parts`` rows hold one example's
        classes."""
        return dataclasses.replace(self, axis=1, axis_name=_softmax.RowSplit(parts))

    # A second, per-example output reduced like the loss (the z-loss term, for logging),
    # computed from the loss's own statistics. Kernels that have one override these.

    def aux(self, arrays: tuple, mask: jax.Array | None) -> jax.Array:
        """The auxiliary per-example values, exactly 0 where masked, without gradient."""
        raise NotImplementedError(f"{self.fn} has no auxiliary output")

    def values_and_aux(self, arrays: tuple, mask: jax.Array | None):
        """``(values, aux)``; by default two calls that XLA merges into one pass."""
        return self.values(arrays, mask), self.aux(arrays, mask)

    def total_and_aux(self, arrays: tuple, mask: jax.Array | None, scale: jax.Array | None):
        """:meth:`total` with the scaled auxiliary total as a third element, or None."""
        return None


@functools.partial(jax.jit, static_argnames=("kernel", "reduction", "checks", "aux"))
def apply(
    kernel: Kernel,
    arrays: tuple,
    where: jax.Array | None,
    sample_weight: jax.Array | None,
    *,
    reduction: str,
    checks: bool,
    aux: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Runs ``kernel``: mask, checks, per-example values, weights, reduction. With
    ``aux``, returns ``(loss, aux)``, the kernel's auxiliary output weighted and
    reduced exactly like the loss."""
    mask = kernel.mask(arrays, where)
    if checks:
        kernel.check(arrays, mask)
        if sample_weight is not None:
            # a masked example's weight is ignored, as it is without checks
            counted = _numerics.mask_rows(sample_weight, mask)
            _checks.check_nonnegative_values(kernel.fn, "sample_weight", counted)
    # the sigmoid losses' weights, one per element (sample_weight is broadcast to the
    # per-example, or per-element, output)
    elementwise = sample_weight is not None and sample_weight.shape == arrays[0].shape
    # per-example weights, which the denominator multiplies by class weights; not the
    # per-element ones, whose denominator is their plain sum and whose largest would
    # take a pass over an array as large as the logits (2048 x 8192 float32 fwd+bwd:
    # 86-88 against 69-77 ms)
    if reduction == "mean" and sample_weight is not None and not elementwise:
        sample_weight = unit_scaled(sample_weight, mask)
    if reduction != "none":
        scale = _scale(mask, sample_weight)
        if aux:
            fused = kernel.total_and_aux(arrays, mask, scale)
        else:
            fused = kernel.total(arrays, mask, scale)
        if fused is not None:  # the kernel's own path for a scalar reduction
            total, count, *aux_total = fused
            weights = kernel.weights(arrays, mask, total.dtype)
            if scale is not None:
                scale = scale.astype(total.dtype)
                weights = scale if weights is None else weights * scale
            out = reduce_total(total, count, weights, reduction)
            if aux:
                return out, reduce_total(aux_total[0], count, weights, reduction)
            return out
    if aux:
        values, aux_values = kernel.values_and_aux(arrays, mask)
    else:
        values, aux_values = kernel.values(arrays, mask), None
    weights = kernel.weights(arrays, mask, values.dtype)
    if sample_weight is not None:
        s = _numerics.mask_rows(sample_weight.astype(values.dtype), mask)
        s = _numerics.nan_if_negative(s)
        values = _weighted(s, values, elementwise)
        if aux:
            aux_values = _weighted(s, aux_values, elementwise)
        weights = s if weights is None else weights * s
    out = reduce(values, weights, reduction)
    return (out, reduce(aux_values, weights, reduction)) if aux else out


def _weighted(s, values, elementwise=False):
    """``s * values`` with an infinite value of weight 0 giving 0, as ``where`` does
    (a NaN value stays NaN). The derivative in ``s`` stays the value where it is
    finite. Per-example values only: the select over every element of the sigmoid
    losses cost 23% of their fwd+bwd (2048 x 8192 float32, per-element weights: 84
    against 68 ms), whose values are finite unless ``pos_weight`` times a softplus
    overflows."""
    if elementwise:
        return s * values
    return s * _numerics.unweighted_zero(s, values)


def _largest(v):
    return jnp.max(v, initial=0.0)  # 0 for an empty batch


def unit_scaled(sample_weight, mask, reduce_max=_largest):
    """For ``"mean"``, which only their ratios change: the sample weights (in the
    compute dtype) times the power of two that brings the largest counted one into
    ``[0.5, 1)``, an exact rescaling, so that ``s_i * w_i`` and its sum stay in the
    float range (sample and class weights of 1e-20 each, or 1e20 each, gave 0 or NaN).
    ``reduce_max``: the largest of an array, over every shard with a collective."""
    s = sample_weight.astype(_numerics.compute_dtype(sample_weight))
    counted = _numerics.nan_if_negative(_numerics.mask_rows(s, mask))
    return s * _numerics.power_of_two_below(reduce_max(counted))


def _scale(mask, sample_weight):
    """``s_i`` times the 0/1 mask, NaN where a sample weight is invalid; None: all 1."""
    if sample_weight is None:
        return None if mask is None else mask.astype(jnp.float32)
    dtype = _numerics.compute_dtype(sample_weight)  # float64 stays float64
    return _numerics.nan_if_negative(_numerics.mask_rows(sample_weight.astype(dtype), mask))


# --------------------------------------------------------------------------------------
# Masks and example weights.


def example_mask(
    where: jax.Array | None,
    labels: jax.Array | None = None,
    ignore_index: int | None = None,
) -> jax.Array | None:
    """Which examples count: ``where`` and ``labels != ignore_index``; None if all."""
    mask = where
    if labels is not None and ignore_index is not None:
        keep = labels != ignore_index
        mask = keep if mask is None else mask & keep
    return mask


def count_weights(mask: jax.Array | None, dtype) -> jax.Array | None:
    """``w_i`` = 1 for each unmasked example (or element), 0 for masked ones; None
    (every one counts) without a mask."""
    return None if mask is None else mask.astype(dtype)


def sparse_example_weights(
    mask: jax.Array | None,
    labels: jax.Array,
    class_weights: jax.Array | None,
    dtype,
    axis_name: str | None = None,
) -> jax.Array | None:
    """``w_i`` for integer labels: ``class_weights[y_i]`` (1 without), 0 if masked; a
    label outside ``[0, C)`` reads no other class's weight (its loss is NaN). With
    ``axis_name``, ``class_weights`` is this device's shard of the classes."""
    if class_weights is None:
        return count_weights(mask, dtype)
    num_local = class_weights.shape[0]
    labels, inside = _softmax.shard_labels(labels, num_local, axis_name)
    safe = jnp.where((labels >= 0) & (labels < num_local), labels, 0)
    w = _softmax.take(_numerics.valid_weights(class_weights.astype(dtype)), safe)
    if axis_name is not None:  # the weight from the device that holds the label
        w = _softmax.shard_sum(jnp.where(inside, w, 0), axis_name)
    return _numerics.mask_rows(w, mask)


@dataclasses.dataclass(frozen=True)
class _SoftWeights:
    axis: int
    dtype: Any


def _soft_weights_value(config, targets, class_weights, mask):
    t = targets.astype(config.dtype)
    cw = jnp.expand_dims(class_weights.astype(config.dtype), range(1, targets.ndim - config.axis))
    w = jnp.sum(t * cw, config.axis)
    return _numerics.mask_rows(w, mask)  # a masked row's NaN is dropped here


def _soft_weights_tangent(config, targets, class_weights, mask, _value, _stats, d_t, d_cw, _dm):
    mask_c = _numerics.expand(mask, config.axis)
    t = _numerics.mask_rows(targets.astype(config.dtype), mask_c)
    cw = jnp.expand_dims(class_weights.astype(config.dtype), range(1, targets.ndim - config.axis))
    out = 0
    if d_t is not None:
        out = out + jnp.sum(_numerics.mask_rows(d_t.astype(config.dtype), mask_c) * cw, config.axis)
    if d_cw is not None:
        d_cw = jnp.expand_dims(d_cw.astype(config.dtype), range(1, targets.ndim - config.axis))
        out = out + jnp.sum(t * d_cw, config.axis)
    shape = targets.shape[: config.axis] + targets.shape[config.axis + 1 :]
    return _numerics.mask_rows(jnp.broadcast_to(out, shape), mask)


# Its own rule, so that a masked row's (possibly NaN) targets never enter a gradient,
# while the forward pass needs no masked copy of the targets.
_soft_weights = _numerics.custom_rule(_soft_weights_value, _soft_weights_tangent)


def soft_example_weights(
    mask: jax.Array | None,
    targets: jax.Array,
    class_weights: jax.Array | None,
    axis: int,
    dtype,
    axis_name: str | None = None,
) -> jax.Array | None:
    """``w_i`` for soft targets: ``sum_c class_weights[c] t_ic`` (1 without), 0 if
    masked. Reverse mode keeps the targets themselves, no ``[..., C]`` copy. With
    ``axis_name``, the arrays are this device's shard of the classes."""
    if class_weights is None:
        return count_weights(mask, dtype)
    cw = _numerics.valid_weights(class_weights)
    w = _soft_weights(_SoftWeights(axis, jnp.dtype(dtype)), targets, cw, mask)
    return w if axis_name is None else _softmax.shard_sum(w, axis_name)


# --------------------------------------------------------------------------------------
# Reductions.


def reduce_total(total, count, weights, reduction):
    """``"sum"`` or ``"mean"`` from the (scaled) total, the number of examples and
    their weights (None: each weighs 1)."""
    if reduction == "sum":
        return total
    if weights is None:
        return total / count if count else jnp.zeros((), total.dtype)
    denom = jnp.sum(weights.astype(total.dtype))
    empty = denom == 0
    return jnp.where(empty, 0, _numerics.divide(total, jnp.where(empty, 1, denom)))


def reduce(losses: jax.Array, weights: jax.Array | None, reduction: str) -> jax.Array:
    """Applies ``reduction`` to per-example (or per-element) ``losses``.

    ``losses`` must already be exactly 0 where the weight is 0; ``weights`` None means
    every one weighs 1 (the mean divides by the count, known without a pass).
    """
    if reduction == "none":
        return losses
    if reduction == "sum":
        return jnp.sum(losses)
    # The mean divides before it adds, so that a mean of huge losses whose sum would
    # overflow is still exact.
    if weights is None:
        return jnp.sum(losses / losses.size) if losses.size else jnp.zeros((), losses.dtype)
    denom = jnp.sum(weights.astype(losses.dtype))
    # Double where: an all-masked batch gives 0 and a zero (not NaN) gradient.
    empty = denom == 0
    return jnp.where(empty, 0, jnp.sum(_numerics.divide(losses, jnp.where(empty, 1, denom))))
