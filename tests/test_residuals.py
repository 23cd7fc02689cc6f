"""What reverse mode keeps between the forward and the backward pass: for every loss,
the inputs themselves and O(examples) numbers, never a new array of the logits' size
(optax keeps one). The softmax cross-entropy family and forward KL may keep the softmax
instead, by choice (``residuals="softmax"``) or by the measured CPU policy of
``residuals="auto"`` (docs/performance.md); they are tested here with
``residuals="lse"``, and the policy below."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.ad_checkpoint import print_saved_residuals

import jaxloss

N, C = 6, 11


def _residuals(capsys, f, *args):
    print_saved_residuals(f, *args)
    rows = []
    for line in capsys.readouterr().out.strip().splitlines():
        m = re.match(r"(\w+)\[([\d,]*)\]\s+(.*)", line)
        assert m, line
        shape = tuple(int(d) for d in m.group(2).split(",") if d)
        rows.append((m.group(1), shape, m.group(3)))
    return rows


def _inputs(rng, dtype):
    x = jnp.asarray(rng.standard_normal((N, C)), dtype)
    t = jnp.asarray(rng.dirichlet(np.ones(C), N), dtype)
    y = jnp.asarray(rng.integers(0, C, N), jnp.int32)
    w = jnp.asarray(rng.uniform(0.5, 2, C), jnp.float32)
    keep = jnp.asarray(rng.random(N) < 0.7)
    return x, t, y, w, keep


LSE = {"residuals": "lse"}
CASES = {
    "sparse": lambda x, t, y, w, k, **r: jaxloss.sparse_categorical_cross_entropy(
        x, y, class_weights=w, label_smoothing=0.1, z_loss=1e-3, where=k, reduction="mean", **r
    ),
    "sparse_plain": lambda x, t, y, w, k, **r: jaxloss.sparse_categorical_cross_entropy(
        x, y, reduction="mean", **r
    ),
    "categorical": lambda x, t, y, w, k, **r: jaxloss.categorical_cross_entropy(
        x, t, class_weights=w, label_smoothing=0.1, where=k, reduction="mean", **r
    ),
    "categorical_plain": lambda x, t, y, w, k, **r: jaxloss.categorical_cross_entropy(
        x, t, reduction="mean", **r
    ),
    "kl": lambda x, t, y, w, k, **r: jaxloss.kl_divergence(x, t, where=k, reduction="mean", **r),
    "reverse_kl": lambda x, t, y, w, k: jaxloss.reverse_kl_divergence(x, t, reduction="sum"),
    "kl_with_logits": lambda x, t, y, w, k: jaxloss.kl_divergence_with_logits(
        x, t, temperature=2.0, reduction="mean"
    ),
    "js": lambda x, t, y, w, k: jaxloss.js_divergence(x, t, reduction="mean"),
    "entropy": lambda x, t, y, w, k: jaxloss.entropy(x, reduction="mean"),
    "softmax_focal": lambda x, t, y, w, k: jaxloss.softmax_focal_loss(
        x, y, alpha=w, where=k, reduction="mean"
    ),
    "sigmoid": lambda x, t, y, w, k: jaxloss.sigmoid_cross_entropy(
        x, t, pos_weight=w, reduction="mean"
    ),
    "sigmoid_focal": lambda x, t, y, w, k: jaxloss.sigmoid_focal_loss(x, t, alpha=0.25).sum(),
}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name", sorted(CASES))
def test_reverse_mode_keeps_no_class_sized_residual(capsys, rng, name, dtype):
    x, t, y, w, keep = _inputs(rng, dtype)
    f = CASES[name]
    kw = LSE if name in POLICY_CASES else {}
    rows = _residuals(capsys, lambda x, t: f(x, t, y, w, keep, **kw), x, t)
    big = [r for r in rows if np.prod(r[1]) > max(N, C)]
    assert any(r[2].startswith("from the argument x") for r in big), rows
    for dt, shape, source in big:  # the inputs themselves, nothing else of their size
        assert source.startswith("from the argument"), (name, rows)
        assert dt == {jnp.float32: "f32", jnp.bfloat16: "bf16"}[dtype], rows
    small = sum(np.prod(r[1]) for r in rows if r not in big)
    assert small <= 8 * (N + C), (name, rows)


POLICY_CASES = ("sparse", "sparse_plain", "categorical", "categorical_plain", "kl")


@pytest.mark.parametrize("name", POLICY_CASES)
def test_residuals_policy(capsys, rng, name):
    """ "softmax" keeps one [N, C] float32 array; "auto" does so on CPU for small logits."""
    x, t, y, w, keep = _inputs(rng, jnp.float32)
    f = CASES[name]
    for residuals in ("softmax", "auto"):
        rows = _residuals(capsys, lambda x, t: f(x, t, y, w, keep, residuals=residuals), x, t)
        kept = [r for r in rows if r[1] == (N, C) and not r[2].startswith("from the argument")]
        assert len(kept) == 1 and kept[0][0] == "f32", (residuals, rows)
    with pytest.raises(ValueError, match="residuals must be one of"):
        f(x, t, y, w, keep, residuals="all")


def test_auto_policy_by_size_and_backend(monkeypatch):
    from jaxloss import _softmax

    limit = _softmax.KEEP_SOFTMAX_MAX_ELEMENTS

    def logits(n, dtype=jnp.float32):  # only shape and dtype are read
        return jax.ShapeDtypeStruct((n,), dtype)

    keep = _softmax.keep_softmax
    assert keep("auto", logits(limit)) and not keep("auto", logits(limit + 1))
    assert keep("auto", logits(8, jnp.bfloat16))  # kept in bfloat16: the logits' size
    assert keep("softmax", logits(10 * limit)) and not keep("lse", logits(1))
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert not keep("auto", logits(1))  # not measured there: O(N) residuals


def test_optax_keeps_a_class_sized_residual(capsys, rng):
    """What the test above guards against."""
    x, t, y, *_ = _inputs(rng, jnp.float32)
    rows = _residuals(
        capsys, lambda x: optax.softmax_cross_entropy_with_integer_labels(x, y).mean(), x
    )
    assert any(r[1] == (N, C) and not r[2].startswith("from the argument") for r in rows)


# ------------------------------------------------------------------ compiled temporaries
# XLA:CPU writes out an intermediate it cannot fuse into a reduction: a select, a
# comparison, a converted copy of 16-bit inputs. The forward passes are written without
# selects, so float32 losses without a mask allocate nothing of the logits' size, in
# either pass. A mask (sanitized with selects in the backward pass, so that every
# derivative order stays finite) and 16-bit inputs (one float32 copy, as for optax) do;
# the figures are in docs/performance.md. Never more than autodiff of the formula.

TEMP_CASES = {k: CASES[k] for k in POLICY_CASES}


def _ls(x):
    return jax.nn.log_softmax(x.astype(jnp.float32))


def _f(a):
    return a.astype(jnp.float32)


def _smooth(t, c):
    return 0.9 * t.astype(jnp.float32) + 0.1 / c


# What a user would write without jaxloss: autodiff of the formula (f32 inside).
REFERENCE = {
    "sparse": lambda x, t, y, w, k: (
        jnp.sum(
            _f(k)
            * (
                -jnp.sum(w * _smooth(jax.nn.one_hot(y, x.shape[1]), x.shape[1]) * _ls(x), -1)
                + 1e-3 * jax.nn.logsumexp(x.astype(jnp.float32), -1) ** 2
            )
        )
        / jnp.sum(_f(k) * w[y])
    ),
    "sparse_plain": lambda x, t, y, w, k: -jnp.mean(jnp.take_along_axis(_ls(x), y[:, None], -1)),
    "categorical": lambda x, t, y, w, k: (
        jnp.sum(_f(k) * -jnp.sum(w * _smooth(t, x.shape[1]) * _ls(x), -1))
        / jnp.sum(_f(k) * jnp.sum(w * t.astype(jnp.float32), -1))
    ),
    "categorical_plain": lambda x, t, y, w, k: jnp.mean(
        -jnp.sum(t.astype(jnp.float32) * _ls(x), -1)
    ),
    "kl": lambda x, t, y, w, k: (
        jnp.sum(
            _f(k)
            * jnp.sum(
                jax.scipy.special.xlogy(_f(t), _f(t)).astype(jnp.float32) - _f(t) * _ls(x), -1
            )
        )
        / jnp.sum(_f(k))
    ),
}
UNMASKED = ("sparse_plain", "categorical_plain")


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name", sorted(TEMP_CASES))
def test_logits_sized_temporaries(rng, name, dtype):
    n, c = 256, 4096
    x = jnp.asarray(rng.standard_normal((n, c)), dtype)
    t = jnp.asarray(rng.dirichlet(np.ones(c), n), dtype)
    y = jnp.asarray(rng.integers(0, c, n), jnp.int32)
    w = jnp.asarray(rng.uniform(0.5, 2, c), jnp.float32)
    keep = jnp.asarray(rng.random(n) < 0.7)
    loss, ref = TEMP_CASES[name], REFERENCE[name]
    np.testing.assert_allclose(loss(x, t, y, w, keep), ref(x, t, y, w, keep), rtol=2e-3)

    def temp(fn):  # every input an argument, as in a training step
        compiled = jax.jit(fn).lower(x, t, y, w, keep).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    f32_logits = x.size * 4
    for ours, theirs in ((loss, ref), (jax.grad(loss), jax.grad(ref))):
        mine = temp(ours)
        if name in UNMASKED:  # none in float32; the one float32 copy for bfloat16
            assert mine < f32_logits * (1 / 8 if dtype == jnp.float32 else 1 + 1 / 8), name
        assert mine <= temp(theirs) + f32_logits / 8, (name, mine, temp(theirs))


PER_EXAMPLE_OPTIONS = {
    "plain": {},
    "smoothing_zloss": dict(label_smoothing=0.1, z_loss=0.01),
    "class_weights": dict(class_weights=np.linspace(0.5, 2.0, 16)),
    "weights_smoothing": dict(class_weights=np.linspace(0.5, 2.0, 16), label_smoothing=0.2),
    "ignore_index": dict(ignore_index=3),
}


@pytest.mark.parametrize("name", sorted(PER_EXAMPLE_OPTIONS))
def test_per_example_gradients_of_sparse_labels(rng, name):
    """``vmap(grad(loss of one example))``: the kernel sees one row, whose gradient
    takes the label's term as a scatter (below: no one-hot written out); its rows
    equal the batched gradient's, NaN for a bad label."""
    opts = dict(PER_EXAMPLE_OPTIONS[name])
    if "class_weights" in opts:
        opts["class_weights"] = jnp.asarray(opts["class_weights"], jnp.float32)
    loss = jaxloss.sparse_categorical_cross_entropy
    x = jnp.asarray(rng.standard_normal((8, 16)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 16, 8), jnp.int32).at[2].set(3).at[5].set(16)  # 16: bad
    one = jax.grad(lambda x, y: loss(x[None], y[None], reduction="sum", **opts))
    got = jax.jit(jax.vmap(one))(x, y)
    want = jax.grad(lambda x: loss(x, y, reduction="sum", **opts))(x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert np.isnan(got[5]).all() and np.isfinite(np.delete(np.asarray(got), 5, 0)).all()


def test_per_example_gradients_write_no_one_hot():
    # XLA:CPU wrote the label's one-hot out (logits-sized) for the kernel of one row
    loss = jaxloss.sparse_categorical_cross_entropy
    n, c = 1024, 1000
    x, y = jnp.zeros((n, c)), jnp.zeros((n,), jnp.int32)
    program = jax.jit(jax.vmap(jax.grad(lambda x, y: loss(x[None], y[None], reduction="sum"))))
    temp = program.lower(x, y).compile().memory_analysis().temp_size_in_bytes
    assert temp < x.size * 4 / 8, temp
