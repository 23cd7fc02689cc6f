"""What the softmax losses and divergences share: the class axis and row statistics.

Each kernel works on one class axis (a tuple of axes is merged by the public wrapper)
and computes, per example, the row maximum ``m`` and ``lse_rel = log sum_c exp(x_c - m)``
with one fused reduction each.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from . import _checks

Axis = int | Sequence[int] | None


def along_classes(v: jax.Array, axis: int, ndim: int, dtype) -> jax.Array:
    """A ``[C]`` vector shaped to broadcast against ``[..., C, ...]`` at ``axis``."""
    return jnp.expand_dims(v.astype(dtype), tuple(range(1, ndim - axis)))


def row_max(logits: jax.Array, axis: int, dtype) -> jax.Array:
    """The row maximum (kept dims) in ``dtype``, 0 for a row without a finite maximum;
    constant under differentiation (every formula below is invariant to the shift).

    Taken in the logits' own dtype (exact: the conversion is monotone), because
    XLA:CPU does not fuse a conversion into a max reduction and would write a
    converted copy of the logits out first.
    """
    m = jnp.max(logits, axis, keepdims=True).astype(dtype)
    return jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0))


def log_sum_exp_rel(x: jax.Array, m: jax.Array, axis: int) -> jax.Array:
    """``log sum_c exp(x_c - m)`` (kept dims)."""
    return jnp.log(jnp.sum(jnp.exp(x - m), axis, keepdims=True))


def barrier(m):
    """A copy of ``m`` (an array or a tuple of them) that XLA cannot identify with
    ``m``: a second reduction over ``x - barrier(m)`` then does not share (and write
    out) ``x - m`` with the first; a reduction over ``barrier(x).astype(f32)`` gets a
    conversion of its own."""
    return jax.lax.optimization_barrier(m)


def sparse_labels(labels, num_classes, axis):
    """``(labels_ok, safe_labels)`` with the class axis kept: a label outside
    ``[0, C)`` is not ok and reads class 0 (its result is replaced by NaN)."""
    labels = jnp.expand_dims(labels, axis)
    ok = (labels >= 0) & (labels < num_classes)
    return ok, jnp.where(ok, labels, 0)


def label_weight(class_weights, safe_labels, dtype):
    """``w_{y_i}`` per example (1 without class weights)."""
    if class_weights is None:
        return jnp.ones(safe_labels.shape, dtype)
    return jnp.take(class_weights.astype(dtype), safe_labels)


def check_labels(fn, labels, mask, num_classes, ignore_index):
    """Checked mode: raise naming the first label outside [0, C)."""
    bad = (labels < 0) | (labels >= num_classes)
    if mask is not None:
        bad = bad & mask
    if not bad.size:
        return
    first = jnp.argmax(bad.ravel())
    _checks.check(
        ~jnp.any(bad),
        f"{fn}: label {{label}} (at flat index {{index}}) is outside "
        f"[0, {num_classes}) and is not ignore_index={ignore_index}",
        label=labels.ravel()[first],
        index=first,
    )


def flatten_class_axes(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """Moves the class axes to the end and merges them into one."""
    batch = tuple(a for a in range(x.ndim) if a not in axes)
    if axes != tuple(range(x.ndim - len(axes), x.ndim)):
        x = jnp.transpose(x, batch + axes)
    return x.reshape(tuple(x.shape[: len(batch)]) + (-1,))


def prepare_logits(logits, axis: Axis, fn: str, name: str = "logits"):
    """Checks the logits and returns them with their sorted class axes."""
    logits = _checks.as_array(logits, name, fn)
    _checks.check_floating(logits, name, fn)
    _checks.check_rank(logits, name, fn)
    return logits, _checks.canonicalize_axes(axis, logits.ndim, name, fn)


def single_axis(x: jax.Array, axes: tuple[int, ...]) -> tuple[jax.Array, int]:
    """``(x, axis)`` with one class axis, merging a tuple of axes."""
    if len(axes) == 1:
        return x, axes[0]
    return flatten_class_axes(x, axes), x.ndim - len(axes)


def batch_shape(x: jax.Array, axis: int) -> tuple[int, ...]:
    return tuple(x.shape[:axis] + x.shape[axis + 1 :])


def check_same_shape(fn: str, logits, other, name: str, hint: str = ""):
    """``other`` as an array of the logits' shape, or a ValueError naming both."""
    other = _checks.as_array(other, name, fn)
    if other.shape != logits.shape:
        raise ValueError(
            f"{fn}: {name} has shape {tuple(other.shape)} but logits have shape "
            f"{tuple(logits.shape)}; {name} needs the logits' shape{hint}"
        )
    return other
