"""Vocabulary-parallel softmax cross-entropy: ``axis_name=`` inside ``shard_map``.

Each device holds a contiguous shard of the classes, in mesh order along the mesh axis
``axis_name``; labels are global class indices, class weights are the local shard.
Per example, the forward pass needs one ``pmax`` (the row maximum) and one ``psum`` of
a few stacked numbers computed from the local shard:

    e = sum_c exp(x_c - m)           A = sum_c s_c (m/2 - x_c/2)
    S = sum_c s_c                     w_y (integer labels)   or   #targets outside [0, 1]

so that ``loss = 2 A + S log e + z lse**2`` (``s = w * smoothed targets``). The
derivative rule is hand-written: the logits' gradient ``(S + 2 z lse) p_c - s_c`` is
local, so the backward pass of the logits needs no collective; the tangent's partial
sums are combined with one ``psum``, whose transpose moves nothing.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from . import _checks, _numerics, _reduction, _softmax


@dataclasses.dataclass(frozen=True)
class VocabParallelCrossEntropy(_reduction.Kernel):
    axis: int
    axis_name: str
    sparse: bool
    smoothing: float = 0.0
    z_loss: float = 0.0
    ignore_index: int | None = None

    def mask(self, arrays, where):
        labels = arrays[1] if self.sparse else None
        return _reduction.example_mask(where, labels, self.ignore_index)

    def check(self, arrays, mask):
        logits, targets, class_weights = arrays
        if self.sparse:
            num_classes = logits.shape[self.axis] * _softmax.shard_count(self.axis_name)
            _softmax.check_labels(self.fn, targets, mask, num_classes, self.ignore_index)
        else:
            _checks.check_in_unit_interval(self.fn, "target", targets, None)

    def values(self, arrays, mask):
        return _vp_ce(self, *arrays, mask)

    def aux(self, arrays, mask):
        """``z lse**2`` per example, the global ``lse`` from the local row maximum
        and sum of exponentials (the loss's own, merged by XLA) and their pmax/psum."""
        logits = jax.lax.stop_gradient(arrays[0])
        _, mask_c, x, _, _ = _local(self, logits, None, mask)
        m = _softmax.shard_max(jnp.max(x, self.axis, keepdims=True), self.axis_name)
        if self.sparse:  # soft targets: NaN at a row of -inf or holding +inf either way
            m = _softmax.finite_shift(m)
        e = _softmax.shard_sum(jnp.sum(jnp.exp(x - m), self.axis, keepdims=True), self.axis_name)
        lse = m + jnp.log(e)
        z_term = self.z_loss * lse * lse  # (z lse) lse: lse**2 overflows first
        return jnp.squeeze(_numerics.mask_rows(z_term, mask_c), self.axis)

    def weights(self, arrays, mask, dtype):
        _, targets, class_weights = arrays
        if self.sparse:
            return _reduction.sparse_example_weights(
                mask, targets, class_weights, dtype, self.axis_name
            )
        return _reduction.soft_example_weights(
            mask, targets, class_weights, self.axis, dtype, self.axis_name
        )


def _local_labels(k, logits, labels):
    """Labels as indices into the local shard (0 where another shard holds them, to be
    read as nothing), and whether the shard holds them."""
    y, inside = _softmax.shard_labels(labels, logits.shape[k.axis], k.axis_name)
    return jnp.where(inside, y, 0), inside


def _local(k, logits, class_weights, mask):
    """What both the forward pass and the rule start from: the sanitized local logits,
    ``eps / C`` (global C) and the local class weights along the class axis."""
    dtype = _numerics.compute_dtype(logits)
    mask_c = _numerics.expand(mask, k.axis)
    x = _numerics.mask_rows(logits.astype(dtype), mask_c)
    num_classes = x.shape[k.axis] * _softmax.shard_count(k.axis_name)
    w = None
    if class_weights is not None:
        w = _numerics.valid_weights(class_weights.astype(dtype))
        w = _softmax.along_classes(w, k.axis, x.ndim, dtype)
    return dtype, mask_c, x, k.smoothing / num_classes, w


def _stats(k, logits, targets, class_weights, mask):
    """``(m, e, A, S, w_y, bad)`` per example (class axis kept), after the collectives."""
    dtype, mask_c, x, b, w = _local(k, logits, class_weights, mask)
    # a constant under differentiation (every formula is invariant to the shift)
    m = _softmax.shard_max(jax.lax.stop_gradient(jnp.max(x, k.axis, keepdims=True)), k.axis_name)
    if k.sparse:  # soft targets: the plain maximum, as unsharded (_softmax.row_max)
        m = _softmax.finite_shift(m)
    half = m / 2 - x / 2
    e = jnp.sum(jnp.exp(x - m), k.axis, keepdims=True)
    zero = jnp.zeros_like(e)
    if k.sparse:
        y, inside = _local_labels(k, logits, targets)
        y, inside = jnp.expand_dims(y, k.axis), jnp.expand_dims(inside, k.axis)
        x_y = jnp.take_along_axis(x, y, k.axis)
        w_y = jnp.ones_like(x_y)
        if class_weights is not None:
            w_vec = _numerics.valid_weights(class_weights.astype(dtype))
            w_y = jnp.expand_dims(_softmax.take(w_vec, jnp.squeeze(y, k.axis)), k.axis)
        w_y = jnp.where(inside, w_y, 0)
        a = _numerics.times((1 - k.smoothing) * w_y, m / 2 - x_y / 2)
        s_sum = (1 - k.smoothing) * w_y
        if k.smoothing:
            bw = b if w is None else b * w
            a = a + jnp.sum(_numerics.times(bw * jnp.ones_like(x), half), k.axis, keepdims=True)
            s_sum = s_sum + jnp.sum(bw * jnp.ones_like(x), k.axis, keepdims=True)
        bad = zero
    else:
        t = _numerics.mask_rows(targets.astype(dtype), mask_c)
        s = (1 - k.smoothing) * t + b if k.smoothing else t
        if w is not None:
            s = w * s
        a = jnp.sum(_numerics.times(s, half), k.axis, keepdims=True)
        s_sum = jnp.sum(s, k.axis, keepdims=True)
        w_y = zero
        bad = 1 - _numerics.unit_rows(t, k.axis).astype(dtype)
    e, a, s_sum, w_y, bad = _softmax.shard_sum((e, a, s_sum, w_y, bad), k.axis_name)
    return m, e, a, s_sum, w_y, bad


def _finish(k, logits, targets, mask, value):
    """NaN for a bad label or target row, 0 where masked, class axis dropped."""
    return jnp.squeeze(_numerics.mask_rows(value, _numerics.expand(mask, k.axis)), k.axis)


def _ok(k, logits, targets, mask, bad, s_sum):
    if k.sparse:
        num_classes = logits.shape[k.axis] * _softmax.shard_count(k.axis_name)
        ok = jnp.expand_dims((targets >= 0) & (targets < num_classes), k.axis)
    else:  # the row sum carries a NaN target, which unit_rows' extremes skip on XLA:CPU
        ok = (bad + 0 * s_sum) == 0
    if mask is not None:
        ok = ok | ~_numerics.expand(mask, k.axis)
    return ok


def _loss(k, m, e, a, s_sum):
    lse_rel = jnp.log(e)
    loss = 2 * a + s_sum * lse_rel
    if k.z_loss:
        loss = loss + k.z_loss * (m + lse_rel) * (m + lse_rel)  # lse**2 overflows first
    return loss


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _vp_ce(k, logits, targets, class_weights, mask):
    m, e, a, s_sum, _, bad = _stats(k, logits, targets, class_weights, mask)
    ok = _ok(k, logits, targets, mask, bad, s_sum)
    return _finish(k, logits, targets, mask, jnp.where(ok, _loss(k, m, e, a, s_sum), jnp.nan))


def _vp_ce_jvp(k, primals, tangents):
    logits, targets, class_weights, mask = primals
    d_logits, d_targets, d_cw, _ = map(_numerics.nonzero, tangents)
    m, e, a, s_sum, w_y, bad = _stats(k, logits, targets, class_weights, mask)
    ok = _ok(k, logits, targets, mask, bad, s_sum)
    value = _finish(k, logits, targets, mask, jnp.where(ok, _loss(k, m, e, a, s_sum), jnp.nan))
    if d_logits is None and d_targets is None and d_cw is None:
        return value, jnp.zeros_like(value)
    dtype, mask_c, x, b, w = _local(k, logits, class_weights, mask)
    if k.sparse:
        y, inside = _local_labels(k, logits, targets)
        classes = jax.lax.broadcasted_iota(jnp.int32, x.shape, k.axis)
        hit = (classes == jnp.expand_dims(y, k.axis)) & jnp.expand_dims(inside, k.axis)
        t = hit.astype(dtype)
        t_smooth = (1 - k.smoothing) * t + b if k.smoothing else t
    else:
        t = _numerics.mask_rows(targets.astype(dtype), mask_c)
        t_smooth = (1 - k.smoothing) * t + b if k.smoothing else t
    s = t_smooth if w is None else w * t_smooth
    lse_rel = jnp.log(e)
    out = 0
    if d_logits is not None:
        coef = s_sum + 2 * k.z_loss * (m + lse_rel)
        coef = jnp.where(ok, coef, jnp.nan)
        g = coef * jnp.exp(x - m) / e - s
        dx = _numerics.mask_rows(d_logits.astype(dtype), mask_c)
        out = out + jnp.sum(g * dx, k.axis, keepdims=True)
    if d_targets is not None or d_cw is not None:
        # -log p_c; NaN in a row with a bad label or target, so that reverse mode's
        # gradients of the targets and the class weights are NaN there, not 0
        nlp = jnp.where(ok, jnp.where(x != -jnp.inf, m - x + lse_rel, 0), jnp.nan)
        if d_targets is not None:
            dt = (1 - k.smoothing) * _numerics.mask_rows(d_targets.astype(dtype), mask_c)
            if w is not None:
                dt = w * dt
            out = out + jnp.sum(nlp * dt, k.axis, keepdims=True)
        if d_cw is not None:
            dw = _softmax.along_classes(d_cw, k.axis, x.ndim, dtype)
            coef = t_smooth * nlp * _numerics.nan_at(w)  # NaN at an invalid class weight
            out = out + jnp.sum(coef * dw, k.axis, keepdims=True)
    out = _softmax.shard_sum(jnp.broadcast_to(out, e.shape), k.axis_name)
    out = jnp.where(ok, out, jnp.nan)
    return value, _finish(k, logits, targets, mask, out)


_vp_ce.defjvp(_vp_ce_jvp, symbolic_zeros=True)
