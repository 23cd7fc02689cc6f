"""How every kernel computes: working dtypes, the derivative-rule mechanism, and the
small NaN-safe pieces the kernels share.

Two habits run through the kernels, each for a measured reason:

* Forward passes over the class axis are written in plain arithmetic (no ``where``,
  no comparisons), with the helpers below. XLA:CPU fuses arithmetic into its reduction
  kernels but writes a select or a comparison out to memory first, a temporary the
  size of the logits (``docs/performance.md``). On GPU and TPU both forms fuse.
* Derivative rules sanitize their inputs (masked rows, ``-inf`` logits) with the
  double-``where`` pattern before any unsafe operation, so that every derivative of
  every order stays finite. They run in the backward pass, where a select is fused
  into the elementwise kernel that writes the gradient anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name
from jax.custom_derivatives import SymbolicZero


def compute_dtype(x: jax.Array) -> jnp.dtype:
    """bfloat16/float16 are computed in float32; float32 and float64 stay as they are."""
    dtype = jnp.dtype(x.dtype)
    if not jnp.issubdtype(dtype, jnp.floating) or dtype.itemsize < 4:
        return jnp.dtype(jnp.float32)
    return dtype


def nonzero(tangent):
    """A ``custom_jvp`` tangent, or None when it is a symbolic zero or has no tangent
    space (integer and boolean inputs)."""
    if tangent is None or isinstance(tangent, SymbolicZero):
        return None
    if tangent.dtype == jax.dtypes.float0:
        return None
    return tangent


SOFTMAX = "jaxloss_softmax"
KEEP_SOFTMAX = jax.checkpoint_policies.save_only_these_names(SOFTMAX)


def keep(x: jax.Array) -> jax.Array:
    """Names ``x`` as the array a rule with ``remat=False`` keeps for reverse mode."""
    return checkpoint_name(x, SOFTMAX)


def custom_rule(
    value_fn: Callable[..., jax.Array],
    tangent_fn: Callable[..., jax.Array],
    stats_fn: Callable[..., Any] | None = None,
) -> Callable[..., jax.Array]:
    """A ``jax.custom_jvp`` function from a forward pass and a hand-written tangent.

    Every function takes a static, hashable ``config`` first, then the array
    arguments (None where an optional array is absent):

    * ``value_fn(config, *arrays)`` is the forward pass;
    * ``stats_fn(config, *arrays)`` (optional) returns the per-example statistics the
      tangent reuses, a NamedTuple computed by functions with derivative rules of
      their own (such as :func:`jaxloss._softmax.row_stats`);
    * ``tangent_fn(config, *arrays, value, stats, *tangents)`` is the linear map, where
      a tangent is None when that input is not being differentiated.

    The rule calls the function itself (on the view: the same function on the
    view's arrays) for its value, so derivatives of every order only ever
    differentiate hand-written tangents, never the forward pass.

    A kernel whose ``config.axis_name`` is a ``_softmax.RowSplit`` with ``roles`` (the
    long-rows view of XLA:CPU) is given its arrays in their own shapes; the rule makes
    the view once for the value and the statistics and again inside the checkpointed
    tangent, so that reverse mode keeps the arrays as given. Under ``jit`` the
    backward pass then recomputes the view's ``exp`` even where the softmax is kept
    (measured faster at 64 x 128256, docs/performance.md); across a forward/backward
    split the kept softmax is still saved. A second-order derivative passes a zero
    tangent for every array of the view through its barrier (JAX instantiates them):
    correct, and no logits-sized memory at the sizes measured.

    ``config.remat`` chooses what reverse mode keeps. The tangent runs under
    ``jax.checkpoint``. True (the default): only its inputs (the arrays and the small
    statistics) are kept and the backward pass recomputes the rest, such as the
    softmax. False: the one array named ``SOFTMAX`` (with :func:`keep`) is kept
    too, so the backward pass need not recompute its ``exp``: faster where that
    recomputation is the bottleneck (``docs/performance.md``).
    """

    def make(views: bool):
        """The custom-JVP function; ``views``: it is given the arrays in their own
        shapes and makes the kernel's view (``_view``) itself."""

        def viewed(config, arrays):
            return _view(config, arrays) if views else tuple(arrays)

        @functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
        def fn(config, *arrays):
            return value_fn(config, *viewed(config, arrays))

        def rule(config, primals, tangents):
            on_view = viewed(config, primals)  # one view for the value and the stats
            value = (on_the_view if views else fn)(config, *on_view)
            tangents = tuple(map(nonzero, tangents))
            if all(t is None for t in tangents):
                return value, jnp.zeros_like(value)
            stats = None if stats_fn is None else stats_fn(config, *on_view)
            n = len(primals)

            def tangent(*args):  # with ``views`` the view is made again inside, so
                # that reverse mode keeps the arrays as given, not the view's copies
                rest = args[n : n + 2]
                return tangent_fn(
                    config, *viewed(config, args[:n]), *rest, *viewed(config, args[n + 2 :])
                )

            policy = None if getattr(config, "remat", True) else KEEP_SOFTMAX
            tangent = jax.checkpoint(tangent, policy=policy)
            return value, tangent(*primals, value, stats, *tangents)

        fn.defjvp(rule, symbolic_zeros=True)
        return fn

    on_the_view = make(views=False)
    making_the_view = make(views=True)

    def dispatch(config, *arrays):
        return (making_the_view if _makes_view(config) else on_the_view)(config, *arrays)

    return dispatch


def _makes_view(config) -> bool:
    """Whether the kernel is given its arrays in their own shapes and computes on a
    view of them (``_softmax.RowSplit.to_view``, the long-rows view of XLA:CPU)."""
    return getattr(getattr(config, "axis_name", None), "roles", None) is not None


def _view(config, arrays: tuple) -> tuple:
    """``arrays`` on the kernel's view (``_softmax.RowSplit.to_view``)."""
    return config.axis_name.to_view(arrays)


# --------------------------------------------------------------------------------------
# Masks.


def expand(v: jax.Array | None, axis: int) -> jax.Array | None:
    """A per-example array with the class axis put back (size 1); None stays None."""
    return None if v is None else jnp.expand_dims(v, axis)


def mask_rows(x: jax.Array, mask: jax.Array | None, fill: Any = 0) -> jax.Array:
    """``x`` with masked entries replaced by ``fill``: before any unsafe operation in a
    derivative rule, or on a per-example result."""
    return x if mask is None else jnp.where(mask, x, fill)


# --------------------------------------------------------------------------------------
# Select-free pieces for forward passes.


def largest(dtype) -> float:
    return float(jnp.finfo(dtype).max)


# NaN and XLA:CPU's minimum and maximum. HLO's minimum and maximum propagate NaN, and
# so do XLA:GPU and XLA:CPU's own emitters, but XLA:CPU's YNNPACK fusions (jaxlib 0.10,
# arrays of about 4096 elements and more) follow x86: ``minimum(NaN, b)`` is ``b``, and
# a row maximum skips a NaN. So a clamp must not be what carries a NaN to the loss:
# * in a forward pass over the class axis, where a select would cost a logits-sized
#   temporary (docs/performance.md), the clamp stays arithmetic and the NaN reaches the
#   row's terms through a row statistic instead (``_softmax.row_poison``: a NaN logit
#   makes the sum of exponentials NaN, a bad target the poisoned row maximum);
# * elsewhere (derivative rules, elementwise losses), a compare-and-select clamp
#   (:func:`at_least`) keeps NaN on every backend, since a NaN fails every comparison.


def at_least(x: jax.Array, bound) -> jax.Array:
    """``max(x, bound)``, NaN kept."""
    return jnp.where(x < bound, bound, x)


def times(weight: jax.Array, value: jax.Array) -> jax.Array:
    """``weight * value`` with ``0 * inf = 0``: a term of weight 0 adds nothing, a term
    of positive weight keeps an infinite value, in plain arithmetic.

    ``weight`` is ``>= 0`` or NaN: callers make invalid weights NaN first
    (:func:`valid_weights`, the target checks); a negative weight gives no meaningful
    product. ``value`` (``>= 0`` or ``+inf``) is capped at the largest float where the
    weight is 0, and left alone where it is positive:
    ``min(value, largest * (1 + ceil(weight)))``, whose bound overflows to ``inf``
    exactly when ``weight > 0`` (``ceil`` is at least 1 there, and 0 at ``+-0``;
    XLA:CPU flushes subnormal weights to 0, with ``sign`` as with ``ceil``).

    A NaN ``value`` can come out as the bound on XLA:CPU (see above): a loss summed
    from these terms adds its row's :func:`jaxloss._softmax.row_poison` to them.

    ``ceil`` rather than ``sign``, which is as exact: XLA:CPU ran the sign of
    converted 16-bit weights slowly inside its fused reduction (soft targets, bfloat16
    8192 x 1000, forward: 4.1 against 6.8 ms; float32 unchanged; docs/performance.md).
    """
    bound = largest(value.dtype) * (1 + jnp.ceil(weight))
    return weight * jnp.minimum(value, bound)


def unweighted_zero(s: jax.Array, values: jax.Array) -> jax.Array:
    """``values`` with an infinite value of weight ``s == 0`` made 0, so that
    ``s * unweighted_zero(s, values)`` adds nothing for it, as ``where`` would (a NaN
    value stays NaN), and its derivative in ``s`` there is 0."""
    return jnp.where((s == 0) & jnp.isinf(values), 0, values)


def nan_outside_unit(z: jax.Array) -> jax.Array:
    """0 where ``0 <= z <= 1``, NaN elsewhere (and for NaN): add it to a term to make
    an out-of-range probability or label poison that term, in plain arithmetic."""
    return 0 * jnp.sqrt(jax.lax.stop_gradient(z * (1 - z)))


def unit_excess(t: jax.Array, axis: int) -> jax.Array:
    """Per example (class axis kept): ``max(-min_c t_c, max_c t_c - 1)``, which is
    ``<= 0`` exactly when every ``t_c`` is in ``[0, 1]`` (the row's extremes in
    ``t``'s own dtype, then float32, which keeps their order). A NaN target is not
    seen here on XLA:CPU, whose YNNPACK reductions skip NaN (see :func:`at_least`): a
    forward pass's terms carry it (``t * ...``), and derivative rules test for it with
    :func:`jaxloss._softmax.targets_ok`. Two plain reductions; a two-output
    ``lax.reduce`` (one read) would be a pass of its own (docs/performance.md). No
    derivative flows through it."""
    t = jax.lax.stop_gradient(t)
    lo = jnp.min(t, axis, keepdims=True).astype(jnp.float32)
    hi = jnp.max(t, axis, keepdims=True).astype(jnp.float32)
    return jnp.maximum(-lo, hi - 1)


def unit_rows(t: jax.Array, axis: int) -> jax.Array:
    """Per example (class axis kept): whether every ``t_c`` is in ``[0, 1]`` (False
    for a NaN)."""
    return unit_excess(t, axis) <= 0


def unit_poison(t: jax.Array, axis: int) -> jax.Array:
    """Per example (class axis kept): 0 where every ``t_c`` is in ``[0, 1]``, NaN
    elsewhere (``0 * sqrt(-excess)``). Added to a row statistic that the loss's pass
    reads, it makes the row's loss NaN with no select after the sums: the check then
    shares the loss's pass over the targets (docs/performance.md)."""
    return 0 * jnp.sqrt(-unit_excess(t, axis))


def nan_where_not(ok: jax.Array | None, x: jax.Array) -> jax.Array:
    """``x`` where ``ok``, NaN elsewhere (a per-example select); ``ok`` None: all."""
    return x if ok is None else jnp.where(ok, x, jnp.nan)


def nan_at(v: jax.Array) -> jax.Array:
    """``1 + 0 v``: 1 where ``v`` is finite, NaN where it is NaN or infinite. A factor
    that carries an invalid weight or label (already made NaN) into the coefficient of
    a derivative rule, so that reverse mode's gradient is NaN there too."""
    return 1 + 0 * v


def nan_if_negative(w: jax.Array) -> jax.Array:
    """``w`` where it is finite and ``>= 0``, NaN elsewhere, in plain arithmetic. A
    factor, not a select: its derivative is NaN there too (1 elsewhere), so that
    reverse mode's gradient of an invalid weight is NaN, not a finite number."""
    return w * (1 + 0 * jnp.sqrt(jax.lax.stop_gradient(w)))


@jax.custom_jvp
def divide(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x / y`` whose derivative in ``y`` is ``-(x / y) / y``. Plain division's is
    ``-x / y**2``, and ``y**2`` leaves the float range where ``y`` itself is far
    inside it (float32: ``y`` above about 1.8e19 or below 1e-19, as the sum of the
    weights of a ``"mean"`` can be): the derivative was then 0, +-inf or NaN instead of
    ``-(x / y) / y``, which is representable whenever the quotient is."""
    return x / y


@divide.defjvp
def _divide_jvp(primals, tangents):
    (x, y), (dx, dy) = primals, tangents
    q = divide(x, y)
    return q, divide(dx - q * dy, y)


def power_of_two_below(largest: jax.Array) -> jax.Array:
    """The power of two that brings ``largest`` into ``[0.5, 1)`` (1 where it is 0 or
    NaN), in ``largest``'s dtype, capped 4 binades inside that dtype's normal range so
    that it is a normal number itself. Multiplying by it is exact: for weights whose
    ratio is what counts, such as a weighted mean's, it keeps products and sums of them
    (``1e20 * 1e20``, ``1e-20 * 1e-20`` in float32) inside the float range. A constant
    to derivatives, which is exact for such a ratio. Give it a float32 or wider
    ``largest``: a float16 one could only move by 2**10."""
    info = jnp.finfo(largest.dtype)
    _, exponent = jnp.frexp(jax.lax.stop_gradient(largest))
    exponent = jnp.clip(exponent, 5 - info.maxexp, -info.minexp - 4)
    return jnp.ldexp(jnp.ones((), largest.dtype), -exponent)


def valid_weights(w: jax.Array | None, upper: float | None = None) -> jax.Array | None:
    """Weights with every entry that is negative, not finite or above ``upper`` made
    NaN, so that whatever they touch is NaN (a select: for small arrays). A factor of
    1 or NaN, so that their derivatives are NaN there too (see :func:`nan_if_negative`)."""
    if w is None:
        return None
    ok = jnp.isfinite(w) & (w >= 0)
    if upper is not None:
        ok = ok & (w <= upper)
    return w * jnp.where(ok, 1, jnp.nan).astype(w.dtype)


def xlogx(t: jax.Array) -> jax.Array:
    """``t log t`` with ``0 log 0 = 0`` (``log`` of values below the smallest normal
    float read as its log; their product is below 1e-36)."""
    return t * jnp.log(jnp.maximum(t, jnp.finfo(t.dtype).tiny))  # a NaN t: NaN


def safe_log(x: jax.Array) -> jax.Array:
    """``log(x)`` with ``log 0`` read as the log of the smallest normal number, so that
    gradients stay finite at zero probabilities (like PyTorch's clamped logs)."""
    return jnp.log(at_least(x, jnp.finfo(x.dtype).tiny))
