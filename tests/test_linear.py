"""linear_cross_entropy: the value and every derivative of the unfused
``sparse_categorical_cross_entropy(softcap(h @ W + b), labels, ...)``, in blocks that
need not divide the vocabulary, without ever building the logits."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.ad_checkpoint import print_saved_residuals

import jaxloss
from jaxloss.testing import check_derivatives

LCE = jaxloss.linear_cross_entropy
SPARSE = jaxloss.sparse_categorical_cross_entropy
N, D, C = 6, 4, 11


def _inputs(rng, n=N, d=D, c=C):
    h = rng.standard_normal((n, d))
    w = rng.standard_normal((d, c))
    b = rng.standard_normal(c)
    y = rng.integers(0, c, n).astype(np.int32)
    cw = rng.uniform(0.5, 2.0, c)
    return h, w, b, y, cw


def _unfused(h, w, y, *, bias=None, logit_softcap=None, **kw):
    z = h @ w
    if bias is not None:
        z = z + bias
    if logit_softcap is not None:
        z = logit_softcap * jnp.tanh(z / logit_softcap)
    return SPARSE(z, y, **kw)


OPTIONS = [
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 0.01},
    {"logit_softcap": 2.0},
    {"ignore_index": -100},
    {"where": np.array([True, True, False, True, True, False])},
]


@pytest.mark.parametrize("block_size", [1, 4])
@pytest.mark.parametrize("opts", OPTIONS)
def test_value_equals_unfused(rng, opts, block_size):
    reduction = ("none", "sum", "mean")[(OPTIONS.index(opts) + (block_size or 0)) % 3]
    h, w, b, y, cw = (
        np.asarray(a, np.float32) if a.dtype == np.float64 else a for a in _inputs(rng)
    )
    if "ignore_index" in opts:
        y[2] = -100
    kw = dict(opts, class_weights=cw, reduction=reduction)
    ours = LCE(h, w, y, bias=b, block_size=block_size, **kw)
    np.testing.assert_allclose(ours, _unfused(h, w, y, bias=b, **kw), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_derivatives_all_options_second_order(rng, reduction):
    h, w, b, y, cw = _inputs(rng)
    y[2] = -100
    opts = dict(ignore_index=-100, label_smoothing=0.1, z_loss=0.01, logit_softcap=3.0)

    def fused(h, w, b, cw):
        return LCE(h, w, y, bias=b, class_weights=cw, block_size=4, reduction=reduction, **opts)

    def unfused(h, w, b, cw):
        return _unfused(h, w, y, bias=b, class_weights=cw, reduction=reduction, **opts)

    check_derivatives(fused, unfused, h, w, b, cw, order=1)
    if reduction == "mean":  # second order in hidden (through every weight and option)
        check_derivatives(fused, unfused, h, w, b, cw, argnums=(0,), order=2, modes=("rev",))


def test_every_autodiff_api(rng):
    h, w, b, y, _ = (
        np.asarray(a, np.float32) if a.dtype == np.float64 else a for a in _inputs(rng)
    )

    def fused(h, w):
        return LCE(h, w, y, bias=b, block_size=3, reduction="mean", z_loss=1e-2)

    def unfused(h, w):
        return _unfused(h, w, y, bias=b, reduction="mean", z_loss=1e-2)

    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)  # noqa: E731
    for api in (jax.grad, jax.hessian):  # every jvp/vjp composition: check_derivatives
        for x, y_ in zip(
            jax.tree.leaves(api(fused, (0, 1))(h, w)), jax.tree.leaves(api(unfused, (0, 1))(h, w))
        ):
            close(x, y_)
    v = (np.ones_like(h), np.ones_like(w))
    close(jax.jvp(fused, (h, w), v)[1], jax.jvp(unfused, (h, w), v)[1])
    # per-token gradients with vmap
    per_token = jax.vmap(jax.grad(lambda hi, yi: LCE(hi[None], w, yi[None], block_size=4)[0]))
    ref = jax.vmap(jax.grad(lambda hi, yi: SPARSE((hi @ w)[None], yi[None])[0]))
    close(per_token(h, y), ref(h, y))


def test_bfloat16_inputs_accumulate_in_float32(rng):
    h, w, _, y, _ = _inputs(rng, n=16, d=32, c=300)
    hb, wb = jnp.asarray(h, jnp.bfloat16), jnp.asarray(w, jnp.bfloat16)
    ours = LCE(hb, wb, y, block_size=128, reduction="mean")
    assert ours.dtype == jnp.float32
    want = _unfused(hb.astype(jnp.float32), wb.astype(jnp.float32), y, reduction="mean")
    np.testing.assert_allclose(ours, want, rtol=1e-5)
    gh, gw = jax.grad(lambda h, w: LCE(h, w, y, block_size=128, reduction="mean"), (0, 1))(hb, wb)
    assert gh.dtype == jnp.bfloat16 and gw.dtype == jnp.bfloat16
    rh, rw = jax.grad(
        lambda h, w: _unfused(h.astype(jnp.float32), w.astype(jnp.float32), y, reduction="mean"),
        (0, 1),
    )(hb, wb)
    np.testing.assert_allclose(gh.astype(np.float32), rh.astype(np.float32), rtol=2e-2, atol=1e-4)
    np.testing.assert_allclose(gw.astype(np.float32), rw.astype(np.float32), rtol=2e-2, atol=1e-4)


def test_batch_axes_and_out_of_range_labels(rng):
    h, w, _, y, _ = _inputs(rng)
    h3, y3 = h.reshape(2, 3, D), y.reshape(2, 3).copy()
    np.testing.assert_allclose(LCE(h3, w, y3, block_size=5), _unfused(h3, w, y3), rtol=1e-6)
    y3[0, 1] = C  # out of range: NaN for that token only
    out = np.asarray(LCE(h3, w, y3, block_size=5))
    assert np.isnan(out[0, 1]) and np.isfinite(np.delete(out.ravel(), 1)).all()
    g = jax.grad(lambda h: LCE(h, w, y3, block_size=5).sum())(h3)
    assert np.isnan(g[0, 1]).all()


def test_masked_tokens_holding_junk_are_exactly_zero(rng):
    h, w, _, y, _ = _inputs(rng)
    h[1] = np.nan
    keep = np.ones(N, bool)
    keep[1] = False

    def f(h):
        return LCE(h, w, y, where=keep, block_size=4, reduction="sum")

    assert np.isfinite(f(h))
    g = jax.grad(f)(h)
    assert np.all(g[1] == 0) and np.all(np.isfinite(g))
    hess = jax.hessian(f)(h)
    assert np.all(np.isfinite(hess)) and np.all(hess[1] == 0)


def test_reverse_mode_keeps_no_logits_sized_residual(capsys, rng):
    h, w, b, y, _ = (
        np.asarray(a, np.float32) if a.dtype == np.float64 else a
        for a in _inputs(rng, n=64, d=8, c=512)
    )
    print_saved_residuals(lambda h, w: LCE(h, w, y, bias=b, block_size=128, reduction="mean"), h, w)
    out = capsys.readouterr().out
    assert "[64,512]" not in out and "[64,128]" not in out, out


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_compiled_memory_stays_below_the_logits(monkeypatch, reduction):
    """With a 4 MiB budget for blocks, neither path builds the 16 MiB logits."""
    import jaxloss._linear as linear

    monkeypatch.setattr(linear, "BLOCK_BUDGET_BYTES", 2**22)
    n, d, c = 512, 64, 8192
    h = jnp.zeros((n, d))
    w = jnp.zeros((d, c))
    y = jnp.zeros((n,), jnp.int32)
    grad = jax.grad(lambda h, w: LCE(h, w, y, reduction=reduction).sum(), (0, 1))
    temp = jax.jit(grad).lower(h, w).compile().memory_analysis().temp_size_in_bytes
    logits = n * c * 4
    # a few [N, block] blocks and the [D, C] weight gradient, never [N, C]
    assert temp < logits / 2, (temp, logits)


def test_errors_name_the_argument():
    h, w, y = jnp.zeros((4, 3)), jnp.zeros((3, 5)), jnp.zeros((4,), jnp.int32)
    with pytest.raises(ValueError, match=r"weight has shape \(5, 3\)"):
        LCE(h, w.T, y)
    with pytest.raises(ValueError, match=r"labels has shape \(3,\)"):
        LCE(h, w, y[:3])
    with pytest.raises(TypeError, match="labels must have an integer dtype"):
        LCE(h, w, y.astype(jnp.float32))
    with pytest.raises(ValueError, match=r"bias has shape \(4,\)"):
        LCE(h, w, y, bias=jnp.zeros(4))
    with pytest.raises(ValueError, match="logit_softcap must be > 0"):
        LCE(h, w, y, logit_softcap=0.0)
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        LCE(h, w, y, block_size=0)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="token_block_size must be a positive int"):
            LCE(h, w, y, token_block_size=bad, reduction="mean")
    LCE(h, w, y, token_block_size=np.int64(2), block_size=np.int32(2), reduction="mean")
    with pytest.raises(ValueError, match="label_smoothing"):
        LCE(h, w, y, label_smoothing=1.5)
    with pytest.raises(TypeError, match="axis_name must be a mesh axis name"):
        LCE(h, w, y, axis_name=3)


@pytest.mark.parametrize("reduction,reads_logits", [("sum", True), ("mean", False)])
def test_fold_early_path_in_token_chunks(rng, monkeypatch, reduction, reads_logits):
    """A budget small enough for chunks of 2 tokens (the last one padded), with every
    option, a mask and sample weights: the scalar path against the unfused loss. A
    softcap and class weights make the fold keep each chunk's logits; without them it
    keeps their exponentials instead (``reads_logits=False``)."""
    import jaxloss._linear as linear

    d = 4
    block = linear._fold_block(d, d, C, 4)
    # two tokens' arrays, the block's, and the [N, D] gradient
    budget = 2 * (C + block) * 4 + 2 * d * block * 4 + 7 * d * 4
    assert linear.token_block_for(7, C, d, budget=budget) == 2
    monkeypatch.setattr(linear, "token_block_for", lambda *args, **kwargs: 2)
    h, w, b, y, cw = _inputs(rng, n=7)
    y[3] = -100
    keep = np.array([True, True, False, True, True, True, True])
    sw = rng.uniform(0.5, 2.0, 7)
    opts = dict(
        ignore_index=-100,
        label_smoothing=0.1,
        z_loss=0.01,
        logit_softcap=3.0 if reads_logits else None,
        where=keep,
        reduction=reduction,
    )
    if not reads_logits:
        cw = None

    def fused(h, w, b, sw):
        return LCE(h, w, y, bias=b, class_weights=cw, sample_weight=sw, **opts)

    def unfused(h, w, b, sw):
        return _unfused(h, w, y, bias=b, class_weights=cw, sample_weight=sw, **opts)

    # first order: the second-order check of this path is test_derivatives_all_options_...
    check_derivatives(fused, unfused, h, w, b, sw, order=1)
    if reads_logits:  # and with respect to the class weights
        check_derivatives(
            lambda cw: LCE(h, w, y, bias=b, class_weights=cw, sample_weight=sw, **opts),
            lambda cw: _unfused(h, w, y, bias=b, class_weights=cw, sample_weight=sw, **opts),
            cw,
            order=1,
        )


def test_fold_makes_the_gradient_in_column_blocks(rng):
    """The fold makes a chunk's gradient a block of columns at a time: 1100 classes
    give blocks of 128 (1/8 of the columns, rounded to 128), the last one overlapping
    the one before by 52 columns; chunks of 3 tokens, the second one padded. Value and
    derivatives to second order against the unfused loss, then the class weights'
    gradient with a bad label (NaN, as unfused: docs/semantics.md)."""
    import jaxloss._linear as linear

    c = 1100
    assert linear._fold_block(D, 3, c, 8) == 128 and c % 128 == 76
    h, w, b, y, _ = _inputs(rng, n=5, c=c)
    cw = rng.uniform(0.5, 2.0, c)
    opts = dict(label_smoothing=0.1, logit_softcap=3.0, reduction="sum")

    def fused(h, w):
        return LCE(h, w, y, bias=b, class_weights=cw, token_block_size=3, **opts)

    def unfused(h, w):
        return _unfused(h, w, y, bias=b, class_weights=cw, **opts)

    check_derivatives(fused, unfused, h, w, order=2)
    bad = y.copy()
    bad[1] = c
    d_cw = [
        jax.grad(lambda cw: f(h, w, bad, bias=b, class_weights=cw, **opts))(cw)
        for f in (functools.partial(LCE, token_block_size=3), _unfused)
    ]
    assert np.isnan(d_cw[0]).all() and np.isnan(d_cw[1]).all()


def test_single_class_and_default_chunks(rng):
    h, w, b, y, _ = _inputs(rng, c=1)
    for reduction in ("none", "mean"):
        out = LCE(h, w, y, bias=b, reduction=reduction)
        np.testing.assert_allclose(out, _unfused(h, w, y, bias=b, reduction=reduction), atol=1e-7)
    g = jax.grad(lambda h, w: LCE(h, w, y, reduction="mean"), (0, 1))(h, w)
    assert all(np.all(x == 0) for x in g)  # one class: the loss is 0 whatever h and W are
    import jaxloss._linear as linear

    # by default a chunk's temporaries hold at most 1/8 of the float32 logits, its
    # logits at most 128 MiB, in the fewest chunks of at least 64 tokens, of equal size
    assert linear.token_block_for(2048, 32768, 512) == 171  # 12 chunks; 186 would fit
    assert linear.token_block_for(8192, 131072, 1024) == 256
    assert linear.token_block_for(8192, 16032, 4096) == 432
    # a vocabulary shard (one of 8): each chunk costs two small all-reduces, so the
    # chunk's logits alone may take 1/4 of the local logits
    assert linear.token_block_for(8192, 16032, 4096, sharded=True) == 2048
    assert linear.token_block_for(512, 5885, 64) == 64
    assert linear.token_block_for(300, 10**6, 64) == 30  # 128 MiB caps the 64-token floor
    assert linear.token_block_for(40, 400, 8) == 40
    # fewer equal chunks rather than chunks under 64 tokens: 65 = 1 x 65, 129 = 2 x 65
    assert linear.token_block_for(65, 300, 4) == 65
    assert linear.token_block_for(129, 32768, 512) == 65


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_return_z_loss_equals_unfused(rng, reduction):
    h, w, b, y, cw = _inputs(rng)
    keep = np.arange(N) != 2
    options = dict(
        bias=b,
        class_weights=cw,
        where=keep,
        sample_weight=rng.uniform(0.5, 2.0, N),
        z_loss=0.01,
        reduction=reduction,
        return_z_loss=True,
    )
    loss, z_term = LCE(h, w, y, **options)
    want_loss, want_z = _unfused(h, w, y, **options)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    np.testing.assert_allclose(z_term, want_z, rtol=1e-6)
    # the term carries no gradient; the loss's gradient is the plain call's
    del options["return_z_loss"]
    grads = jax.grad(lambda h: jnp.sum(LCE(h, w, y, return_z_loss=True, **options)[0]))(h)
    np.testing.assert_allclose(grads, jax.grad(lambda h: jnp.sum(LCE(h, w, y, **options)))(h))
    assert np.all(
        jax.grad(lambda h: jnp.sum(LCE(h, w, y, return_z_loss=True, **options)[1]))(h) == 0
    )


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_last_chunk_overlaps_the_one_before(rng, reduction):
    """7 tokens in chunks of 3: the last chunk is tokens 4-6, and tokens 4 and 5 (which
    the chunk before covered) add nothing twice, also where one holds a bad label and
    one is masked."""
    h, w, b, y, _ = _inputs(rng, n=7)
    keep = np.array([True, True, True, True, True, False, True])

    def both(y):
        def fused(h, w):
            return LCE(h, w, y, bias=b, where=keep, reduction=reduction, token_block_size=3)

        def unfused(h, w):
            return _unfused(h, w, y, bias=b, where=keep, reduction=reduction)

        return [(f(h, w), jax.grad(f, (0, 1))(h, w)) for f in (fused, unfused)]

    (value, (dh, dw)), (want, (want_dh, want_dw)) = both(y)
    np.testing.assert_allclose(value, want, rtol=1e-6)
    np.testing.assert_allclose(dh, want_dh, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-5, atol=1e-7)
    bad = y.copy()
    bad[4] = C  # out of range, in the overlap: NaN once, in its row and in dW
    (value, (dh, dw)), (want, (want_dh, want_dw)) = both(bad)
    assert np.isnan(value) and np.isnan(want)
    np.testing.assert_array_equal(np.isnan(dh), np.isnan(want_dh))
    assert np.isnan(dh[4]).all() and not np.isnan(np.delete(dh, 4, 0)).any()
    assert np.isnan(dw).all() == np.isnan(want_dw).all()


def test_empty_batch():
    h, w, y = jnp.zeros((0, 4)), jnp.ones((4, 10)), jnp.zeros((0,), jnp.int32)
    for reduction in ("none", "sum", "mean"):
        value = LCE(h, w, y, reduction=reduction)
        dh, dw = jax.grad(lambda h, w: jnp.sum(LCE(h, w, y, reduction=reduction)), (0, 1))(h, w)
        assert value.shape == ((0,) if reduction == "none" else ())
        assert np.all(value == 0) and dh.shape == (0, 4) and np.all(dw == 0)


@pytest.mark.parametrize(
    "opts", [{}, dict(label_smoothing=0.1, z_loss=1e-4), dict(logit_softcap=30.0)], ids=str
)
def test_default_step_keeps_an_eighth_of_the_logits(opts):
    """The issue's shape, 2048 x 512 x 32768 in float32, compiled only: the training
    step's temporaries with the default chunk stay within 1/8 of the 256 MiB logits."""
    n, d, c = 2048, 512, 32768
    shapes = (
        jax.ShapeDtypeStruct((n, d), jnp.float32),
        jax.ShapeDtypeStruct((d, c), jnp.float32),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    )

    def loss(h, w, y):
        return LCE(h, w, y, reduction="mean", **opts)

    step = jax.jit(jax.value_and_grad(loss, (0, 1)))
    temp = step.lower(*shapes).compile().memory_analysis().temp_size_in_bytes
    assert temp <= n * c * 4 / 8, temp / 2**20


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_infinite_token_of_weight_zero_and_a_masked_class(rng, reduction, smoothing):
    """A token whose label is a -inf-bias class has an infinite loss: with sample weight
    0 it adds 0 to the value and to every gradient, as unfused (the fused value was
    NaN). The class-weight gradient takes -log p as 0 at the -inf class, as the unfused
    rule does (it was NaN, from 0 * inf, or inf with smoothing)."""
    h, w, b, _, cw = _inputs(rng, n=5, c=5)
    b[2] = -np.inf
    y = np.array([0, 2, 3, 4, 0], np.int32)
    sw = np.array([1.0, 0.0, 1.0, 2.0, 1.0])
    opts = dict(bias=b, label_smoothing=smoothing, reduction=reduction)

    def fused(h, w, cw, sw):
        return jnp.sum(LCE(h, w, y, class_weights=cw, sample_weight=sw, token_block_size=2, **opts))

    def unfused(h, w, cw, sw):
        return jnp.sum(_unfused(h, w, y, class_weights=cw, sample_weight=sw, **opts))

    args = (h, w, cw, sw)
    np.testing.assert_allclose(fused(*args), unfused(*args), rtol=1e-6)
    got, want = (jax.grad(f, (0, 1, 2, 3))(*args) for f in (fused, unfused))
    for a, b_ in zip(got, want):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-6)
        assert np.isfinite(a[np.isfinite(b_)]).all()
