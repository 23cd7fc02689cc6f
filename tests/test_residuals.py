"""What reverse mode keeps between the forward and the backward pass: for every loss,
the inputs themselves and O(examples) numbers, never a new array of the logits' size
(optax keeps one)."""

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


CASES = {
    "sparse": lambda x, t, y, w, k: jaxloss.sparse_categorical_cross_entropy(
        x, y, class_weights=w, label_smoothing=0.1, z_loss=1e-3, where=k, reduction="mean"
    ),
    "sparse_plain": lambda x, t, y, w, k: jaxloss.sparse_categorical_cross_entropy(
        x, y, reduction="mean"
    ),
    "categorical": lambda x, t, y, w, k: jaxloss.categorical_cross_entropy(
        x, t, class_weights=w, label_smoothing=0.1, where=k, reduction="mean"
    ),
    "categorical_plain": lambda x, t, y, w, k: jaxloss.categorical_cross_entropy(
        x, t, reduction="mean"
    ),
    "kl": lambda x, t, y, w, k: jaxloss.kl_divergence(x, t, where=k, reduction="mean"),
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
    rows = _residuals(capsys, lambda x, t: f(x, t, y, w, keep), x, t)
    big = [r for r in rows if np.prod(r[1]) > max(N, C)]
    assert any(r[2].startswith("from the argument x") for r in big), rows
    for dt, shape, source in big:  # the inputs themselves, nothing else of their size
        assert source.startswith("from the argument"), (name, rows)
        assert dt == {jnp.float32: "f32", jnp.bfloat16: "bf16"}[dtype], rows
    small = sum(np.prod(r[1]) for r in rows if r not in big)
    assert small <= 8 * (N + C), (name, rows)


def test_optax_keeps_a_class_sized_residual(capsys, rng):
    """What the test above guards against."""
    x, t, y, *_ = _inputs(rng, jnp.float32)
    rows = _residuals(
        capsys, lambda x: optax.softmax_cross_entropy_with_integer_labels(x, y).mean(), x
    )
    assert any(r[1] == (N, C) and not r[2].startswith("from the argument") for r in rows)


# ------------------------------------------------------------------ compiled temporaries
# XLA writes out an intermediate it cannot fuse into a reduction (a converted copy of
# 16-bit logits, a masked copy, a boolean array). The softmax cross-entropy family is
# written so that neither its forward nor its backward pass allocates anything of the
# logits' size on XLA:CPU (on GPU, XLA fuses these anyway).

TEMP_CASES = {
    k: CASES[k] for k in ("sparse", "sparse_plain", "categorical", "categorical_plain", "kl")
}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name", sorted(TEMP_CASES))
def test_no_logits_sized_temporaries(rng, name, dtype):
    n, c = 256, 4096
    x = jnp.asarray(rng.standard_normal((n, c)), dtype)
    t = jnp.asarray(rng.dirichlet(np.ones(c), n), dtype)
    y = jnp.asarray(rng.integers(0, c, n), jnp.int32)
    w = jnp.asarray(rng.uniform(0.5, 2, c), jnp.float32)
    keep = jnp.asarray(rng.random(n) < 0.7)
    loss = TEMP_CASES[name]
    for fn in (loss, jax.grad(loss)):  # every input an argument, as in a training step
        compiled = jax.jit(fn).lower(x, t, y, w, keep).compile()
        temp = compiled.memory_analysis().temp_size_in_bytes
        assert temp < x.size * 4 / 8, (name, fn, temp)
