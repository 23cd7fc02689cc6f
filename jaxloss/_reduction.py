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

import functools

import jax
import jax.numpy as jnp


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


@functools.partial(jax.checkpoint, static_argnums=(3, 4))
def soft_example_weights(
    mask: jax.Array | None,
    targets: jax.Array,
    class_weights: jax.Array | None,
    axis: int,
    dtype: jnp.dtype,
) -> jax.Array | None:
    """``w_i`` for soft targets: ``sum_c class_weights[c] t_ic`` (1 without).

    Checkpointed, so reverse mode keeps the targets themselves rather than a masked
    ``[..., C]`` copy of them.
    """
    if class_weights is None:
        return count_weights(mask, dtype)
    t = targets.astype(dtype)
    if mask is not None:  # NaN targets in masked rows must not leak
        t = jnp.where(jnp.expand_dims(mask, axis), t, 0)
    cw = jnp.expand_dims(class_weights.astype(dtype), range(1, targets.ndim - axis))
    w = jnp.sum(t * cw, axis)
    return w if mask is None else jnp.where(mask, w, 0)


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
