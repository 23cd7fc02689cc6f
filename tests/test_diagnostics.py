"""jaxloss.diagnostics against NumPy and hand-computed values."""

import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxloss import diagnostics


@pytest.mark.parametrize("bins", [1, 7, 50])
@pytest.mark.parametrize("range_", [None, (0.0, 3.0), (0.5, 1.0)])
def test_histogram_matches_numpy(rng, bins, range_):
    losses = rng.exponential(0.7, 500).astype(np.float32)
    edges, fractions = diagnostics.loss_histogram(losses, bins=bins, range=range_)
    counts, np_edges = np.histogram(losses, bins=bins, range=range_)
    np.testing.assert_allclose(edges, np_edges, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fractions, counts / losses.size, atol=1e-7)
    assert edges.shape == (bins + 1,) and fractions.shape == (bins,)


def test_histogram_by_hand_where_and_non_finite():
    losses = np.array([0.1, 0.2, 0.3, 1.5, 9.0, np.nan, np.inf, 0.4], np.float32)
    keep = np.array([True, True, True, True, True, True, True, False])
    edges, fractions = diagnostics.loss_histogram(losses, bins=2, range=(0.0, 2.0), where=keep)
    np.testing.assert_allclose(edges, [0, 1, 2])
    # 7 included; 3 in [0, 1), 1 in [1, 2]; 9, nan and inf fall in no bin
    np.testing.assert_allclose(fractions, [3 / 7, 1 / 7], rtol=1e-6)
    # range from the data: finite included values only
    edges, fractions = diagnostics.loss_histogram(losses, bins=3, where=keep)
    np.testing.assert_allclose(edges, np.linspace(0.1, 9.0, 4), rtol=1e-6)
    np.testing.assert_allclose(fractions, [4 / 7, 0, 1 / 7], rtol=1e-6)
    # edge cases: all equal, nothing included
    edges, fractions = diagnostics.loss_histogram(np.ones(4), bins=2)
    np.testing.assert_allclose(edges, [0.5, 1.0, 1.5])
    np.testing.assert_allclose(fractions, [0, 1])
    edges, fractions = diagnostics.loss_histogram(np.ones(4), bins=2, where=np.zeros(4, bool))
    np.testing.assert_allclose(fractions, [0, 0])


def test_histogram_is_jittable_and_vmappable(rng):
    losses = jnp.asarray(rng.exponential(1.0, (3, 100)), jnp.float32)
    f = jax.jit(lambda v: diagnostics.loss_histogram(v, bins=10, range=(0.0, 5.0)))
    e, fr = f(losses[0])
    e2, fr2 = diagnostics.loss_histogram(losses[0], bins=10, range=(0.0, 5.0))
    np.testing.assert_allclose(fr, fr2)
    _, batched = jax.vmap(lambda v: diagnostics.loss_histogram(v, bins=10, range=(0.0, 5.0)))(
        losses
    )
    np.testing.assert_allclose(
        batched[1], diagnostics.loss_histogram(losses[1], bins=10, range=(0.0, 5.0))[1]
    )
    # range=None works under jit as well (computed on device), and agrees with eager
    e3, fr3 = jax.jit(lambda v: diagnostics.loss_histogram(v, bins=4))(losses[0])
    e4, fr4 = diagnostics.loss_histogram(losses[0], bins=4)
    np.testing.assert_allclose(e3, e4, rtol=1e-6)
    np.testing.assert_allclose(fr3, fr4)
    assert float(fr3.sum()) == pytest.approx(1.0) and e3[0] == losses[0].min()


def test_histogram_errors():
    with pytest.raises(ValueError, match="bins must be >= 1"):
        diagnostics.loss_histogram(np.ones(3), bins=0)
    with pytest.raises(TypeError, match="bins must be a Python int"):
        diagnostics.loss_histogram(np.ones(3), bins=2.5)
    with pytest.raises(ValueError, match="low < high"):
        diagnostics.loss_histogram(np.ones(3), range=(2.0, 1.0))
    with pytest.raises(TypeError, match="where must be a boolean mask"):
        diagnostics.loss_histogram(np.ones(3), where=np.ones(3))
    with pytest.raises(ValueError, match="where has shape"):
        diagnostics.loss_histogram(np.ones(3), where=np.ones(4, bool))


