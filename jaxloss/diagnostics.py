"""Per-example loss diagnostics: histograms, train/test comparisons, and their plots.

The distribution of per-example cross-entropy values (``reduction="none"``) says more
than its mean. Its histogram (x: loss, y: fraction of examples) compared between the
training and the test set shows:

* **a good fit**: both concentrated near 0, the test distribution close to the
  training one;
* **over-fitting**: training losses piled up near 0 while the test distribution sits
  to the right of it or spreads into a long right tail (examples the model is
  confidently wrong about): a large generalization gap and a large KS statistic;
* **under-fitting**: both distributions far from 0 and alike (a small gap, a large
  mean): the model has not learned the training set either;
* **two models**: the one whose test distribution lies further left, with less mass
  in the far tail, generalizes better, even where the means are close;
* **tuning**: a long tail of a few very wrong examples points at label noise or a
  minority class (try class weights or a focal loss); a shifted bulk points at
  capacity or regularization.

:func:`loss_histogram` is jit-able and runs on device; :func:`compare_loss_distributions`
and :func:`plot_loss_histograms` run on the host (the latter needs matplotlib, the
``plots`` extra: ``pip install -e ".[plots]"`` from the repository root, or
``pip install matplotlib``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _checks, _numerics

__all__ = ["loss_histogram", "compare_loss_distributions", "LossComparison", "plot_loss_histograms"]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _check_bins(bins: Any, fn: str) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer):
        raise TypeError(f"{fn}: bins must be a Python int (the number of bins), got {bins!r}")
    if bins < 1:
        raise ValueError(f"{fn}: bins must be >= 1, got {bins}")
    return int(bins)


def _check_range(range: Any, fn: str) -> tuple[float, float] | None:
    if range is None:
        return None
    try:
        lo, hi = (float(v) for v in range)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{fn}: range must be a pair of numbers (low, high), got {range!r}") from e
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{fn}: range must be finite with low < high, got {range!r}")
    return lo, hi


def loss_histogram(
    losses: ArrayLike,
    *,
    bins: int = 50,
    range: tuple[float, float] | None = None,
    where: ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
    r"""Histogram of per-example losses, as fractions of the included examples.

    .. math:: f_k = \frac{\#\{i : w_i,\ e_k \le \ell_i < e_{k+1}\}}{\#\{i : w_i\}}

    (the last bin also holds its right edge, as in ``numpy.histogram``). Examples
    outside ``range``, and NaN or infinite losses, fall in no bin but still count in
    the denominator, so the fractions sum to less than 1 exactly when some included
    examples were not binned. With ``range=None`` the range is the smallest and largest
    finite included loss (widened by 0.5 each way if they are equal, ``(0, 1)`` if
    there are none), computed on device: the function is jit-able either way
    (``bins`` must be a static int).

    Args:
      losses: per-example losses, any shape (flattened), e.g. from
        ``reduction="none"``.
      bins: the number of equal-width bins.
      range: ``(low, high)`` of the bins; None to use the data's.
      where: boolean mask broadcastable to ``losses``: which examples to include.

    Returns:
      ``(edges, fractions)``: ``[bins + 1]`` bin edges and ``[bins]`` fractions, float32
      (float64 for float64 losses).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxloss.diagnostics import loss_histogram
      >>> edges, fractions = loss_histogram(jnp.array([0.1, 0.2, 0.3, 1.5]), bins=2,
      ...                                   range=(0.0, 2.0))
      >>> print(edges, fractions)
      [0. 1. 2.] [0.75 0.25]
    """
    fn = "loss_histogram"
    bins = _check_bins(bins, fn)
    range = _check_range(range, fn)
    losses = _checks.as_array(losses, "losses", fn)
    if not jnp.issubdtype(losses.dtype, jnp.floating):
        losses = losses.astype(jnp.float32)
    if where is not None:
        where = _checks.as_array(where, "where", fn)
        if where.dtype != jnp.bool_:
            raise TypeError(f"{fn}: where must be a boolean mask, got dtype {where.dtype}")
        try:
            where = jnp.broadcast_to(where, losses.shape)
        except ValueError as e:
            raise ValueError(
                f"{fn}: where has shape {tuple(where.shape)}, which does not broadcast to "
                f"losses' shape {tuple(losses.shape)}"
            ) from e
    return _histogram(losses, where, bins=bins, range=range)


@functools.partial(jax.jit, static_argnames=("bins", "range"))
def _histogram(losses, where, *, bins, range):
    dtype = _numerics.compute_dtype(losses)
    x = losses.astype(dtype).ravel()
    include = jnp.ones(x.shape, bool) if where is None else where.ravel()
    finite = include & jnp.isfinite(x)
    if range is None and x.size == 0:  # no examples: the documented (0, 1)
        range = (0.0, 1.0)
    if range is None:
        any_finite = jnp.any(finite)
        lo = jnp.where(any_finite, jnp.min(jnp.where(finite, x, jnp.inf)), 0)
        hi = jnp.where(any_finite, jnp.max(jnp.where(finite, x, -jnp.inf)), 1)
        same = lo == hi
        lo, hi = jnp.where(same, lo - 0.5, lo), jnp.where(same, hi + 0.5, hi)
    else:
        lo, hi = jnp.asarray(range[0], dtype), jnp.asarray(range[1], dtype)
    edges = jnp.linspace(lo, hi, bins + 1, dtype=dtype)
    inside = finite & (x >= lo) & (x <= hi)
    index = jnp.clip(jnp.floor((x - lo) / (hi - lo) * bins), 0, bins - 1).astype(jnp.int32)
    counts = jnp.zeros(bins, dtype).at[jnp.where(inside, index, 0)].add(inside.astype(dtype))
    total = jnp.sum(include.astype(dtype))
    return edges, counts / jnp.maximum(total, 1)


@dataclasses.dataclass(frozen=True)
class LossComparison:
    """How a test set's per-example losses compare with the training set's.

    Fields are plain floats (host values). ``generalization_gap`` is
    ``test_mean - train_mean``; ``spread_ratio`` is the test interquartile range over
    the training one (above 1: the test losses are more spread out); ``ks_statistic``
    is the two-sample Kolmogorov-Smirnov statistic (the largest distance between the
    two empirical CDFs, 0 for identical samples, 1 for disjoint ones) and
    ``ks_pvalue`` its asymptotic p-value.
    """

    train_mean: float
    test_mean: float
    train_median: float
    test_median: float
    train_quantiles: dict[float, float]
    test_quantiles: dict[float, float]
    generalization_gap: float
    spread_ratio: float
    ks_statistic: float
    ks_pvalue: float
    train_count: int
    test_count: int

    def __str__(self) -> str:
        rows = [
            f"{'':>12s} {'train':>10s} {'test':>10s}",
            f"{'mean':>12s} {self.train_mean:10.4f} {self.test_mean:10.4f}",
        ]
        for q in self.train_quantiles:
            rows.append(
                f"{f'q{round(100 * q)}':>12s} {self.train_quantiles[q]:10.4f} "
                f"{self.test_quantiles[q]:10.4f}"
            )
        rows.append(f"{'examples':>12s} {self.train_count:10d} {self.test_count:10d}")
        rows.append(
            f"generalization gap {self.generalization_gap:.4f}, spread ratio "
            f"{self.spread_ratio:.2f}, KS statistic {self.ks_statistic:.4f} "
            f"(p = {self.ks_pvalue:.3g})"
        )
        return "\n".join(rows)


def _host_losses(values, name, fn):
    a = np.asarray(values, np.float64).ravel()
    a = a[np.isfinite(a)]
    if a.size == 0:
        raise ValueError(f"{fn}: {name} has no finite values")
    return a


def ks_2samp_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic ``max_x |F_a(x) - F_b(x)|``."""
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / a.size
    cdf_b = np.searchsorted(b, points, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _kolmogorov_survival(x: float) -> float:
    """``P(K > x)`` for the Kolmogorov distribution (the asymptotic KS p-value)."""
    if x <= 0:
        return 1.0
    if x < 0.3:  # the series converges slowly here; the value is 1 to 1e-6
        return 1.0
    total = sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101))
    return float(min(1.0, max(0.0, 2 * total)))


