"""Invariants every loss keeps, from one shared table of cases: jit == eager (value and
gradient), vmap over examples == the batched call, ``axis`` == ``moveaxis`` (softmax
family), and masking with ``where`` == slicing the masked examples away."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss

N, C = 6, 5


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C)).astype(np.float32) * 2
    t = rng.dirichlet(np.ones(C), N).astype(np.float32)
    y = rng.integers(0, C, N).astype(np.int32)
    z = rng.random((N, C)).astype(np.float32)
    y2 = rng.standard_normal((N, C)).astype(np.float32)
    lt = np.log(rng.dirichlet(np.ones(C), N)).astype(np.float32)
    return {"x": x, "t": t, "y": y, "z": z, "y2": y2, "p": 1 / (1 + np.exp(-x)), "lt": lt}


# name: (function, first input, second input or None, per-example (softmax) or elementwise)
CASES = {
    "sparse": (jaxloss.sparse_categorical_cross_entropy, "x", "y", True),
    "sparse_options": (
        lambda x, y, **k: jaxloss.sparse_categorical_cross_entropy(
            x, y, class_weights=jnp.arange(1.0, C + 1), label_smoothing=0.1, z_loss=1e-2, **k
        ),
        "x",
        "y",
        True,
    ),
    "categorical": (jaxloss.categorical_cross_entropy, "x", "t", True),
    "categorical_options": (
        lambda x, t, **k: jaxloss.categorical_cross_entropy(
            x, t, class_weights=jnp.arange(1.0, C + 1), label_smoothing=0.2, **k
        ),
        "x",
        "t",
        True,
    ),
    "softmax_focal": (
        lambda x, y, **k: jaxloss.softmax_focal_loss(x, y, alpha=0.25, gamma=2.0, **k),
        "x",
        "y",
        True,
    ),
    "kl": (jaxloss.kl_divergence, "x", "t", True),
    "reverse_kl": (jaxloss.reverse_kl_divergence, "x", "t", True),
    "kl_with_logits": (
        lambda x, y2, **k: jaxloss.kl_divergence_with_logits(x, y2, temperature=3.0, **k),
        "x",
        "y2",
        True,
    ),
    "js": (jaxloss.js_divergence, "x", "t", True),
    "entropy": (jaxloss.entropy, "x", None, True),
    "sigmoid": (jaxloss.sigmoid_cross_entropy, "x", "z", False),
    "sigmoid_focal": (
        lambda x, z, **k: jaxloss.sigmoid_focal_loss(x, z, alpha=0.25, gamma=2.0, **k),
        "x",
        "z",
        False,
    ),
    "binary": (jaxloss.binary_cross_entropy, "p", "z", False),
    "nll": (
        lambda x, y, **k: jaxloss.nll_loss(x, y, class_weights=jnp.arange(1.0, C + 1), **k),
        "x",
        "y",
        True,
    ),
    "categorical_focal": (
        lambda x, t, **k: jaxloss.categorical_focal_loss(
            x, t, alpha=jnp.arange(1.0, C + 1), label_smoothing=0.1, **k
        ),
        "x",
        "t",
        True,
    ),
    "softmax_focal_smoothed": (
        lambda x, y, **k: jaxloss.softmax_focal_loss(x, y, label_smoothing=0.1, **k),
        "x",
        "y",
        True,
    ),
    "kl_log_targets": (jaxloss.kl_divergence_with_log_targets, "x", "lt", True),
    "generalized_kl": (jaxloss.generalized_kl_divergence, "x", "t", True),
}


def _case(name):
    fn, first, second, softmax = CASES[name]
    d = _inputs()
    args = (d[first],) if second is None else (d[first], d[second])
    return fn, args, softmax


def _close(a, b, rtol=2e-6, atol=1e-6):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_equals_eager(name):
    fn, args, _ = _case(name)

    def loss(*a):
        return fn(*a, reduction="mean")

    grad = jax.value_and_grad(loss)
    v, g = grad(*args)
    vj, gj = jax.jit(grad)(*args)
    _close(v, vj)
    _close(g, gj)
    _close(fn(*args), jax.jit(fn)(*args))


@pytest.mark.parametrize("name", sorted(CASES))
def test_vmap_equals_batch(name):
    fn, args, softmax = _case(name)
    if softmax:  # one example at a time: a batch of one

        def one(*a):
            return fn(*(v[None] for v in a))[0]
    else:  # elementwise losses take any shape

        def one(*a):
            return fn(*a)

    _close(jax.vmap(one)(*args), fn(*args))
    grads = jax.vmap(jax.grad(lambda *a: jnp.sum(one(*a))))(*args)
    _close(grads, jax.grad(lambda *a: jnp.sum(fn(*a)))(*args))


@pytest.mark.parametrize("name", sorted(k for k, v in CASES.items() if v[3]))
def test_axis_equals_moveaxis(name):
    fn, args, _ = _case(name)
    moved = tuple(a.T if a.ndim == 2 else a for a in args)  # classes first

    def loss(*a, **k):
        return jnp.sum(fn(*a, **k) * jnp.arange(1.0, N + 1))

    _close(fn(*moved, axis=0), fn(*args))
    g_moved = jax.grad(lambda x: loss(x, *moved[1:], axis=0))(moved[0])
    _close(g_moved.T, jax.grad(lambda x: loss(x, *args[1:]))(args[0]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_masking_equals_slicing(name, reduction="mean"):  # "sum" is the same sum, undivided
    fn, args, softmax = _case(name)
    keep = np.array([True, False, True, True, False, True])
    # a masked example may hold anything, NaN included
    bad = tuple(
        np.where(keep.reshape((N,) + (1,) * (a.ndim - 1)), a, np.nan).astype(a.dtype)
        if a.dtype.kind == "f"
        else a
        for a in args
    )
    where = keep if softmax else np.broadcast_to(keep[:, None], (N, C))
    masked = fn(*bad, where=where, reduction=reduction)
    sliced = fn(*(a[keep] for a in args), reduction=reduction)
    _close(masked, sliced)
    g_masked = jax.grad(lambda x: fn(x, *bad[1:], where=where, reduction=reduction))(bad[0])
    g_sliced = jax.grad(lambda x: fn(x, *(a[keep] for a in args[1:]), reduction=reduction))(
        args[0][keep]
    )
    assert np.all(np.asarray(g_masked)[~keep] == 0)
    _close(np.asarray(g_masked)[keep], g_sliced)


@pytest.mark.parametrize("name", sorted(CASES))
def test_integer_sample_weights_equal_repeated_examples(name):
    """``sample_weight`` multiplies each loss and its weight in the mean: integer weights
    are the same as repeating each example that many times."""
    fn, args, softmax = _case(name)
    s = np.array([1, 0, 2, 1, 3, 1])
    sw = s.astype(np.float32) if softmax else np.broadcast_to(s[:, None], (N, C)).astype(np.float32)
    repeated = tuple(np.repeat(a, s, axis=0) for a in args)
    _close(fn(*args, sample_weight=sw), sw * np.asarray(fn(*args)))
    for reduction in ("sum", "mean"):
        _close(fn(*args, sample_weight=sw, reduction=reduction), fn(*repeated, reduction=reduction))
