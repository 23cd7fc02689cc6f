"""What the softmax losses and divergences share: the class axis, the row statistics,
and the residual policy.

Per example, every softmax kernel starts from two numbers, the row maximum ``m`` and
``sum_exp = sum_c exp(x_c - m)``; then ``log p_c = x_c - m - log(sum_exp)``. Half of
``-log p_c`` is computed as ``(m/2 - x_c/2) + log(sum_exp)/2``, which never overflows
even when the logits of one row span more than the float range, and which is a sum of
two non-negative numbers (no cancellation, even for logits of 1e30).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import _checks, _numerics

Axis = int | Sequence[int] | None


# --------------------------------------------------------------------------------------
# The class axis. Kernels reduce over one class axis; a tuple of axes is merged first.


def prepare_logits(logits, axis: Axis, fn: str, name: str = "logits"):
    """Checks the logits; returns them with their class axes (in the order given)."""
    logits = _checks.as_array(logits, name, fn)
    _checks.check_floating(logits, name, fn)
    _checks.check_rank(logits, name, fn)
    axes = _checks.canonicalize_axes(axis, tuple(logits.shape), name, fn)
    _checks.check_num_classes(tuple(logits.shape), axes, name, fn)
    return logits, axes


def prepare_labels(labels, logits, axes, axis, fn, name="logits", hint=""):
    """Integer labels of the per-example shape (``logits`` without the class axes),
    widened to int32 (an int8 iota would overflow past 127 classes), or an error
    naming both shapes."""
    labels = _checks.as_array(labels, "labels", fn)
    _checks.check_integer(labels, "labels", fn, hint)
    per_example = batch_shape(tuple(logits.shape), axes)
    if labels.shape != per_example:
        raise ValueError(
            f"{fn}: labels has shape {tuple(labels.shape)} but {name} "
            f"{tuple(logits.shape)} with axis={axis!r} need labels of shape {per_example}"
        )
    return labels.astype(jnp.int32) if labels.dtype.itemsize < 4 else labels


def batch_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """The per-example shape: ``shape`` without the class axes."""
    return tuple(s for a, s in enumerate(shape) if a not in axes)


def merge_class_axes(x: jax.Array, axes: tuple[int, ...]) -> tuple[jax.Array, int]:
    """``(x, axis)`` with one class axis: a tuple of axes is moved to the end and
    flattened in the order given (optax's convention); one axis stays where it is."""
    if len(axes) == 1:
        return x, axes[0]
    batch = tuple(a for a in range(x.ndim) if a not in axes)
    x = jnp.transpose(x, batch + axes)
    num_classes = math.prod(x.shape[len(batch) :])
    return x.reshape(x.shape[: len(batch)] + (num_classes,)), len(batch)


def along_classes(v: jax.Array, axis: int, ndim: int, dtype) -> jax.Array:
    """A ``[C]`` vector shaped to broadcast against ``[..., C, ...]`` at ``axis``."""
    return jnp.expand_dims(v.astype(dtype), tuple(range(1, ndim - axis)))


# --------------------------------------------------------------------------------------
# Classes split over shards. A kernel's ``axis_name`` says where the rest of each
# example's classes are: None (all here), a ``shard_map`` mesh axis (other devices), or
# a :class:`RowSplit` (the next rows of a 2-D view, ``jaxloss._long_rows``). Kernels
# combine their per-shard partial results with the four functions below only.


@dataclasses.dataclass(frozen=True)
class RowSplit:
    """Not a mesh axis: each example's ``C`` classes lie in ``parts`` consecutive rows
    of a ``[examples * parts, C / parts]`` view, shard ``j`` in row ``i * parts + j``.
    Per-example arrays are repeated ``parts`` times along their one axis to match."""

    parts: int
    # What each array argument of a kernel's rule holds ("classes": the logits' shape;
    # "example": one value per example, such as labels and the mask; anything else is
    # passed as it is), when the rule is given the arrays in their own shapes and makes
    # the view itself (:meth:`to_view`, called by ``_numerics.custom_rule``): reverse
    # mode then keeps the arrays as given, not reshaped copies. None: the arrays given
    # are already the view.
    roles: tuple[str, ...] | None = None

    def to_view(self, arrays: Sequence) -> tuple:
        """``arrays`` (None where absent) on the view, by :attr:`roles`
        (:func:`jaxloss._long_rows.to_view`, where the view's XLA:CPU specifics live)."""
        if self.roles is None:
            return tuple(arrays)
        from . import _long_rows  # the view's own module, which imports this one

        return _long_rows.to_view(self.parts, self.roles, arrays)

    def _groups(self, x: jax.Array) -> jax.Array:
        return x.reshape((x.shape[0] // self.parts, self.parts) + x.shape[1:])

    def combine(self, op, x: jax.Array) -> jax.Array:
        """``op`` over each example's rows, the result repeated on every one of them."""
        g = op(self._groups(x), axis=1, keepdims=True)
        return jnp.broadcast_to(g, self._groups(x).shape).reshape(x.shape)


def shard_sum(x, axis_name):
    """``psum`` of a pytree over the shards of the classes (identity for None)."""
    if axis_name is None:
        return x
    if isinstance(axis_name, RowSplit):
        return jax.tree.map(functools.partial(axis_name.combine, jnp.sum), x)
    return jax.lax.psum(x, axis_name)


def shard_max(x: jax.Array, axis_name) -> jax.Array:
    """``pmax`` over the shards of the classes (identity for None)."""
    if axis_name is None:
        return x
    if isinstance(axis_name, RowSplit):
        return axis_name.combine(jnp.max, x)
    return jax.lax.pmax(x, axis_name)


def shard_count(axis_name) -> int:
    """How many shards the classes are split into (1 for None)."""
    if axis_name is None:
        return 1
    if isinstance(axis_name, RowSplit):
        return axis_name.parts
    return jax.lax.axis_size(axis_name)


def shard_index(axis_name, like: jax.Array) -> jax.Array:
    """Which shard of the classes this is, broadcastable against the per-example
    array ``like`` (of the view's rows for a :class:`RowSplit`)."""
    if isinstance(axis_name, RowSplit):
        rows = jax.lax.broadcasted_iota(jnp.int32, like.shape[:1], 0) % axis_name.parts
        return rows.reshape(like.shape[:1] + (1,) * (like.ndim - 1))
    return jax.lax.axis_index(axis_name)


# --------------------------------------------------------------------------------------
# Row statistics.


class RowStats(NamedTuple):
    """Per-example statistics, with the class axis kept (size 1).

    ``row_max`` is the maximum logit, by default clamped to the finite range (the
    lowest float for a row of ``-inf``, the largest for a row holding ``+inf``, see
    :func:`row_max`); it is a constant under differentiation, since every formula is
    invariant to the shift.
    ``sum_exp`` is ``sum_c exp(x_c - row_max)``, in ``[1, C]`` for a valid row.
    Masked examples hold ``(0, 1)``.
    """

    row_max: jax.Array
    sum_exp: jax.Array

    @property
    def lse_rel(self) -> jax.Array:
        """``log sum_c exp(x_c - row_max)``, in ``[0, log C]``."""
        return jnp.log(self.sum_exp)

    @property
    def lse(self) -> jax.Array:
        """``log sum_c exp(x_c)``."""
        return self.row_max + self.lse_rel


def row_sum(x: jax.Array, axis: int, axis_name: str | RowSplit | None = None) -> jax.Array:
    """The sum over the classes (kept dims). With ``axis_name``, the classes are split
    over shards (a ``shard_map`` axis or a :class:`RowSplit`) and the local sums are
    added with one :func:`shard_sum`."""
    return shard_sum(jnp.sum(x, axis, keepdims=True), axis_name)


def row_max(
    logits: jax.Array,
    axis: int,
    dtype,
    axis_name: str | RowSplit | None = None,
    finite: bool = True,
) -> jax.Array:
    """The row maximum in ``dtype`` (kept dims), as a shift. Taken in the logits' own
    dtype, which is exact: the conversion to ``dtype`` is monotone. With
    ``axis_name``, the maximum over every shard of the classes (one ``pmax``).

    ``finite``: clamped to the finite range (:func:`finite_shift`), for the losses
    whose value or derivatives at a row of ``-inf`` or one holding ``+inf`` are not
    all NaN (integer labels, the divergences with selects, focal). False: the plain
    maximum, for the soft-target cross-entropy and forward KL, whose value and every
    derivative are NaN in such a row either way (``x - m`` is ``inf - inf`` there). It
    spares XLA:CPU a pass: the clamp kept the maximum and the ``exp`` in separate
    passes of ``vmap(grad)`` per-example gradients (512 x 1000: 0.91-0.93x the time
    without it; docs/performance.md)."""
    m = jax.lax.stop_gradient(jnp.max(logits, axis, keepdims=True).astype(dtype))
    m = shard_max(m, axis_name)
    return finite_shift(m) if finite else m


def finite_shift(m: jax.Array) -> jax.Array:
    """A row maximum clamped to the finite range, for the shift ``x - m``: a row of
    ``-inf`` logits shifts by the lowest float and a row holding ``+inf`` by the
    largest, so ``x - m`` is never ``inf - inf`` (NaN stays NaN). Every loss's value
    and derivatives are those of a shift of 0 there.

    Written ``-max(-max(m, -big), -big)``, per example: in a forward pass XLA:CPU
    keeps the row maximum in the same reduction as the exponentials after an
    elementwise maximum, but not after a select (``where(isfinite(m), m, 0)``) or a
    ``clamp``, which its simplifier makes of ``min(max(.))`` (docs/performance.md).
    Where the exponentials are written out for a gradient, any of them splits the
    maximum from the ``exp`` (``row_max(finite=False)``)."""
    big = _numerics.largest(m.dtype)
    return -jnp.maximum(-jnp.maximum(m, -big), -big)


def forward_row_stats(axis, logits, mask, axis_name=None, finite=True):
    """:class:`RowStats` without a derivative rule, for forward passes (which custom
    rules never differentiate); ``finite``: see :func:`row_max`."""
    dtype = _numerics.compute_dtype(logits)
    m = row_max(logits, axis, dtype, axis_name, finite)
    s = row_sum(jnp.exp(logits.astype(dtype) - m), axis, axis_name)
    mask_c = _numerics.expand(mask, axis)
    return RowStats(_numerics.mask_rows(m, mask_c), _numerics.mask_rows(s, mask_c, 1))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 3, 4))
def row_stats(
    axis: int,
    logits: jax.Array,
    mask: jax.Array | None,
    axis_name: str | RowSplit | None = None,
    finite: bool = True,
) -> RowStats:
    """:class:`RowStats` of ``logits`` along ``axis``, masked rows ``(0, 1)``; with
    ``axis_name``, of the whole row when the classes are split over that axis;
    ``finite``: see :func:`row_max`.

    Its own derivative rule (``d sum_exp = sum_c exp(x_c - m) dx_c``) reads sanitized
    logits, so that higher-order derivatives of the losses built on it stay finite for
    masked rows holding NaN or inf.
    """
    return forward_row_stats(axis, logits, mask, axis_name, finite)


def _row_stats_tangent(axis, axis_name, logits, mask, stats, d_logits):
    x = sanitized_logits(logits, mask, axis)
    d = _numerics.mask_rows(d_logits.astype(x.dtype), _numerics.expand(mask, axis))
    return row_sum(jnp.exp(x - stats.row_max) * d, axis, axis_name)


@row_stats.defjvp
def _row_stats_jvp(axis, axis_name, finite, primals, tangents):
    logits, mask = primals
    stats = row_stats(axis, logits, mask, axis_name, finite)
    d_logits = _numerics.nonzero(tangents[0])
    if d_logits is None:
        return stats, RowStats(*map(jnp.zeros_like, stats))
    d_sum = jax.checkpoint(functools.partial(_row_stats_tangent, axis, axis_name))(
        logits, mask, stats, d_logits
    )
    return stats, RowStats(jnp.zeros_like(stats.row_max), d_sum)


def sanitized_logits(logits: jax.Array, mask: jax.Array | None, axis: int) -> jax.Array:
    """The logits in the compute dtype, masked rows replaced by 0 (for rules)."""
    x = logits.astype(_numerics.compute_dtype(logits))
    return _numerics.mask_rows(x, _numerics.expand(mask, axis))


def softmax(x: jax.Array, stats: RowStats, keep_in=None) -> jax.Array:
    """``p_c = exp(x_c - m) / sum_exp``: the same ``exp(x_c - m)`` as the forward
    pass's, so that XLA computes it once when the softmax is kept.

    ``keep_in``: the dtype a kept softmax is stored in (``residuals="softmax"``). For
    16-bit logits it is their own dtype: the kept array is then no larger than the
    logits, and its rounding (2**-9 relative) is that of the 16-bit gradient anyway.
    """
    p = jnp.exp(x - stats.row_max) / stats.sum_exp
    if keep_in is not None and jnp.dtype(keep_in).itemsize < p.dtype.itemsize:
        return _numerics.keep(p.astype(keep_in)).astype(p.dtype)
    return _numerics.keep(p)


def half_nll(x: jax.Array, stats: RowStats) -> jax.Array:
    """``-log(p_c) / 2 = (m/2 - x_c/2) + log(sum_exp)/2``: never overflows, ``+inf``
    only at a ``-inf`` logit. Halving is exact, so ``2 * half_nll`` is ``-log p``
    wherever that is representable."""
    return (stats.row_max / 2 - x / 2) + stats.lse_rel / 2


# --------------------------------------------------------------------------------------
# Integer labels.


def num_classes(x: jax.Array, axis: int, axis_name: str | RowSplit | None = None) -> int:
    """The number of classes: the class axis's length, times the number of shards when
    the classes are split over the ``shard_map`` axis ``axis_name``."""
    return x.shape[axis] * shard_count(axis_name)


def shard_labels(labels: jax.Array, num_local: int, axis_name: str | RowSplit | None):
    """``(local labels, inside)``: global labels as indices into this device's
    contiguous shard of ``num_local`` classes along ``axis_name``, -1 where the shard
    does not hold the label (no class matches it), and whether it does. Without
    ``axis_name``: the labels and None (every class is local)."""
    if axis_name is None:
        return labels, None
    y = labels - shard_index(axis_name, labels).astype(labels.dtype) * num_local
    inside = (y >= 0) & (y < num_local)
    return jnp.where(inside, y, -1), inside


def labels_ok(labels: jax.Array, num_classes: int, axis: int) -> jax.Array:
    """Whether each label is in ``[0, C)`` (class axis kept)."""
    labels = jnp.expand_dims(labels, axis)
    return (labels >= 0) & (labels < num_classes)


def safe_labels(labels: jax.Array, num_classes: int, axis: int) -> jax.Array:
    """Labels with the class axis kept; one outside ``[0, C)`` reads class 0 (its
    result is replaced by NaN), never another class."""
    labels = jnp.expand_dims(labels, axis)
    return jnp.where((labels >= 0) & (labels < num_classes), labels, 0)


def class_axis_sharded(x: jax.Array, axis: int) -> bool:
    """Whether ``x``'s class axis is split over an explicit mesh axis (under
    ``jax.set_mesh`` with ``AxisType.Explicit``), where a gather along it has no
    sharding rule."""
    spec = getattr(getattr(jax.typeof(x), "sharding", None), "spec", None)
    return spec is not None and len(spec) > axis and spec[axis] is not None


def take(values: jax.Array, index: jax.Array) -> jax.Array:
    """``values[index]`` for a small replicated table (class weights) and per-example
    indices; under an explicit mesh the result takes the indices' sharding."""
    spec = getattr(getattr(jax.typeof(index), "sharding", None), "spec", None)
    if spec is not None and any(s is not None for s in spec):
        return values.at[index].get(out_sharding=jax.typeof(index).sharding)
    return jnp.take(values, index)


def take_label(x: jax.Array, labels: jax.Array, axis: int) -> jax.Array:
    """``x_{y}`` per example (class axis kept), for in-range labels.

    A gather, except when the class axis is explicitly sharded: then a masked sum
    over the classes, which the compiler splits into local sums and one all-reduce
    of one number per example (docs/performance.md)."""
    if class_axis_sharded(x, axis):
        classes = jax.lax.broadcasted_iota(jnp.int32, x.shape, axis)
        hit = classes == jnp.expand_dims(labels.astype(jnp.int32), axis)
        return jnp.sum(jnp.where(hit, x, jnp.zeros((), x.dtype)), axis, keepdims=True)
    return jnp.take_along_axis(x, safe_labels(labels, x.shape[axis], axis), axis)


def targets_ok(targets: jax.Array, axis: int, axis_name, total: jax.Array | None) -> jax.Array:
    """Per example (class axis kept): whether every target of the row, on every shard
    of the classes, is in ``[0, 1]`` (:func:`poison_targets`'s statistic), for
    derivative rules. False for a NaN target too, which the row's minimum and maximum
    skip on XLA:CPU (see ``_numerics.at_least``): ``total``, a row sum over the classes (every
    shard) of an array that holds the targets' NaN, carries it. Cross-entropy and KL
    pass the sum their gradient takes anyway; summing the raw targets again cost a
    logits-sized float32 copy of 16-bit targets (KL, bfloat16 256 x 4096: 12.6
    against 8.4 MB). Reverse KL, JS and focal sum their targets for it in the target
    derivative only. None: a forward pass, whose terms carry a NaN target themselves."""
    poison = _targets_poison(targets, axis, axis_name)
    if total is not None:
        poison = poison + 0 * total.astype(poison.dtype)
    return poison == 0


def _targets_poison(targets: jax.Array, axis: int, axis_name) -> jax.Array:
    """0 per example where every target is in ``[0, 1]`` on every shard, NaN elsewhere
    (:func:`jaxloss._numerics.unit_poison`, added over the shards)."""
    return shard_sum(_numerics.unit_poison(targets, axis), axis_name)


def row_poison(stats: RowStats) -> jax.Array:
    """0 per example (class axis kept), NaN where the row's statistics are: a NaN
    logit (the sum of exponentials), a bad target (:func:`poison_targets`), a row of
    ``-inf`` or one holding ``+inf`` (``log sum_exp`` infinite). Added to a forward
    pass's terms, it carries NaN there even where their ``0 * inf = 0`` guard
    (``_numerics.times``, a minimum) lost it on XLA:CPU. Added to each term, not to
    the row's sum: after the sum it split XLA:CPU's one fused reduction of the soft-
    target forward (8192 x 1000: 1.5x the time; per term: 1.03x)."""
    return 0 * (stats.row_max + stats.lse_rel)


def poison_targets(stats: RowStats, targets: jax.Array, axis: int, axis_name) -> RowStats:
    """``stats`` with a NaN ``row_max`` in the examples whose targets leave ``[0, 1]``
    on any shard of the classes (:func:`jaxloss._numerics.unit_poison`), for forward
    passes: a loss read from them is NaN there. A select on the summed loss would do
    the same, but XLA:CPU then reads the targets in a pass of their own (soft-target
    cross-entropy forward, docs/performance.md)."""
    poison = _targets_poison(targets, axis, axis_name)
    return stats._replace(row_max=stats.row_max + poison.astype(stats.row_max.dtype))


def label_terms(logits, labels, weights, axis: int, axis_name, dtype):
    """``(x_y, w_y)`` per example (class axis kept), in ``dtype``: the label's logit
    and its class weight (1 without ``weights``). With ``axis_name``, read on the
    shard that holds the label (``weights`` is that shard's) and shared with the
    others in one :func:`shard_sum`."""
    y, inside = shard_labels(labels, logits.shape[axis], axis_name)
    x_y = take_label(logits, y, axis).astype(dtype)
    w_y = label_weight(weights, y, axis, dtype)
    if inside is None:
        return x_y, w_y
    inside = jnp.expand_dims(inside, axis)
    if weights is None:
        return shard_sum(jnp.where(inside, x_y, 0), axis_name), w_y
    return shard_sum((jnp.where(inside, x_y, 0), jnp.where(inside, w_y, 0)), axis_name)


def one_hot(labels: jax.Array, shape, axis: int, dtype) -> jax.Array:
    """``[c == y]`` broadcast to ``shape`` (for derivative rules)."""
    classes = jax.lax.broadcasted_iota(labels.dtype, shape, axis)
    return (classes == jnp.expand_dims(labels, axis)).astype(dtype)


def label_weight(class_weights, labels, axis, dtype):
    """``w_{y_i}`` per example (class axis kept); 1 without class weights."""
    if class_weights is None:
        return jnp.ones((), dtype)
    safe = safe_labels(labels, class_weights.shape[0], axis)
    return take(class_weights.astype(dtype), safe)


def check_labels(fn, labels, mask, num_classes, ignore_index):
    """Checked mode: raise naming the first label outside [0, C)."""
    bad = (labels < 0) | (labels >= num_classes)
    if mask is not None:
        bad = bad & mask
    _checks.check_values(
        fn,
        "label",
        labels,
        bad,
        f"is outside [0, {num_classes}) and is not ignore_index={ignore_index}",
    )


# --------------------------------------------------------------------------------------
# What reverse mode keeps.

# On XLA:CPU, recomputing the softmax in the backward pass costs a second exp per
# element, which dominates at shapes up to ~16M logits; beyond that, writing and
# reading a kept softmax costs more than the exp (docs/performance.md, the grid).
KEEP_SOFTMAX_MAX_ELEMENTS = 2**24


def keep_softmax(residuals: str, logits: jax.Array) -> bool:
    """Whether reverse mode keeps the softmax (``residuals="softmax"``) or only the
    inputs and two numbers per example (``"lse"``). ``"auto"`` keeps it on CPU for
    logits of at most ``KEEP_SOFTMAX_MAX_ELEMENTS`` elements, where that is measured
    to be faster, and recomputes it everywhere else (``docs/performance.md``). A kept
    softmax is stored in the logits' dtype when that is 16-bit (see :func:`softmax`)."""
    if residuals == "auto":
        return jax.default_backend() == "cpu" and logits.size <= KEEP_SOFTMAX_MAX_ELEMENTS
    return residuals == "softmax"