def compare_loss_distributions(
    train_losses: ArrayLike, test_losses: ArrayLike, *, quantiles: Sequence[float] = QUANTILES
) -> LossComparison:
    r"""Summarizes how per-example test losses differ from training losses.

    .. math::
        \text{gap} = \bar\ell_\text{test} - \bar\ell_\text{train},\qquad
        D = \sup_x |F_\text{train}(x) - F_\text{test}(x)|

    How to read it (see also the module docstring):

    * a **small gap and a small KS statistic** with low losses: the model generalizes;
    * a **shifted** test distribution (large gap, test median well above the training
      median) suggests over-fitting: the model fits training examples it has seen much
      better than new ones. More data, regularization or early stopping help;
    * a **widened** test distribution (``spread_ratio`` well above 1, a heavy upper
      quantile) with a similar median suggests a subset of test examples the model is
      confidently wrong about: a distribution shift, rare classes or label noise;
    * **both high and alike**: under-fitting; the model needs capacity or training.

    The KS statistic is scale-free (0 to 1), so it compares across datasets and models;
    with thousands of examples a p-value below 0.01 means the two distributions differ
    beyond sampling noise. Non-finite losses are dropped.

    Args:
      train_losses: per-example training losses (any shape, flattened).
      test_losses: per-example test losses.
      quantiles: the quantiles to report, in (0, 1).

    Returns:
      A :class:`LossComparison`; ``print`` it for a small table.

    Examples:
      >>> import numpy as np
      >>> from jaxloss.diagnostics import compare_loss_distributions
      >>> summary = compare_loss_distributions(np.array([0.1, 0.2, 0.3, 0.4]),
      ...                                      np.array([0.3, 0.5, 0.7, 0.9]))
      >>> round(summary.generalization_gap, 4), summary.ks_statistic
      (0.35, 0.75)
    """
    fn = "compare_loss_distributions"
    train = _host_losses(train_losses, "train_losses", fn)
    test = _host_losses(test_losses, "test_losses", fn)
    qs = tuple(float(q) for q in quantiles)
    if not all(0 < q < 1 for q in qs):
        raise ValueError(f"{fn}: quantiles must be in (0, 1), got {quantiles!r}")

    def iqr(a):
        return float(np.quantile(a, 0.75) - np.quantile(a, 0.25))

    d = ks_2samp_statistic(train, test)
    en = math.sqrt(train.size * test.size / (train.size + test.size))
    train_iqr = iqr(train)
    return LossComparison(
        train_mean=float(train.mean()),
        test_mean=float(test.mean()),
        train_median=float(np.median(train)),
        test_median=float(np.median(test)),
        train_quantiles={q: float(np.quantile(train, q)) for q in qs},
        test_quantiles={q: float(np.quantile(test, q)) for q in qs},
        generalization_gap=float(test.mean() - train.mean()),
        spread_ratio=iqr(test) / train_iqr if train_iqr > 0 else math.inf,
        ks_statistic=d,
        ks_pvalue=_kolmogorov_survival((en + 0.12 + 0.11 / en) * d),
        train_count=int(train.size),
        test_count=int(test.size),
    )


