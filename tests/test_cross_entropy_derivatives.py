"""The hand-derived derivative rules of the softmax cross-entropy family: against
autodiff of the reference formula and float64 finite differences (to second order, in
both modes), through every JAX autodiff API, and what reverse mode keeps."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss
from jaxloss.testing import check_derivatives
from tests import reference as ref

CE = jaxloss.categorical_cross_entropy
SPARSE = jaxloss.sparse_categorical_cross_entropy


def _inputs(rng, n=4, c=5):
    x = rng.standard_normal((n, c))
    t = rng.random((n, c))
    t = t / t.sum(-1, keepdims=True)
    y = rng.integers(0, c, n).astype(np.int32)
    w = rng.uniform(0.5, 2.0, c)
    return x, t, y, w


def _masked_reference(loss_fn, weight_fn, where, reduction):
    """Reference reduction: per-example losses, masked, then sum or weighted mean."""

    def reduce(*args):
        losses = loss_fn(*args)
        weights = weight_fn(*args)
        if where is not None:
            losses = jnp.where(where, losses, 0)
            weights = jnp.where(where, weights, 0)
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        return losses.sum() / weights.sum()

    return reduce


# Second order on the richest option set with the weighted mean (one per loss); first
# order everywhere else (the suite's time budget).
def _order(opts, reduction):
    return 2 if opts == OPTS[-1] and reduction == "mean" else 1


OPTS = [
    dict(),
    dict(label_smoothing=0.2),
    dict(z_loss=0.05),
    dict(label_smoothing=0.1, z_loss=0.02),
]


CASES = [(OPTS[0], "none"), (OPTS[1], "mean"), (OPTS[2], "none"), (OPTS[3], "mean"),
         (OPTS[3], "none")]  # fmt: skip


@pytest.mark.parametrize("opts,reduction", CASES)
def test_categorical_rules_against_autodiff_and_finite_differences(rng, opts, reduction):
    x, t, _, w = _inputs(rng)
    where = np.array([True, False, True, True]) if reduction == "mean" else None

    def fn(x, t, w):
        return CE(x, t, class_weights=w, where=where, reduction=reduction, **opts)

    reference = _masked_reference(
        lambda x, t, w: ref.jnp_categorical(x, t, w, **opts),
        lambda x, t, w: jnp.sum(t * w, -1),
        where,
        reduction,
    )
    report = check_derivatives(fn, reference, x, t, w, order=_order(opts, reduction))
    if _order(opts, reduction) == 2:
        assert {"fwd", "rev", "fwd-rev", "rev-fwd", "fwd-fwd", "rev-rev"} <= set(report)


@pytest.mark.parametrize("opts,reduction", CASES)
def test_sparse_rules_against_autodiff_and_finite_differences(rng, opts, reduction):
    x, _, y, w = _inputs(rng)
    y[2] = -100
    one_hot = np.eye(5)[np.where(y >= 0, y, 0)]

    def fn(x, w):
        return SPARSE(x, y, class_weights=w, ignore_index=-100, reduction=reduction, **opts)

    reference = _masked_reference(
        lambda x, w: ref.jnp_categorical(x, one_hot, w, **opts),
        lambda x, w: w[np.where(y >= 0, y, 0)],
        y != -100,
        reduction,
    )
    check_derivatives(fn, reference, x, w, order=_order(opts, reduction))


def test_rules_with_axis_and_no_class_weights(rng):
    x = rng.standard_normal((3, 5, 2))
    t = rng.random((3, 5, 2))
    check_derivatives(
        lambda x, t: CE(x, t, axis=1, label_smoothing=0.1, z_loss=0.1),
        lambda x, t: ref.jnp_categorical(x, t, axis=1, label_smoothing=0.1, z_loss=0.1),
        x,
        t,
        order=1,
    )
    y = rng.integers(0, 5, (3, 2)).astype(np.int32)
    check_derivatives(
        lambda x: SPARSE(x, y, axis=1, reduction="sum"),
        lambda x: ref.jnp_categorical(x, np.moveaxis(np.eye(5)[y], -1, 1), axis=1).sum(),
        x,
        order=1,
    )


def test_third_order_forward_mode(rng):
    x, t, y, _ = _inputs(rng, 3, 4)
    check_derivatives(
        lambda x: SPARSE(x, y, z_loss=0.1, reduction="sum"),
        lambda x: ref.jnp_categorical(x, np.eye(4)[y], z_loss=0.1).sum(),
        x,
        order=3,
        modes=("fwd",),
    )


@pytest.mark.parametrize("sparse", [True, False])
def test_every_autodiff_api_agrees_with_reference(rng, sparse):
    x, t, y, w = (a.astype(np.float32) if a.dtype == np.float64 else a for a in _inputs(rng))
    target = y if sparse else t
    dense = np.eye(5, dtype=np.float32)[y] if sparse else t
    fn = SPARSE if sparse else CE
    kw = dict(label_smoothing=0.1, z_loss=0.01)

    def ours(x):
        return fn(x, target, class_weights=w, reduction="mean", **kw)

    def plain(x):
        losses = ref.jnp_categorical(x, dense, w, **kw)
        return losses.sum() / jnp.sum(dense * w)

    close = functools.partial(np.testing.assert_allclose, rtol=2e-5, atol=1e-6)
    close(jax.grad(ours)(x), jax.grad(plain)(x))
    for a, b in zip(jax.value_and_grad(ours)(x), jax.value_and_grad(plain)(x)):
        close(a, b)
    v = rng.standard_normal(x.shape).astype(np.float32)
    for a, b in zip(jax.jvp(ours, (x,), (v,)), jax.jvp(plain, (x,), (v,))):
        close(a, b)
    close(jax.jacfwd(ours)(x), jax.jacfwd(plain)(x))
    close(jax.jacrev(ours)(x), jax.jacrev(plain)(x))
    close(jax.hessian(ours)(x), jax.hessian(plain)(x))
    close(jax.jit(jax.grad(ours))(x), jax.grad(plain)(x))
    close(jax.linearize(ours, x)[1](v), jax.jvp(plain, (x,), (v,))[1])
    # per-example gradients with vmap
    per_example = jax.vmap(jax.grad(lambda xi, ti: fn(xi, ti, class_weights=w, **kw)))
    per_example_plain = jax.vmap(jax.grad(lambda xi, di: ref.jnp_categorical(xi, di, w, **kw)))
    close(per_example(x, target), per_example_plain(x, dense))
    # Hessian-vector product the usual way: forward over reverse
    hvp = jax.jvp(jax.grad(ours), (x,), (v,))[1]
    close(hvp, jax.jvp(jax.grad(plain), (x,), (v,))[1])
