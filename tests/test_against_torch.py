"""Agreement with PyTorch where the definitions agree (skipped when torch is absent).

torch is not a dependency; `pip install torch` (CPU) runs these.
"""

import jax
import numpy as np
import pytest

import jaxloss

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(a, grad=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


CASES = [
    dict(),
    dict(weight=True),
    dict(ignore_index=-100),
    dict(label_smoothing=0.15),
    dict(weight=True, ignore_index=-100, label_smoothing=0.1),
]


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("case", CASES)
def test_integer_labels_match_torch_cross_entropy(reduction, case):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 6)).astype(np.float32)
    y = rng.integers(0, 6, 9)
    if "ignore_index" in case:
        y[[2, 5]] = -100
    w = rng.uniform(0.3, 3.0, 6).astype(np.float32)
    tx = _t(x, grad=True)
    kw = dict(
        weight=_t(w) if case.get("weight") else None,
        ignore_index=case.get("ignore_index", -100),
        label_smoothing=case.get("label_smoothing", 0.0),
        reduction=reduction,
    )
    want = F.cross_entropy(tx, torch.tensor(y), **kw)
    want.sum().backward()

    def ours(x):
        return jaxloss.sparse_categorical_cross_entropy(
            x,
            y,
            class_weights=w if case.get("weight") else None,
            ignore_index=case.get("ignore_index"),
            label_smoothing=case.get("label_smoothing", 0.0),
            reduction=reduction,
        )

    got, vjp = jax.vjp(ours, x)
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=2e-5, atol=1e-6)
    (grad,) = vjp(np.ones(np.shape(got), np.float32))
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("case", [dict(), dict(weight=True), dict(label_smoothing=0.2)])
def test_probability_targets_match_torch(reduction, case):
    """PyTorch divides probability targets' "mean" by N; sum and none agree."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 5)).astype(np.float32)
    t = rng.random((7, 5)).astype(np.float32)
    t /= t.sum(-1, keepdims=True)
    w = rng.uniform(0.3, 3.0, 5).astype(np.float32)
    tx = _t(x, grad=True)
    want = F.cross_entropy(
        tx,
        _t(t),
        weight=_t(w) if case.get("weight") else None,
        label_smoothing=case.get("label_smoothing", 0.0),
        reduction=reduction,
    )
    want.sum().backward()
    kw = dict(
        class_weights=w if case.get("weight") else None,
        label_smoothing=case.get("label_smoothing", 0.0),
        reduction=reduction,
    )
    got = jaxloss.categorical_cross_entropy(x, t, **kw)
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=2e-5, atol=1e-6)
    grad = jax.grad(lambda x: jaxloss.categorical_cross_entropy(x, t, **kw).sum())(x)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=2e-5, atol=1e-6)


def test_all_ignored_mean_is_zero_where_torch_is_nan():
    x = np.zeros((3, 4), np.float32)
    y = np.full(3, -100)
    assert torch.isnan(F.cross_entropy(_t(x), torch.tensor(y), ignore_index=-100))
    assert jaxloss.sparse_categorical_cross_entropy(x, y, ignore_index=-100, reduction="mean") == 0


def test_spatial_class_axis_matches_torch():
    """PyTorch puts classes on axis 1 for [N, C, d1, ...]; so does axis=1 here."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 3, 4)).astype(np.float32)
    y = rng.integers(0, 5, (2, 3, 4))
    want = F.cross_entropy(_t(x), torch.tensor(y), reduction="none").numpy()
    got = jaxloss.sparse_categorical_cross_entropy(x, y, axis=1)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("case", [dict(), dict(pos_weight=True), dict(weight_soft=True)])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_sigmoid_matches_torch_bce_with_logits(case, reduction):
    rng = np.random.default_rng(4)
    x = (3 * rng.standard_normal((6, 5))).astype(np.float32)
    z = (rng.random((6, 5)) < 0.4).astype(np.float32)
    if case.get("weight_soft"):
        z = rng.random((6, 5)).astype(np.float32)
    q = rng.uniform(0.5, 4, 5).astype(np.float32) if case.get("pos_weight") else None
    tx = _t(x, grad=True)
    want = F.binary_cross_entropy_with_logits(
        tx, _t(z), pos_weight=None if q is None else _t(q), reduction=reduction
    )
    want.sum().backward()
    got, vjp = jax.vjp(
        lambda x: jaxloss.sigmoid_cross_entropy(x, z, pos_weight=q, reduction=reduction), x
    )
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(
        vjp(np.ones(np.shape(got), np.float32))[0], tx.grad.numpy(), rtol=2e-5, atol=1e-6
    )


def test_bce_matches_torch_including_the_clamp():
    p = np.array([0.0, 1.0, 0.3, 0.999, 1e-30], np.float32)
    z = np.array([1.0, 0.0, 0.5, 1.0, 0.0], np.float32)
    tp = _t(p, grad=True)
    want = F.binary_cross_entropy(tp, _t(z), reduction="none")
    want.sum().backward()
    np.testing.assert_allclose(
        jaxloss.binary_cross_entropy(p, z), want.detach().numpy(), rtol=1e-5, atol=1e-6
    )
    g = jax.grad(lambda p: jaxloss.binary_cross_entropy(p, z).sum())(p)
    np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-4)


def test_kl_matches_torch_kl_div():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    t = rng.dirichlet(np.ones(6), 4).astype(np.float32)
    t[0, 2] = 0
    t[0] /= t[0].sum()
    log_p = np.asarray(jax.nn.log_softmax(x))
    want = F.kl_div(_t(log_p), _t(t), reduction="none").sum(-1).numpy()
    np.testing.assert_allclose(jaxloss.kl_divergence(x, t), want, rtol=2e-5, atol=1e-6)
    want = F.kl_div(_t(log_p), _t(t), reduction="batchmean").numpy()
    np.testing.assert_allclose(jaxloss.kl_divergence(x, t, reduction="mean"), want, rtol=2e-5)
