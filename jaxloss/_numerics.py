"""How every kernel computes: working dtypes, tangents, and NaN-safe pieces."""

from __future__ import annotations

import functools

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


def custom_rule(forward, tangent, num_static: int):
    """A ``jax.custom_jvp`` function from a forward pass and a hand-written tangent.

    ``forward(*static, *arrays) -> (value, stats)`` computes the value and the small
    per-example statistics the rule needs; ``tangent(*static, *arrays, *stats,
    *tangents) -> d value`` is the linear map, where a tangent is None when that input
    is not being differentiated (a symbolic zero, or an integer input). The tangent runs
    under ``jax.checkpoint``, so reverse mode keeps only its inputs (the arrays and the
    stats) and recomputes everything else in the backward pass; being a ``custom_jvp``,
    forward mode and higher orders work too (they differentiate ``tangent`` itself).
    """

    @functools.partial(jax.custom_jvp, nondiff_argnums=tuple(range(num_static)))
    def fn(*args):
        return forward(*args)[0]

    def rule(*args):
        static, primals, tangents = args[:num_static], args[-2], args[-1]
        tangents = tuple(map(nonzero, tangents))
        value, stats = forward(*static, *primals)
        if all(t is None for t in tangents):
            return value, jnp.zeros_like(value)
        linear = jax.checkpoint(functools.partial(tangent, *static))
        return value, linear(*primals, *stats, *tangents)

    fn.defjvp(rule, symbolic_zeros=True)
    return fn