def plot_loss_histograms(
    losses: Mapping[str, ArrayLike],
    path: str | None = None,
    *,
    bins: int = 50,
    range: tuple[float, float] | None = None,
    title: str | None = None,
    xlabel: str = "per-example cross-entropy loss",
    log_y: bool = False,
):
    """Plots the histograms of several sets of per-example losses on shared bins.

    The x axis is the loss, the y axis the fraction of each set's examples in the bin,
    so sets of different sizes compare directly (typically ``{"train": ..., "test":
    ...}``, or two models' test losses).

    Args:
      losses: name -> per-example losses.
      path: where to save a PNG (None: do not save).
      bins: the number of bins, shared by every set.
      range: ``(low, high)``; default: from 0 (or the smallest loss, if negative) to
        the largest finite loss over every set.
      title: the figure's title.
      xlabel: the x axis' label.
      log_y: a logarithmic y axis, which shows the tails (the few confidently wrong
        examples) next to the bulk near 0.

    Returns:
      The ``matplotlib.figure.Figure``.

    Raises:
      ImportError: when matplotlib is not installed, naming the extra to install.
    """
    fn = "plot_loss_histograms"
    try:  # a bare Figure draws and saves without pyplot or a display
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(
            f"{fn} needs matplotlib, jaxloss's 'plots' extra: pip install -e '.[plots]' from "
            "the jaxloss repository root, or pip install matplotlib"
        ) from e
    if not isinstance(losses, Mapping) or not losses:
        raise TypeError(f"{fn}: losses must be a non-empty dict of name -> losses")
    bins = _check_bins(bins, fn)
    values = {name: _host_losses(v, f"losses[{name!r}]", fn) for name, v in losses.items()}
    if range is None:
        lo = min(0.0, min(float(v.min()) for v in values.values()))
        hi = max(float(v.max()) for v in values.values())
        range = (lo, hi if hi > lo else lo + 1.0)
    range = _check_range(range, fn)
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.subplots()
    for i, (name, v) in enumerate(values.items()):
        edges, fractions = loss_histogram(v, bins=bins, range=range)
        edges, fractions = np.asarray(edges), np.asarray(fractions)
        color = f"C{i}"
        label = f"{name} (mean {v.mean():.3f}, n={v.size})"
        ax.stairs(fractions, edges, fill=True, alpha=0.35, color=color, label=label)
        ax.stairs(fractions, edges, linewidth=1.2, color=color)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of examples")
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title or "Per-example loss distribution")
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
