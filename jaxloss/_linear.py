"""Fused linear + cross-entropy: ``sparse_categorical_cross_entropy(softcap(h @ W + b),
labels)`` without ever building the ``[N, C]`` logits.

The vocabulary is walked in blocks of ``block`` classes (a ``lax.scan``). Per token
the forward pass keeps four float32 numbers, updated block by block:

    m     the running maximum of the logits z_c
    s     sum_c exp(z_c - m)                        (rescaled when m grows)
    z_y   the label's logit
    sz    sum_c w_c z_c                             (label smoothing only)

and the loss is, with lse = m + log s, S = (1 - eps) w_y + (eps / C) sum_c w_c:

    loss = (1 - eps) w_y (lse - z_y) + (eps / C) (sum_c w_c lse - sz) + z_loss lse**2

For ``reduction="none"`` the derivative is a hand-written tangent, ``sum_c g_c dz_c`` with
``g_c = (S + 2 z_loss lse) p_c - (1 - eps) w_y [c = y] - (eps / C) w_c`` and
``dz_c = softcap'(.) (dh . W_c + h . dW_c + db_c)``, walked over the same blocks. It
runs under ``jax.checkpoint``, so reverse mode keeps only the inputs and the four
numbers per token, and recomputes each block's logits in the backward pass: 8 N D C
flops for a forward + backward. For ``"sum"``/``"mean"`` the rule folds the gradient
in during the forward pass instead (see "Scalar reductions" below): 6 N D C flops.
Every autodiff mode differentiates the tangents, so jvp, jacfwd, hessian and vmap work.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _checks, _numerics, _reduction, _softmax

# By default each path's temporaries hold at most 1/_LOGITS_FRACTION of the float32
# logits' size, and at most this many bytes of [tokens, block] float32 temporaries (a
# block of the vocabulary, or the logits of a chunk of tokens).
BLOCK_BUDGET_BYTES = 2**27
# A chunk of tokens is not made smaller than this to stay within its budget: chunks of
# a token or two would turn the matmuls into matrix-vector products, each reading the
# whole weight.
MIN_CHUNK_TOKENS = 64
_TEMPS_PER_BLOCK = 4  # logits, exp, gradient coefficient, one more for XLA
# The fold-early path's chunk of T tokens keeps float32 temporaries of [T, C] (one
# array: its logits or their exponentials) and, for each block of columns of its
# gradient, a [T, block] gradient coefficient, a [D, block] slice of the weight and
# the [D, block] product h^T g (_chunk_fold); the step keeps the [N, D] dh too. By
# default they hold at most 1/8 of the float32 logits ([N, C]) and the chunk's logits
# at most BLOCK_BUDGET_BYTES (token_block_for). Smaller chunks cost time: each reads
# the whole weight twice and adds to the whole weight gradient. At 2048 x 512 x 32768
# in float32 the default is 171 tokens and 27 MiB of temporaries (11% of the logits),
# 0.96-1.02x the time of jaxloss's unfused step and 0.84-0.91x optax's (two runs,
# docs/performance.md, "The fused head").
_LOGITS_FRACTION = 8
_SHARDED_LOGITS_FRACTION = 4


def token_block_for(
    num_tokens: int,
    num_classes: int,
    hidden_size: int,
    budget: int | None = None,
    sharded: bool = False,
) -> int:
    """Tokens per chunk of the fold-early path: as many as keep its float32
    temporaries within ``budget`` bytes, at least 1, in as few chunks as that allows,
    of equal size (the last chunk ends at the last token and redoes the rows that
    the one before covered: at most ``chunks - 1`` of them).

    The temporaries are the chunk's ``[T, C]`` logits, per block of columns a
    ``[T, block]`` coefficient and two ``[D, block]`` arrays, and the ``[N, D]``
    gradient of the hidden states, counted for at most half the budget. The default
    budget is 1/8 of the float32 logits' size, with the chunk's logits at most
    ``BLOCK_BUDGET_BYTES``, in chunks of at least ``MIN_CHUNK_TOKENS`` tokens (or every
    token, if there are fewer), so that small heads are not cut into matrix-vector
    products. Smaller chunks trade time for memory: each reads the whole weight and
    adds to the whole weight gradient, in smaller matmuls.

    ``sharded`` (the vocabulary split over devices, ``C`` this device's classes): every
    chunk also costs two small all-reduces, whose latency does not shrink with the
    shard, so by default the chunk's logits alone may take 1/4 of the local logits
    (at most ``BLOCK_BUDGET_BYTES``), as ``docs/scaling.md`` models."""
    c = max(num_classes, 1)
    n = max(num_tokens, 1)
    block = _fold_block(hidden_size, hidden_size, c, 4)
    per_token = (c + block) * 4
    fixed = 2 * hidden_size * block * 4
    floor = 1
    default = budget is None
    if default:
        cap = BLOCK_BUDGET_BYTES // (c * 4)  # the chunk's logits
        if sharded:
            chunk = min(n // _SHARDED_LOGITS_FRACTION, cap)
        else:
            budget = n * c * 4 // _LOGITS_FRACTION
            fixed += min(n * hidden_size * 4, budget // 2)
            chunk = min((budget - fixed) // per_token, cap)
        # the floor never takes a chunk's logits past BLOCK_BUDGET_BYTES
        floor = max(1, min(MIN_CHUNK_TOKENS, cap))
        chunk = max(chunk, floor)
    else:
        fixed += min(n * hidden_size * 4, budget // 2)
        chunk = (budget - fixed) // per_token
    chunk = max(1, min(chunk, n))
    equal = -(-n // -(-n // chunk))
    if default and equal < floor:  # fewer equal chunks, each at least the floor
        wider = -(-n // max(1, n // floor))
        equal = wider if wider * c * 4 <= BLOCK_BUDGET_BYTES else equal
    return equal


def block_size_for(num_tokens: int, num_classes: int, budget: int | None = None) -> int:
    """The vocabulary block: as many classes as ``budget`` bytes of float32
    ``[tokens, block]`` temporaries allow, a multiple of 128, at most ``C``. The
    default budget is 1/8 of the float32 logits' size, at most ``BLOCK_BUDGET_BYTES``."""
    if budget is None:
        budget = min(BLOCK_BUDGET_BYTES, num_tokens * num_classes * 4 // _LOGITS_FRACTION)
    block = budget // (max(num_tokens, 1) * 4 * _TEMPS_PER_BLOCK)
    block = max(128, block // 128 * 128)
    return min(block, num_classes)


@dataclasses.dataclass(frozen=True)
class LinearCrossEntropy(_reduction.Kernel):
    num_classes: int
    block: int
    smoothing: float = 0.0
    z_loss: float = 0.0
    ignore_index: int | None = None
    softcap: float | None = None
    token_block: int = 1
    # Vocabulary parallelism (inside shard_map): the weight, bias and class weights are
    # this device's contiguous shard of ``shard_classes`` columns along ``axis_name``;
    # ``num_classes`` is the whole vocabulary. Without it the shard is everything.
    axis_name: str | None = None
    shard_classes: int = 0

    def mask(self, arrays, where):
        return _reduction.example_mask(where, arrays[3], self.ignore_index)

    def check(self, arrays, mask):
        _softmax.check_labels(self.fn, arrays[3], mask, self.num_classes, self.ignore_index)
        if arrays[4] is not None:
            _checks.check_nonnegative_values(self.fn, "class weight", arrays[4])

    def values(self, arrays, mask):
        return _linear_ce(self, *arrays, mask)

    def weights(self, arrays, mask, dtype):
        labels, class_weights = arrays[3], arrays[4]
        return _reduction.sparse_example_weights(mask, labels, class_weights, dtype, self.axis_name)

    def total(self, arrays, mask, scale):
        hidden = arrays[0]
        if scale is None:
            scale = jnp.ones(hidden.shape[:1], jnp.float32)
        return _linear_total(self, *arrays, mask, scale), hidden.shape[0]

    # The z-loss term for logging: z lse**2 per token, from the loss's own statistics.

    def values_and_aux(self, arrays, mask):
        loss, lse = _linear_ce_and_lse(self, *arrays, mask)
        return loss, jax.lax.stop_gradient(self._z_term(lse, mask))

    def total_and_aux(self, arrays, mask, scale):
        hidden = arrays[0]
        if scale is None:
            scale = jnp.ones(hidden.shape[:1], jnp.float32)
        total, lse = _linear_total_and_lse(self, *arrays, mask, scale)
        z_total = jnp.sum(self._z_term(lse, mask) * scale.astype(lse.dtype))
        return total, hidden.shape[0], jax.lax.stop_gradient(z_total)

    def _z_term(self, lse, mask):
        lse = jax.lax.stop_gradient(lse)
        return _numerics.mask_rows(self.z_loss * lse * lse, mask)


# --------------------------------------------------------------------------------------
# Blocks of the vocabulary.


def _num_blocks(k):
    return -(-k.shard_classes // k.block)


# Vocabulary parallelism: what differs is where a sum over the classes ends, so each
# sum goes through these (identities without an axis name).


def _psum(k, x):
    """Sum over the shards of the vocabulary: one all-reduce of per-token numbers (or
    of ``dh``)."""
    return x if k.axis_name is None else jax.lax.psum(x, k.axis_name)


def _pmax(k, x):
    return x if k.axis_name is None else jax.lax.pmax(x, k.axis_name)


def _varying(x, *like):
    """``x`` typed as varying over every mesh axis that any of ``like`` varies over
    (inside ``shard_map``): a scan's carry starts as a constant but collects values
    computed from the inputs, and the two types must match."""
    axes = set()
    for a in jax.tree.leaves(like):
        axes |= _varying_axes(a)
    if not axes:
        return x

    def cast(a):
        missing = tuple(sorted(axes - _varying_axes(a)))
        return jax.lax.pcast(a, missing, to="varying") if missing else a

    return jax.tree.map(cast, x)


def _varying_axes(a) -> set:
    """The mesh axes over which ``a`` varies inside ``shard_map`` (empty elsewhere):
    ``typeof(a).mat.varying`` in JAX 0.10, ``typeof(a).vma`` before."""
    aval = jax.typeof(a)
    manual = getattr(aval, "mat", None)
    return set(getattr(manual, "varying", None) or getattr(aval, "vma", None) or ())


def _local_labels(k, labels):
    """Labels as columns of this shard; -1 (no column) for a label held elsewhere."""
    if k.axis_name is None:
        return labels
    y = labels - jax.lax.axis_index(k.axis_name).astype(labels.dtype) * k.shard_classes
    return jnp.where((y >= 0) & (y < k.shard_classes), y, -1)


def _columns(i, block, num_classes):
    """Block ``i`` of ``block`` columns: ``(start, cols, fresh)``. It starts at
    ``min(i * block, C - block)`` (the last block overlaps the one before rather than
    running past C); ``fresh`` marks the columns no earlier block covered."""
    start = jnp.minimum(i * block, num_classes - block)
    cols = start + jnp.arange(block, dtype=jnp.int32)
    return start, cols, cols >= i * block


def _block(k, i, weight, bias, class_weights):
    """Block ``i`` of the vocabulary (``_columns``) and its slices of the weight, bias
    and class weights."""
    start, cols, fresh = _columns(i, k.block, k.shard_classes)
    w_blk = jax.lax.dynamic_slice_in_dim(weight, start, k.block, axis=1)
    b_blk = None if bias is None else jax.lax.dynamic_slice_in_dim(bias, start, k.block)
    cw_blk = (
        None
        if class_weights is None
        else jax.lax.dynamic_slice_in_dim(class_weights, start, k.block)
    )
    return cols, fresh, w_blk, b_blk, cw_blk


def _logits(k, h, w_blk, b_blk):
    """``softcap(h @ W_blk + b_blk)`` in the compute dtype (float32 for 16-bit
    inputs), and ``softcap'`` (None without a softcap)."""
    t = _uncapped(k, h, w_blk, b_blk)
    if k.softcap is None:
        return t, None
    return _cap(k, t), 1 - t * t


def _uncapped(k, h, w_blk, b_blk):
    """``h @ W_blk + b_blk`` in the compute dtype (float32 for 16-bit inputs): the
    logits, or with a softcap ``c`` the ``tanh(. / c)`` of which they are
    :func:`_cap`."""
    dtype = _numerics.compute_dtype(h)
    z = jnp.matmul(h, w_blk, preferred_element_type=dtype)
    if b_blk is not None:
        z = z + b_blk.astype(dtype)
    return z if k.softcap is None else jnp.tanh(z / k.softcap)


def _cap(k, t):
    """The logits ``c t`` from ``t = tanh(u / c)`` (identity without a softcap)."""
    if k.softcap is None:
        return t
    # max(c t, -c) is c t (|t| <= 1), rounded before anything uses it. XLA:CPU fused a
    # bare product c * t into its consumers as a multiply-add (c t - m, unrounded), so
    # that exp(z - m) in the gradient disagreed with the statistics taken from the
    # rounded z by up to a rounding of c (c = 1e4: 2e-4 relative; c = 1e10: a
    # probability of 2e-26 for 1). A quotient t / (1 / c) is rewritten as the product.
    return jnp.maximum(k.softcap * t, -k.softcap)


def _class_weights(class_weights, dtype):
    if class_weights is None:
        return None
    return _numerics.valid_weights(class_weights.astype(dtype))


def _labels_ok(k, labels):
    return (labels >= 0) & (labels < k.num_classes)


def _label_weight(k, cw, labels, dtype):
    """``w_y`` per token (1 without class weights), from the shard holding the label;
    an out-of-range label reads none."""
    if cw is None:
        return jnp.ones(labels.shape, dtype)
    y = _local_labels(k, labels)
    inside = (y >= 0) & (y < cw.shape[0])
    return _psum(k, jnp.where(inside, jnp.take(cw, jnp.where(inside, y, 0)), 0))


def _total_weight(k, cw):
    """``sum_c w_c`` over the whole vocabulary (``C`` without class weights)."""
    return k.num_classes if cw is None else _psum(k, jnp.sum(cw))


def _stats(k, hidden, weight, bias, labels, class_weights):
    """Per token: running max ``m``, ``s = sum exp(z - m)``, ``z_y`` and ``sum w z``."""
    n = hidden.shape[0]
    dtype = _numerics.compute_dtype(hidden)
    cw = _class_weights(class_weights, dtype)
    y = _local_labels(k, labels)[:, None]

    @jax.checkpoint
    def body(carry, i):
        m, s, z_y, sz = carry
        cols, fresh, w_blk, b_blk, cw_blk = _block(k, i, weight, bias, cw)
        z, _ = _logits(k, hidden, w_blk, b_blk)
        z_live = jnp.where(fresh, z, -jnp.inf)
        m_new = jax.lax.stop_gradient(jnp.maximum(m, jnp.max(z_live, -1)))
        s = s * jnp.exp(m - m_new) + jnp.sum(jnp.exp(z_live - m_new[:, None]), -1)
        z_y = z_y + jnp.sum(jnp.where(fresh & (cols == y), z, 0), -1)
        if k.smoothing:  # a class of weight 0 adds 0, even at a -inf logit
            wz = z if cw_blk is None else jnp.where(cw_blk == 0, 0, cw_blk * z)
            sz = sz + jnp.sum(jnp.where(fresh, wz, 0), -1)
        return (m_new, s, z_y, sz), None

    zeros = jnp.zeros((n,), dtype)
    init = (jnp.full((n,), -jnp.inf, dtype), zeros, zeros, zeros)
    init = _varying(init, hidden, weight, bias, labels, class_weights)
    (m, s, z_y, sz), _ = jax.lax.scan(body, init, jnp.arange(_num_blocks(k), dtype=jnp.int32))
    if k.axis_name is not None:  # one max- and one sum-reduction of per-token numbers
        m_all = _pmax(k, m)
        s, z_y, sz = _psum(k, (s * jnp.exp(m - m_all), z_y, sz))
        m = m_all
    return m, s, z_y, sz


def _loss_from_stats(k, labels, class_weights, m, s, z_y, sz):
    log_s = jnp.log(s)
    lse = m + log_s
    cw = _class_weights(class_weights, lse.dtype)
    w_y = _label_weight(k, cw, labels, lse.dtype)
    loss = (1 - k.smoothing) * w_y * ((m - z_y) + log_s)  # lse - z_y, rounded once
    if k.smoothing:
        loss = loss + k.smoothing / k.num_classes * (_total_weight(k, cw) * lse - sz)
    if k.z_loss:  # (z lse) lse: lse**2 overflows first
        loss = loss + k.z_loss * lse * lse
    return jnp.where(_labels_ok(k, labels), loss, jnp.nan)


def _sanitized(hidden, mask):
    return hidden if mask is None else jnp.where(mask[:, None], hidden, 0)


def _value(k, hidden, weight, bias, labels, class_weights, mask):
    return _value_and_lse(k, hidden, weight, bias, labels, class_weights, mask)[0]


def _value_and_lse(k, hidden, weight, bias, labels, class_weights, mask):
    stats = _stats(k, _sanitized(hidden, mask), weight, bias, labels, class_weights)
    loss = _numerics.mask_rows(_loss_from_stats(k, labels, class_weights, *stats), mask)
    m, s, _, _ = stats
    return loss, m + jnp.log(s)


def _tangent(k, hidden, weight, bias, labels, class_weights, mask, stats, dh, dw, db, dcw):
    """``sum_c g_c dz_c`` (plus the class weights' term), block by block."""
    m, s, z_y, _ = stats
    h = _sanitized(hidden, mask)
    log_s = jnp.log(s)
    lse = m + log_s
    dtype = lse.dtype
    cw = _class_weights(class_weights, dtype)
    # a masked token's label weight may be invalid (NaN): it must not reach the others
    # through the products of the gradient (0 * NaN in h^T g)
    w_y = _numerics.mask_rows(_label_weight(k, cw, labels, dtype), mask)
    b = k.smoothing / k.num_classes
    coef = (1 - k.smoothing) * w_y + 2 * k.z_loss * lse
    if k.smoothing:  # without smoothing an unused class weight is not read (0 * NaN)
        coef = coef + b * _total_weight(k, cw)
    ok = _labels_ok(k, labels)
    if mask is not None:  # a masked token's label may be anything
        ok = ok | ~mask
    coef = jnp.where(ok, coef, jnp.nan)  # a NaN gradient for a bad label, in every mode
    y = _local_labels(k, labels)[:, None]
    if dh is not None:
        dh = _sanitized(dh, mask).astype(dtype)

    def body(out, i):
        cols, fresh, w_blk, b_blk, cw_blk = _block(k, i, weight, bias, cw)
        z, dcap = _logits(k, h, w_blk, b_blk)
        p = jnp.exp((z - m[:, None]) - log_s[:, None])  # exp(z - lse), with z - m exact
        onehot = (cols == y).astype(dtype)
        target = (1 - k.smoothing) * w_y[:, None] * onehot
        if k.smoothing:
            target = target + b * (1.0 if cw_blk is None else cw_blk)
        g = coef[:, None] * p - target
        dz = 0
        if dh is not None:
            dz = dz + jnp.matmul(dh, w_blk.astype(dtype))
        if dw is not None:
            dw_blk = jax.lax.dynamic_slice_in_dim(dw, cols[0], k.block, axis=1)
            dz = dz + jnp.matmul(h.astype(dtype), dw_blk.astype(dtype))
        if db is not None:
            dz = dz + jax.lax.dynamic_slice_in_dim(db, cols[0], k.block).astype(dtype)
        if dcap is not None:
            dz = dz * dcap
        term = g * dz
        if dcw is not None:  # d loss / d w_c = (1 - eps) [c = y] nll_y + (eps / C)(lse - z_c)
            dcw_blk = jax.lax.dynamic_slice_in_dim(dcw, cols[0], k.block).astype(dtype)
            # -log p_c taken as 0 at a -inf logit, as in the unfused rule; NaN for a bad
            # label: reverse mode's class-weight gradient is NaN too
            nll = jnp.where(z != -jnp.inf, lse[:, None] - z, 0)
            nll = jnp.where(ok[:, None], nll, jnp.nan)
            term = term + ((1 - k.smoothing) * onehot + b) * nll * dcw_blk
            # NaN at an invalid class weight, as in the unfused rule: a term of its own,
            # since XLA makes a select of a one-hot product (0 * NaN = 0)
            term = term + (_numerics.nan_at(cw_blk) - 1) * dcw_blk
        return out + jnp.sum(jnp.where(fresh, term, 0), -1), None

    out, _ = jax.lax.scan(
        jax.checkpoint(body),
        _varying(jnp.zeros(hidden.shape[:1], dtype), h, weight, bias, labels, cw, dh, dw, db, dcw),
        jnp.arange(_num_blocks(k), dtype=jnp.int32),
    )
    out = _psum(k, out)  # the shards' partial sums over their classes
    return _numerics.mask_rows(jnp.where(ok, out, jnp.nan), mask)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _linear_ce(k, hidden, weight, bias, labels, class_weights, mask):
    return _value(k, hidden, weight, bias, labels, class_weights, mask)


def _linear_ce_jvp(k, primals, tangents):
    hidden, weight, bias, labels, class_weights, mask = primals
    dh, dw, db, _, dcw, _ = map(_numerics.nonzero, tangents)
    h = _sanitized(hidden, mask)
    stats = _stats(k, h, weight, bias, labels, class_weights)
    value = _numerics.mask_rows(_loss_from_stats(k, labels, class_weights, *stats), mask)
    if dh is None and dw is None and db is None and dcw is None:
        return value, jnp.zeros_like(value)
    tangent = _tangent(k, hidden, weight, bias, labels, class_weights, mask, stats, dh, dw, db, dcw)
    return value, tangent


_linear_ce.defjvp(_linear_ce_jvp, symbolic_zeros=True)


# The same with each token's lse as a second output (for the z-loss term, which is
# logged without gradient: the lse's tangent is given as 0 and its use stops gradients).
@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _linear_ce_and_lse(k, hidden, weight, bias, labels, class_weights, mask):
    return _value_and_lse(k, hidden, weight, bias, labels, class_weights, mask)


@_linear_ce_and_lse.defjvp
def _linear_ce_and_lse_jvp(k, primals, tangents):
    value, tangent = _linear_ce_jvp(k, primals, tangents)
    lse = _value_and_lse(k, *primals)[1]
    return (value, lse), (tangent, jnp.zeros_like(lse))


# --------------------------------------------------------------------------------------
# Scalar reductions: fold each chunk's gradient in as soon as its logits exist.
#
# For "sum" and "mean" the cotangent of token i's loss is known up to one scalar when
# the forward pass runs: it is scale_i. So the rule computes the whole gradient
# G = d(sum_i scale_i loss_i) / d(hidden, weight, bias, class_weights) in the forward
# pass, a chunk of tokens at a time with the full vocabulary ([chunk, C] logits, never
# [N, C]): 2 N D C flops for the logits and 4 N D C for dh and dW, the 6 N D C floor.
# The tangent is then <G, d inputs> + sum_i d scale_i loss_i: reverse mode keeps G
# (the size of the inputs) and nothing else.


def _chunk_fold(k, h, weight, bias, labels, cw, scale, mask, acc):
    """One chunk of tokens: its per-token losses and lse, and its gradient, added to
    the accumulators ``acc = (dW, db, d_cw)`` a block of columns at a time (see
    ``_fold_block``); returns ``(loss, dh, lse, acc)``. The chunk keeps one large
    ``[T, C]`` array (its logits or their exponentials): each block's gradient
    coefficients and ``h^T g`` product exist only for that block."""
    dtype = _numerics.compute_dtype(h)
    h_t = h.astype(dtype).T  # [D, T]
    # [T, C] (this shard's columns): the logits, or with a softcap the tanh of which
    # they are _cap, computed from it where they are read (cap is monotone, so the
    # row maximum is the cap of t's), so that the chunk keeps one [T, C] array
    t = _uncapped(k, h, weight, bias)
    z = _cap(k, t)
    y = _local_labels(k, labels)
    inside = (y >= 0) & (y < k.shard_classes)
    safe = jnp.where(inside, y, 0)[:, None]
    # this shard's part of the label's logit and of sum_c w_c z_c (summed below)
    z_y = jnp.where(inside[:, None], _cap(k, jnp.take_along_axis(t, safe, -1)), 0)
    # a masked token's label weight may be invalid (NaN): 0, as in _tangent
    w_y = _numerics.mask_rows(_label_weight(k, cw, labels, dtype), mask)[:, None]
    b = k.smoothing / k.num_classes
    total_w = _total_weight(k, cw)
    sz = None
    if k.smoothing:  # a class of weight 0 adds 0, even at a -inf logit
        wz = z if cw is None else jnp.where(cw == 0, 0, cw * z)
        sz = jnp.sum(wz, -1, keepdims=True)
    m = _pmax(k, jax.lax.stop_gradient(_cap(k, jnp.max(t, -1, keepdims=True))))
    # The gradient's softmax is e / s, from the exponentials the statistics took (one
    # exp per logit, not two), unless a softcap's derivative or the class-weight
    # gradient reads the logits themselves: then the chunk keeps z and takes
    # exp((z - m) - log s) per block. Either way it holds one [T, C] array: e takes
    # z's place once z_y (and sz) are read, which the shift's 0 * min(m - z_y, 1) (0,
    # or NaN with the row) makes XLA do first.
    keep_z = k.softcap is not None or acc[2] is not None
    shift = m
    if not keep_z:
        tie = jnp.minimum(m - z_y, 1)
        if k.smoothing:
            tie = tie + jnp.minimum(jnp.abs(sz), 1)
        shift = m + tie * 0
    e = jnp.exp(z - shift)
    # one all-reduce of the sums over the shards (XLA combines them)
    s, z_y, sz = _psum(k, (jnp.sum(e, -1, keepdims=True), z_y, sz))
    log_s = jnp.log(s)
    lse = m + log_s
    loss = (1 - k.smoothing) * w_y * ((m - z_y) + log_s)  # lse - z_y, rounded once
    if k.smoothing:
        loss = loss + b * (total_w * lse - sz)
    if k.z_loss:  # (z lse) lse: lse**2 overflows first
        loss = loss + k.z_loss * lse * lse
    ok = _labels_ok(k, labels)[:, None]
    if mask is not None:
        ok = ok | ~mask[:, None]
    loss = jnp.where(ok, loss, jnp.nan)
    coef = (1 - k.smoothing) * w_y + (b * total_w if k.smoothing else 0)
    coef = jnp.where(ok, coef + 2 * k.z_loss * lse, jnp.nan)
    a = scale.astype(dtype)[:, None]

    block = _fold_block(weight.shape[0], h.shape[0], k.shard_classes, jnp.dtype(dtype).itemsize)
    num = -(-k.shard_classes // block)

    def step(i, carry):
        d_w, d_b, d_cw, dh_t = carry
        # Ties the weight and the block index to the loop's data. Without it, reverse
        # mode's partial evaluation (JAX's, on every backend; not a fusion trick)
        # treats the slicing as known and stacks every block of the weight (and the
        # `fresh` masks) as residuals of the chunk loop: a copy of the whole weight.
        # tests/test_linear.py::test_compiled_memory_stays_below_the_logits fails
        # without it (9.1 against 5.8 MiB; docs/performance.md, "The fused head").
        weight_, i, dh_t = jax.lax.optimization_barrier((weight, i, dh_t))
        # the columns of the last block that the block before covered get no gradient
        start, cols, fresh = _columns(i, block, k.shard_classes)
        if keep_z:
            t_b = jax.lax.dynamic_slice_in_dim(t, start, block, axis=1)
            z_b = _cap(k, t_b)
            p_b = jnp.exp((z_b - m) - log_s)  # exp(z - lse), z - m exact
        else:
            p_b = jax.lax.dynamic_slice_in_dim(e, start, block, axis=1) / s
        onehot = (cols == y[:, None]).astype(dtype)
        cw_b = None if cw is None else jax.lax.dynamic_slice_in_dim(cw, start, block)
        target = (1 - k.smoothing) * w_y * onehot
        if k.smoothing:  # as in _tangent: an unused class weight is not read
            target = target + b * (1.0 if cw_b is None else cw_b)
        g = a * (coef * p_b - target)
        if k.softcap is not None:  # softcap'(u) = 1 - tanh(u / c)**2
            g = g * (1 - t_b * t_b)
        # 0 in the columns of the block before (a product, not a select: XLA:CPU wrote
        # out a zero block for the select; a NaN row is NaN in every column anyway)
        g = g * fresh.astype(dtype)
        w_b = jax.lax.dynamic_slice_in_dim(weight_, start, block, axis=1).astype(dtype)
        # [D, T]: the transposed operand is the block of g, not the weight (XLA would
        # otherwise keep a transposed copy of the weight)
        dh_t = dh_t + jnp.matmul(w_b, g.T)
        d_w = _add_block(d_w, jnp.matmul(h_t, g), start)
        d_b = _add_block(d_b, jnp.sum(g, 0), start)
        if d_cw is not None:
            # rows with a bad label make it NaN, as in the unfused rule
            s_b = (1 - k.smoothing) * onehot + b
            # -log p_c taken as 0 at a -inf logit, as in the unfused rule
            nll = jnp.where(z_b != -jnp.inf, lse - z_b, 0)
            terms = jnp.where(ok, a * s_b * nll, jnp.nan) * _numerics.nan_at(cw_b)
            d_cw = _add_block(d_cw, jnp.where(fresh, jnp.sum(terms, 0), 0), start)
        return d_w, d_b, d_cw, dh_t

    dh_t = _varying(jnp.zeros(h_t.shape, dtype), h_t, weight, t)
    d_w, d_b, d_cw, dh_t = jax.lax.fori_loop(0, num, step, (*acc, dh_t))
    return loss[:, 0], dh_t.T, lse[:, 0], (d_w, d_b, d_cw)


# Bytes of each of the gradient coefficients ([T, block]) and the [D, block] product
# that the fold makes for one block of columns (about: a block has at least 128
# columns). At 2048 x 512 x 32768 in float32, 2 MiB (1024 columns) took 0.95-0.98x
# the time of 4 MiB with chunks of 128 or 512 tokens (two interleaved runs each;
# 1 MiB was no faster): the block's arrays stay in this CPU's 2 MiB L2 cache.
_PRODUCT_BUDGET_BYTES = 2**21


def _fold_block(d, tokens, num_classes, itemsize):
    """Columns per block of a chunk's gradient: ``[max(D, T), block]`` elements of
    ``itemsize`` bytes within ``_PRODUCT_BUDGET_BYTES`` and at most 1/8 of the
    chunk's columns (each block's arrays stay small beside the chunk's logits), a
    multiple of 128, but at least 128 (so below 1024 classes more than 1/8) and at
    most ``C``."""
    block = min(_PRODUCT_BUDGET_BYTES // (itemsize * max(d, tokens, 1)), num_classes // 8)
    return min(max(128, block // 128 * 128), num_classes)


def _add_block(acc, x, start):
    """``acc`` with ``x`` added to its columns (last axis) from ``start`` on."""
    width = x.shape[-1]
    old = jax.lax.dynamic_slice_in_dim(acc, start, width, axis=acc.ndim - 1)
    return jax.lax.dynamic_update_slice_in_dim(acc, old + x, start, axis=acc.ndim - 1)


def _fold(k, hidden, weight, bias, labels, class_weights, mask, scale):
    """Per-token losses and G, over chunks of tokens. The last chunk ends at the last
    token, overlapping the one before where the chunk does not divide the tokens
    (padding would copy the hidden states; a smaller last chunk would be compiled,
    and its logits held, apart): there the rows the chunk before covered add nothing
    and keep their gradient."""
    n, d = hidden.shape
    dtype = _numerics.compute_dtype(hidden)
    chunk = k.token_block
    h = _sanitized(hidden, mask)
    scale = _numerics.mask_rows(scale, mask)
    cw = _class_weights(class_weights, dtype)

    def body(carry, i):
        acc, d_hidden = carry
        start = jnp.minimum(i * chunk, n - chunk)
        fresh = start + jnp.arange(chunk) >= i * chunk

        def rows(a):
            return jax.lax.dynamic_slice_in_dim(a, start, chunk)

        # the rows the chunk before covered add nothing: scale 0 (a NaN they hold made
        # everything NaN there already)
        scale_c = jnp.where(fresh, rows(scale), 0)
        mask_c = None if mask is None else rows(mask)
        loss_c, dh_c, lse_c, acc = _chunk_fold(
            k, rows(h), weight, bias, rows(labels), cw, scale_c, mask_c, acc
        )
        dh_c = jnp.where(fresh[:, None], dh_c, rows(d_hidden))
        d_hidden = jax.lax.dynamic_update_slice_in_dim(d_hidden, dh_c, start, 0)
        return (acc, d_hidden), (loss_c, lse_c)

    acc = (
        jnp.zeros(weight.shape, dtype),
        jnp.zeros(weight.shape[1:], dtype),
        None if cw is None else jnp.zeros(weight.shape[1:], dtype),
    )
    carry = _varying((acc, jnp.zeros((n, d), dtype)), h, weight, bias, labels, cw, scale)
    if n == 0:  # no chunk to slice: every gradient is 0
        (d_weight, d_bias, d_cw), d_hidden = carry
        empty = jnp.zeros((0,), dtype)
        return empty, _psum(k, d_hidden), d_weight, d_bias, d_cw, empty
    num = -(-n // chunk)
    carry, (loss, lse) = jax.lax.scan(body, carry, jnp.arange(num))
    (d_weight, d_bias, d_cw), d_hidden = carry

    def per_token(x):  # the last chunk's first rows repeat the chunk before's
        return jnp.concatenate([x[:-1].reshape(-1), x[-1, num * chunk - n :]])

    loss = _numerics.mask_rows(per_token(loss), mask)
    d_hidden = _psum(k, d_hidden)  # the one [N, D] all-reduce
    return loss, d_hidden, d_weight, d_bias, d_cw, per_token(lse)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _linear_total(k, hidden, weight, bias, labels, class_weights, mask, scale):
    loss = _value(k, hidden, weight, bias, labels, class_weights, mask)
    return jnp.sum(_numerics.unweighted_zero(scale, loss) * scale.astype(loss.dtype))


def _linear_total_jvp(k, primals, tangents):
    return _linear_total_and_lse_jvp(k, primals, tangents)[:2]


# The same with each token's lse as a second output (see _linear_ce_and_lse).
@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _linear_total_and_lse(k, hidden, weight, bias, labels, class_weights, mask, scale):
    loss, lse = _value_and_lse(k, hidden, weight, bias, labels, class_weights, mask)
    return jnp.sum(_numerics.unweighted_zero(scale, loss) * scale.astype(loss.dtype)), lse


def _linear_total_and_lse_jvp(k, primals, tangents):
    """``(value, tangent, lse)``: the scalar's jvp, and the lse the fold computed."""
    hidden, weight, bias, labels, class_weights, mask, scale = primals
    dh, dw, db, _, dcw, _, dscale = map(_numerics.nonzero, tangents)
    folded = _fold(k, hidden, weight, bias, labels, class_weights, mask, scale)
    loss, g_h, g_w, g_b, g_cw, lse = folded
    loss = _numerics.unweighted_zero(scale, loss)  # a token of weight 0 adds 0, as unfused
    value = jnp.sum(loss * scale.astype(loss.dtype))
    out = jnp.zeros((), value.dtype)
    if dh is not None:  # dh is the whole gradient on every shard
        out = out + jnp.sum(g_h * dh.astype(g_h.dtype))
    pairs = ((g_w, dw), (g_b, db), (g_cw, dcw))
    shard = [jnp.sum(g * d.astype(g.dtype)) for g, d in pairs if d is not None]
    if shard:  # each shard's columns: summed over the shards
        out = out + _psum(k, sum(shard))
    if dscale is not None:
        out = out + jnp.sum(loss * dscale.astype(loss.dtype))
    return value, out, lse


_linear_total.defjvp(_linear_total_jvp, symbolic_zeros=True)


@_linear_total_and_lse.defjvp
def _linear_total_and_lse_rule(k, primals, tangents):
    value, tangent, lse = _linear_total_and_lse_jvp(k, primals, tangents)
    return (value, lse), (tangent, jnp.zeros_like(lse))


# --------------------------------------------------------------------------------------
# The public function.


def linear_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    where: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    logit_softcap: float | None = None,
    reduction: str = "none",
    block_size: int | None = None,
    token_block_size: int | None = None,
    return_z_loss: bool = False,
    axis_name: str | None = None,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    r"""Cross-entropy of a linear head, ``logits = hidden @ weight + bias``, without
    ever building the ``[tokens, classes]`` logits.

    .. math::
        z_i = \operatorname{softcap}(h_i W + b), \qquad
        \ell_i = \texttt{sparse\_categorical\_cross\_entropy}(z_i, y_i, \ldots)

    It has exactly the value and every derivative (with respect to ``hidden``,
    ``weight``, ``bias`` and ``class_weights``) of
    ``sparse_categorical_cross_entropy(softcap(hidden @ weight + bias), labels, ...)``
    under every option and reduction, in every autodiff mode (grad, jvp, jacfwd,
    hessian, vmap of grad). The vocabulary is processed in blocks; the statistics
    and the gradient's accumulation are in float32 whatever the inputs' dtype.

    Two paths, chosen by ``reduction``. For ``"sum"`` and ``"mean"`` the derivative
    rule computes the whole gradient in the forward pass, a chunk of tokens at a time
    over the full vocabulary, folding each chunk's logits into ``dh`` and ``dW`` as
    soon as they exist (6 N D C flops, the floor; reverse mode keeps gradient-sized
    arrays). For ``"none"`` (any cotangent per token) it walks the vocabulary in
    blocks of ``block_size`` and recomputes each block's logits in the backward pass
    (8 N D C flops; reverse mode keeps the inputs and four numbers per token).

    Args:
      hidden: ``[..., D]`` float activations (``[N, D]`` or ``[B, T, D]``).
      weight: ``[D, C]`` (for tied embeddings ``[C, D]``, pass ``embedding.T``).
      labels: ``[...]`` integer class indices (``hidden.shape[:-1]``). A label outside
        ``[0, C)`` that is not ``ignore_index`` gives NaN, as in
        :func:`sparse_categorical_cross_entropy`.
      bias: optional ``[C]``.
      where, sample_weight, ignore_index, class_weights: as in
        :func:`sparse_categorical_cross_entropy`.
      label_smoothing, z_loss, reduction: as in :func:`sparse_categorical_cross_entropy`.
      logit_softcap: ``c`` to use ``c * tanh(logits / c)`` (Gemma 2), or None.
      block_size: classes per block of the ``"none"`` path; None chooses it from the
        number of tokens so that a block's float32 temporaries stay within 1/8 of the
        float32 logits' size and at most about 128 MiB.
      token_block_size: tokens per chunk of the ``"sum"``/``"mean"`` path, whose
        largest temporary is one ``[T, C]`` float32 array. None chooses the fewest
        chunks of equal size whose temporaries (``dh`` included) stay within 1/8 of
        the float32 logits' size, with a chunk's logits at most 128 MiB, and at least
        64 tokens. Smaller chunks use less memory and more time: each chunk reads the
        weight and updates its whole gradient, and its matmuls are smaller (see
        ``docs/performance.md``, "The fused head").
      return_z_loss: also return the z-loss term ``z lse**2`` on its own, weighted
        and reduced like the loss (for logging, as Liger and T5X return it):
        ``(loss, z_term)``, ``loss`` including the term. It comes from the loss's own
        statistics (no second pass) and carries no gradient.
      axis_name: inside ``jax.shard_map``, the mesh axis over which the vocabulary is
        split in contiguous shards (vocabulary parallelism): ``weight`` is then this
        device's ``[D, C / k]`` columns, ``bias`` and ``class_weights`` its ``[C / k]``
        entries, ``labels`` global class indices, and ``hidden`` the same on every
        device of the axis. Values and derivatives equal the unsharded call's. The
        forward pass exchanges one max- and one sum-reduction of a few numbers per
        token; reverse mode adds one all-reduce of ``dh`` (``[N, D]``); nothing of the
        logits' size crosses devices. Under ``jax.set_mesh`` with an ``Explicit``
        mesh, a ``weight`` whose columns are sharded over one mesh axis (type
        ``P(None, "model")``) takes this path by itself, without ``axis_name``.

    Returns:
      Per-token losses of shape ``hidden.shape[:-1]`` (float32 or float64), or a
      scalar for ``"mean"``/``"sum"``.

    Example:
      >>> import jax.numpy as jnp, jaxloss
      >>> h = jnp.array([[1.0, 0.0], [0.0, 1.0]])
      >>> W = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
      >>> jaxloss.linear_cross_entropy(h, W, jnp.array([0, 2]))
      Array([0.2395, 0.5514], dtype=float32)
      >>> jaxloss.sparse_categorical_cross_entropy(h @ W, jnp.array([0, 2]))
      Array([0.2395, 0.5514], dtype=float32)
    """
    fn = "linear_cross_entropy"
    hidden = _checks.as_array(hidden, "hidden", fn)
    weight = _checks.as_array(weight, "weight", fn)
    labels = _checks.as_array(labels, "labels", fn)
    for name, a in (("hidden", hidden), ("weight", weight)):
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(f"{fn}: {name} must be floating point, got {a.dtype}")
    if hidden.ndim < 1:
        raise ValueError(f"{fn}: hidden must have a feature axis, got shape {hidden.shape}")
    if weight.ndim != 2 or weight.shape[0] != hidden.shape[-1]:
        raise ValueError(
            f"{fn}: weight has shape {tuple(weight.shape)} but hidden {tuple(hidden.shape)} "
            f"needs [D, C] with D = {hidden.shape[-1]} (for tied embeddings pass embedding.T)"
        )
    num_classes = shard_classes = weight.shape[1]
    if num_classes == 0:
        raise ValueError(f"{fn}: weight of shape {tuple(weight.shape)} has no classes")
    if _checks.check_axis_name(axis_name, fn) is not None:  # vocabulary split over shard_map
        num_classes = shard_classes * jax.lax.axis_size(axis_name)
    _checks.check_integer(labels, "labels", fn, "")
    batch = tuple(hidden.shape[:-1])
    if tuple(labels.shape) != batch:
        raise ValueError(
            f"{fn}: labels has shape {tuple(labels.shape)} but hidden "
            f"{tuple(hidden.shape)} needs labels of shape {batch}"
        )
    if bias is not None:
        bias = _checks.as_array(bias, "bias", fn)
        if bias.shape != (shard_classes,):
            raise ValueError(
                f"{fn}: bias has shape {tuple(bias.shape)}; it needs ({shard_classes},)"
            )
    if logit_softcap is not None:
        logit_softcap = _checks.check_positive(logit_softcap, "logit_softcap", fn)
    if axis_name is None and _softmax.class_axis_sharded(weight, 1):
        # the weight's columns are split over an explicit mesh axis (jax.set_mesh): run
        # the vocabulary-parallel path on each device's columns
        return _explicitly_sharded(
            hidden,
            weight,
            labels,
            bias=bias,
            where=where,
            sample_weight=sample_weight,
            ignore_index=ignore_index,
            class_weights=class_weights,
            label_smoothing=label_smoothing,
            z_loss=z_loss,
            logit_softcap=logit_softcap,
            reduction=_checks.check_reduction(reduction, fn),
            block_size=block_size,
            token_block_size=token_block_size,
            return_z_loss=return_z_loss,
        )
    n = math.prod(batch)
    if block_size is None:
        block = block_size_for(n, shard_classes)
    else:
        block = min(_checks.check_positive_int(block_size, "block_size", fn), shard_classes)
    if token_block_size is None:
        token_block = token_block_for(
            n, shard_classes, hidden.shape[-1], sharded=axis_name is not None
        )
    else:
        token_block = _checks.check_positive_int(token_block_size, "token_block_size", fn)
        token_block = min(token_block, max(n, 1))
    kernel = LinearCrossEntropy(
        fn=fn,
        num_classes=num_classes,
        block=block,
        smoothing=_checks.check_fraction(label_smoothing, "label_smoothing", fn),
        z_loss=_checks.check_nonnegative(z_loss, "z_loss", fn),
        ignore_index=_checks.check_ignore_index(ignore_index, fn),
        softcap=logit_softcap,
        token_block=token_block,
        axis_name=axis_name,
        shard_classes=shard_classes,
    )
    class_weights = _checks.check_class_weights(class_weights, shard_classes, fn)
    where = _checks.check_where(where, batch, fn)
    sample_weight = _checks.check_sample_weight(sample_weight, batch, fn, "per-token")
    flat = (
        hidden.reshape(n, hidden.shape[-1]),
        weight,
        bias,
        labels.reshape(n).astype(jnp.int32),
        class_weights,
    )
    out = _reduction.apply(
        kernel,
        flat,
        None if where is None else where.reshape(n),
        None if sample_weight is None else jnp.broadcast_to(sample_weight, batch).reshape(n),
        reduction=_checks.check_reduction(reduction, fn),
        checks=_checks.checks_enabled(),
        aux=bool(return_z_loss),
    )
    if reduction != "none":
        return out
    if return_z_loss:
        return out[0].reshape(batch), out[1].reshape(batch)
    return out.reshape(batch)


# --------------------------------------------------------------------------------------
# Explicit sharding: a weight whose columns are split over a mesh axis under
# ``jax.set_mesh`` (``AxisType.Explicit``) runs the shard_map path above.


def _spec(x, ndim):
    """``x``'s partition spec, one entry per dimension (None: replicated)."""
    spec = getattr(getattr(jax.typeof(x), "sharding", None), "spec", None)
    entries = tuple(spec) if spec is not None else ()
    return jax.sharding.PartitionSpec(*(entries + (None,) * (ndim - len(entries))))


def _mesh_axes(entries):
    """The mesh axis names in some spec entries (each None, a name or a tuple)."""
    names = []
    for e in entries:
        if e is not None:
            names += [e] if isinstance(e, str) else list(e)
    return tuple(names)


def _explicitly_sharded(hidden, weight, labels, *, reduction, return_z_loss, **options):
    fn = "linear_cross_entropy"
    P = jax.sharding.PartitionSpec
    vocab = _spec(weight, 2)[1]
    if not isinstance(vocab, str):
        raise NotImplementedError(
            f"{fn}: weight's classes are split over mesh axes {vocab!r}; one mesh axis "
            "is supported (or call it inside shard_map with axis_name=)"
        )
    if _spec(weight, 2)[0] is not None or _spec(hidden, hidden.ndim)[-1] is not None:
        raise NotImplementedError(f"{fn}: the feature axis D must not be sharded")
    batch = tuple(hidden.shape[:-1])
    batch_spec = tuple(_spec(hidden, hidden.ndim))[:-1]
    batch_axes = _mesh_axes(batch_spec)
    if vocab in batch_axes:
        raise NotImplementedError(f"{fn}: tokens and classes split over the same axis {vocab!r}")
    row = P(*batch_spec)
    arrays = {"hidden": hidden, "weight": weight, "labels": labels}
    specs = {"hidden": P(*batch_spec, None), "weight": P(None, vocab), "labels": row}
    for name in ("bias", "class_weights"):
        if options[name] is not None:
            arrays[name], specs[name] = options.pop(name), P(vocab)
        else:
            options.pop(name)
    for name in ("where", "sample_weight"):
        if options[name] is not None:
            arrays[name] = jnp.broadcast_to(jnp.asarray(options.pop(name)), batch)
            specs[name] = row
        else:
            options.pop(name)

    def local(arrays):
        a = dict(arrays)
        h, w, y = a.pop("hidden"), a.pop("weight"), a.pop("labels")
        if reduction == "none":
            return linear_cross_entropy(
                h, w, y, axis_name=vocab, return_z_loss=return_z_loss, **a, **options
            )
        # a sum over this device's tokens, then over the token axes; the mean divides by
        # the weights of every token (class weights, masks and sample weights)
        s = a.pop("sample_weight", None)
        if reduction == "mean":
            k = LinearCrossEntropy(
                fn=fn, num_classes=0, block=1, axis_name=vocab, shard_classes=w.shape[1]
            )
            keep = _reduction.example_mask(a.get("where"), y, options["ignore_index"])
            cw = a.get("class_weights")
            denom = jnp.ones(y.shape, jnp.float32)
            if cw is not None:
                dtype = _numerics.compute_dtype(w)
                denom = _label_weight(k, _class_weights(cw, dtype), y, dtype)
            if s is not None:  # scaled exactly, by the same power of two on every device

                def largest(v):
                    top = jnp.max(v, initial=0.0)
                    return jax.lax.pmax(top, batch_axes) if batch_axes else top

                s = _reduction.unit_scaled(s, keep, largest)
                denom = denom * s
            denom = _numerics.mask_rows(denom, keep)
            total = jax.lax.psum(jnp.sum(denom), batch_axes) if batch_axes else jnp.sum(denom)
            total = jnp.where(total == 0, 1, total)
            s = jnp.ones((), total.dtype) if s is None else s
            s = jnp.broadcast_to(_numerics.divide(s, total), y.shape)
        out = linear_cross_entropy(
            h, w, y, axis_name=vocab, reduction="sum", sample_weight=s,
            return_z_loss=return_z_loss, **a, **options,
        )  # fmt: skip
        return jax.tree.map(lambda v: jax.lax.psum(v, batch_axes) if batch_axes else v, out)

    # arrays given without a sharding (labels or a mask from NumPy, say) are laid out
    # like the tokens or the classes they go with
    arrays = {name: jax.reshard(a, specs[name]) for name, a in arrays.items()}
    out_spec = row if reduction == "none" else P()
    out_specs = (out_spec, out_spec) if return_z_loss else out_spec
    return jax.shard_map(local, in_specs=(specs,), out_specs=out_specs)(arrays)
