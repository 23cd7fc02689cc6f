"""How every kernel computes: working dtypes, tangents, and NaN-safe pieces."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero


def compute_dtype(x: jax.Array) -> jnp.dtype:
    """bfloat16/float16 are computed in float32; float32 and float64 stay as they are."""
    dtype = jnp.dtype(x.dtype)
    return dtype if dtype.itemsize >= 4 else jnp.dtype(jnp.float32)


def nonzero(tangent):
    """A ``custom_jvp`` tangent, or None when it is a symbolic zero or has no tangent
    space (integer and boolean inputs)."""
    if tangent is None or isinstance(tangent, SymbolicZero):
        return None
    if tangent.dtype == jax.dtypes.float0:
        return None
    return tangent


def expand(v: jax.Array | None, axis: int) -> jax.Array | None:
    """A per-example array with the class axis put back (size 1); None stays None."""
    return None if v is None else jnp.expand_dims(v, axis)


def mask_rows(x: jax.Array, mask_c: jax.Array | None, fill=0) -> jax.Array:
    """``x`` with masked examples' rows replaced by ``fill`` (before any unsafe op)."""
    return x if mask_c is None else jnp.where(mask_c, x, fill)


def clamp_low(x: jax.Array) -> jax.Array:
    """``x`` with ``-inf`` raised to the most negative finite number, so that
    ``0 * x`` is 0. A ``maximum`` rather than a select: XLA:CPU fuses it into a
    reduction, where it would write a select out to memory first."""
    return jnp.maximum(x, jnp.finfo(x.dtype).min)


def safe_log(x: jax.Array) -> jax.Array:
    """``log(x)`` with ``log 0`` read as the log of the smallest normal number, so that
    gradients stay finite at zero probabilities (like PyTorch's clamped logs)."""
    return jnp.log(jnp.maximum(x, jnp.finfo(x.dtype).tiny))