def _ks_brute_force(a, b):
    points = np.concatenate([a, b])
    return max(abs(np.mean(a <= p) - np.mean(b <= p)) for p in points)


def test_compare_loss_distributions_by_hand(rng):
    train = np.array([0.1, 0.2, 0.3, 0.4])
    test = np.array([0.3, 0.5, 0.7, 0.9])
    s = diagnostics.compare_loss_distributions(train, test)
    assert s.train_mean == pytest.approx(0.25) and s.test_mean == pytest.approx(0.6)
    assert s.generalization_gap == pytest.approx(0.35)
    assert s.train_median == pytest.approx(0.25) and s.test_median == pytest.approx(0.6)
    assert s.ks_statistic == pytest.approx(0.75)  # at 0.4: F_train = 1, F_test = 0.25
    assert s.train_quantiles[0.5] == pytest.approx(0.25)
    assert s.spread_ratio == pytest.approx(
        np.subtract(*np.quantile(test, [0.75, 0.25]))
        / np.subtract(*np.quantile(train, [0.75, 0.25]))
    )
    assert "generalization gap 0.3500" in str(s) and "KS statistic 0.7500" in str(s)
    a, b = rng.normal(0, 1, 300), rng.normal(0.3, 1.5, 200)
    s = diagnostics.compare_loss_distributions(a, b)
    assert s.ks_statistic == pytest.approx(_ks_brute_force(a, b))
    same = diagnostics.compare_loss_distributions(a, a)
    assert same.ks_statistic == 0 and same.generalization_gap == 0 and same.ks_pvalue == 1.0


def test_ks_matches_scipy(rng):
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = rng.exponential(1.0, 2000), rng.exponential(1.2, 1500)
    s = diagnostics.compare_loss_distributions(a, b)
    ref = scipy_stats.ks_2samp(a, b, method="asymp")
    assert s.ks_statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert s.ks_pvalue == pytest.approx(ref.pvalue, rel=0.05, abs=1e-6)


def test_compare_drops_non_finite_and_rejects_empty():
    s = diagnostics.compare_loss_distributions([0.1, np.nan, 0.3], [np.inf, 0.2])
    assert s.train_count == 2 and s.test_count == 1
    with pytest.raises(ValueError, match="test_losses has no finite values"):
        diagnostics.compare_loss_distributions([0.1], [np.nan])
    with pytest.raises(ValueError, match="quantiles"):
        diagnostics.compare_loss_distributions([0.1], [0.2], quantiles=(0.5, 1.0))


def test_plot_writes_a_png_with_labelled_axes(tmp_path, rng):
    pytest.importorskip("matplotlib")
    path = tmp_path / "hist.png"
    fig = diagnostics.plot_loss_histograms(
        {"train": rng.exponential(0.3, 200), "test": rng.exponential(0.6, 100)},
        str(path),
        bins=20,
        log_y=True,
    )
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    ax = fig.axes[0]
    assert ax.get_xlabel() == "per-example cross-entropy loss"
    assert ax.get_ylabel() == "fraction of examples"
    assert ax.get_yscale() == "log"
    assert [t.get_text().split(" ")[0] for t in ax.get_legend().get_texts()] == ["train", "test"]
    # the fractions drawn are those of loss_histogram on shared bins
    fig = diagnostics.plot_loss_histograms({"a": [0.0, 1.0, 1.0, 2.0]}, bins=2, range=(0.0, 2.0))
    assert fig.axes[0].get_title() == "Per-example loss distribution"


def test_plot_without_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"'plots' extra: pip install -e '\.\[plots\]'"):
        diagnostics.plot_loss_histograms({"train": [0.1, 0.2]})


def test_plot_errors():
    pytest.importorskip("matplotlib")
    with pytest.raises(TypeError, match="non-empty dict"):
        diagnostics.plot_loss_histograms([0.1, 0.2])
    assert math.isfinite(diagnostics.compare_loss_distributions([0.1, 0.2], [0.3]).ks_pvalue)
