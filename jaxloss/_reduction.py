"""Weights, masks and reductions: the one implementation every loss calls.

The rules (``SEMANTICS.md``):

* each example has a weight ``w_i``: 0 where ``where`` is False or the label equals
  ``ignore_index``; otherwise ``class_weights[y_i]`` for integer labels,
  ``sum_c class_weights[c] * t_ic`` (unsmoothed targets) for soft targets, and 1 when
  no class weights are given;
* ``"sum"`` adds the per-example losses (masked ones are exactly 0);
* ``"mean"`` is ``sum_i loss_i / sum_i w_i`` (PyTorch's weighted mean), and 0.0 with
  zero gradient when every weight is 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _numerics


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
    dtype: jnp.dtype,
) -> jax.Array | None:
    """``w_i`` for integer labels: ``class_weights[y_i]`` (1 without), 0 if masked."""
    if class_weights is None:
        return count_weights(mask, dtype)
    num_classes = class_weights.shape[0]
    safe = jnp.where((labels >= 0) & (labels < num_classes), labels, 0)
    w = jnp.take(class_weights.astype(dtype), safe)
    return w if mask is None else jnp.where(mask, w, 0)


def _soft_weights_forward(axis, dtype, targets, class_weights, mask):
    cw = jnp.expand_dims(class_weights.astype(dtype), range(1, targets.ndim - axis))
    w = jnp.sum(targets.astype(dtype) * cw, axis)  # a masked row's NaN is dropped below
    return (w if mask is None else jnp.where(mask, w, 0)), ()


def _soft_weights_tangent(axis, dtype, targets, class_weights, mask, d_t, d_cw, _d_mask):
    cw = jnp.expand_dims(class_weights.astype(dtype), range(1, targets.ndim - axis))
    out = 0
    if d_t is not None:
        out = out + jnp.sum(d_t.astype(dtype) * cw, axis)
    if d_cw is not None:  # masked rows' targets may be NaN: mask them for this one
        t = targets.astype(dtype)
        if mask is not None:
            t = jnp.where(jnp.expand_dims(mask, axis), t, 0)
        d_cw = jnp.expand_dims(d_cw.astype(dtype), range(1, targets.ndim - axis))
        out = out + jnp.sum(t * d_cw, axis)
    out = jnp.broadcast_to(out, targets.shape[:axis] + targets.shape[axis + 1 :])
    return out if mask is None else jnp.where(mask, out, 0)


# Its own derivative rule, so that a masked row's (possibly NaN) targets are never
# multiplied into a gradient, yet the forward pass needs no masked copy of the targets
# (XLA:CPU would write that copy out before the reduction).
_soft_weights = _numerics.custom_rule(_soft_weights_forward, _soft_weights_tangent, 2)


def soft_example_weights(
    mask: jax.Array | None,
    targets: jax.Array,
    class_weights: jax.Array | None,
    axis: int,
    dtype: jnp.dtype,
) -> jax.Array | None:
    """``w_i`` for soft targets: ``sum_c class_weights[c] t_ic`` (1 without), 0 if
    masked. Reverse mode keeps the targets themselves, no ``[..., C]`` copy."""
    if class_weights is None:
        return count_weights(mask, dtype)
    return _soft_weights(axis, jnp.dtype(dtype), targets, class_weights, mask)


def reduce(losses: jax.Array, weights: jax.Array | None, reduction: str) -> jax.Array:
    """Applies ``reduction`` to per-example (or per-element) ``losses``.

    ``losses`` must already be exactly 0 where the weight is 0; ``weights`` None means
    every one weighs 1 (the mean divides by the count, known without a pass).
    """
    if reduction == "none":
        return losses
    total = jnp.sum(losses)
    if reduction == "sum":
        return total
    if weights is None:
        return total / losses.size if losses.size else jnp.zeros((), losses.dtype)
    denom = jnp.sum(weights.astype(losses.dtype))
    # Double where: an all-masked batch gives 0 and a zero (not NaN) gradient.
    empty = denom == 0
    return jnp.where(empty, 0, total / jnp.where(empty, 1, denom))
