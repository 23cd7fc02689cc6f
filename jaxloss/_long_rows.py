"""XLA:CPU only: a long row of classes is computed as several short rows.

On XLA:CPU the reductions over the class axis (the row maximum, the sum of
exponentials, the weighted sum of ``-log p``) run as YNNPACK fusions, which are fast for
rows of up to 32768 classes and several times slower beyond. Measured on the project's
2-core CPU (jax 0.10.2), forward pass of the soft-target cross-entropy, float32:

=================  ====================  ===============================
logits             one row per example   rows of ``C / parts`` classes
=================  ====================  ===============================
256 x 50257        59 ms                 15 ms (``parts`` = 29)
1024 x 50264       414 ms                52 ms (8)
64 x 128256        19 ms                 8.5 ms (4)
2048 x 32768       73 ms                 70 ms (4: no gain at 32768)
=================  ====================  ===============================

So where the class axis is the last one and holds more than ``MAX_ROW`` classes, a
kernel runs on the view ``[examples * parts, C / parts]`` (a reshape, no copy): each
example's classes lie in ``parts`` consecutive rows, which the kernel treats as shards
of the classes (``_softmax.RowSplit``, the same code as ``axis_name`` inside
``shard_map``). Values and derivatives are those of the one-row computation up to
rounding: only the order of the additions changes. ``benchmarks/results/cpu.md`` has
the grid's rows at 256 x 50257 and 64 x 128256 that this buys. The kernel's derivative
rule is given the arrays in their own shapes and makes the view itself
(``_softmax.RowSplit.to_view``), so that reverse mode keeps the arrays, not reshaped
copies of them.

Only kernels that say how to run on shards do this (:meth:`Kernel.split`), only
without per-class arrays (class weights, ``alpha``), which would have to be copied to
the view's shape, and only when the process has one device (see :func:`maybe_split`).
Other backends are untouched: nothing here was measured on them.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from . import _reduction, _softmax

MAX_ROW = 32768  # the longest row that XLA:CPU reduces at full speed (table above)
MIN_ROW = 1024  # the shortest row a split may make


def parts_for(num_classes: int) -> int:
    """Into how many rows to split a row of ``num_classes``: the fewest that make rows
    of at most ``MAX_ROW`` and at least ``MIN_ROW`` classes, dividing it exactly; 1
    when the row is short enough or no such split exists."""
    if num_classes <= MAX_ROW:
        return 1
    for parts in range(2, num_classes // MIN_ROW + 1):
        if num_classes % parts == 0 and num_classes // parts <= MAX_ROW:
            return parts
    return 1


def maybe_split(kernel: _reduction.Kernel, arrays: tuple) -> _reduction.Kernel:
    """``kernel``, or a :class:`SplitRows` running it on short rows where that is
    measured to be faster (XLA:CPU with one device, class axis last, more than
    ``MAX_ROW`` classes). With more devices the arrays may be sharded along the
    classes, which a trace cannot see under ``jit``, and the reshape would make the
    compiler gather them (measured: an all-gather of ``f32[32, 131072]`` logits on a
    2 x 4 mesh); inside ``shard_map`` (``axis_name``) the kernel's classes are already
    split."""
    if jax.default_backend() != "cpu" or jax.device_count() > 1:
        return kernel
    if getattr(kernel, "axis_name", None) is not None:
        return kernel
    roles = kernel.roles(arrays)
    logits = arrays[0]
    if roles is None or kernel.axis != logits.ndim - 1:
        return kernel
    if any(r == "vector" and a is not None for r, a in zip(roles, arrays)):
        return kernel
    parts = parts_for(logits.shape[-1])
    if parts == 1:
        return kernel
    return SplitRows(fn=kernel.fn, inner=kernel, parts=parts, array_roles=roles)


def to_view(parts: int, roles: tuple[str, ...], arrays) -> tuple:
    """``arrays`` on the ``[examples * parts, C / parts]`` view: ``"classes"`` arrays
    reshaped, ``"example"`` arrays (labels, the mask) repeated ``parts`` times, the rest
    (None) as given. Called by the kernel's derivative rule
    (``_softmax.RowSplit.to_view``, ``_numerics.custom_rule``).

    The reshapes go through one optimization barrier: otherwise XLA:CPU fuses a 16-bit
    array's reshape with the kernel's conversion to float32 into a loop that writes a
    float32 copy of the view (and a 16-bit copy of the targets for their check), where
    its YNNPACK fusions read the 16-bit view directly once the reshape is a bitcast
    (soft targets, bfloat16, 64 x 128256, forward: 78 against 31 MiB of temporaries,
    27 against 12 ms; docs/performance.md)."""
    assert len(arrays) == len(roles), (len(arrays), roles)
    is_class = [r == "classes" and a is not None for r, a in zip(roles, arrays)]
    views = iter(
        jax.lax.optimization_barrier(
            [a.reshape(-1, a.shape[-1] // parts) for a, c in zip(arrays, is_class) if c]
        )
    )

    def per_row(a):  # one value per example -> one per row of the view
        return jnp.repeat(a.reshape(-1), parts)

    return tuple(
        next(views) if c else per_row(a) if r == "example" and a is not None else a
        for a, c, r in zip(arrays, is_class, roles)
    )


@dataclasses.dataclass(frozen=True)
class SplitRows(_reduction.Kernel):
    """``inner`` with its values computed by ``inner.split(parts)`` on the
    ``[examples * parts, C / parts]`` view. The mask, the checks and the example
    weights are ``inner``'s, on the arrays as given (``array_roles``: what each holds,
    from ``inner.roles``)."""

    inner: _reduction.Kernel
    parts: int
    array_roles: tuple[str, ...]

    @property
    def view(self) -> _reduction.Kernel:
        """``inner`` on the view, given the arrays (and the mask) in their own shapes:
        its derivative rule reshapes them (``_softmax.RowSplit.to_view``)."""
        split = _softmax.RowSplit(self.parts, (*self.array_roles, "example"))
        return dataclasses.replace(self.inner.split(self.parts), axis_name=split)

    def mask(self, arrays, where):
        return self.inner.mask(arrays, where)

    def check(self, arrays, mask):
        self.inner.check(arrays, mask)

    def weights(self, arrays, mask, dtype):
        return self.inner.weights(arrays, mask, dtype)

    def values(self, arrays, mask):
        return self._per_example(arrays, self.view.values(arrays, mask))

    def aux(self, arrays, mask):
        """The kernel's aux on the view (no derivative rule: made here)."""
        *view, view_mask = self.view.axis_name.to_view((*arrays, mask))
        return self._per_example(arrays, self.inner.split(self.parts).aux(tuple(view), view_mask))

    def _per_example(self, arrays, values):
        """The first row's value of each example (every row of an example holds it)."""
        parts = self.parts
        return values.reshape(-1, parts)[:, 0].reshape(arrays[0].shape[:-1])
