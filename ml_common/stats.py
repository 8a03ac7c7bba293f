"""The one bootstrap interval helper every level uses, with one default number of resamples.

Two cases, decided by what the independent units are:

- **Independent entries** (one value per user, per world, a paired difference per world):
  :func:`scipy.stats.bootstrap`, percentile method, statistic ``mean`` unless told otherwise.
- **Clusters** (transactions of one card, interactions of one user): whole clusters are drawn with
  replacement and a row weighs as often as its cluster was drawn. SciPy has no cluster bootstrap,
  so this part is written by hand (a loop of multinomial draws) and tested against SciPy on
  one-row clusters, where both must agree. The statistic is a function of the row weights and may
  return several numbers at once (e.g. the AP of every model on the same draws, so differences
  between models are paired).

Same ``seed`` → same interval, whatever else runs in the process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

#: Resamples for every interval in the project unless a caller has a measured reason to differ:
#: the percentile bounds' Monte Carlo error is then a few percent of the interval's width.
N_RESAMPLES = 2000
#: Coverage of every interval unless said otherwise.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class BootstrapInterval:
    """A percentile bootstrap interval. ``low``/``high`` are floats, or arrays for a statistic
    that returns several numbers; unpacks as ``low, high = bootstrap_ci(...)``."""

    estimate: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray
    resamples: int  # resamples that counted (a cluster draw whose statistic is NaN is dropped)
    confidence: float

    def __iter__(self) -> Iterator[float | np.ndarray]:
        return iter((self.low, self.high))

    def as_list(self) -> list[float]:
        """``[low, high]`` as plain floats (JSON), for a one-number statistic."""
        return [float(self.low), float(self.high)]


def _scalar_or_array(values: np.ndarray) -> float | np.ndarray:
    return float(values) if np.ndim(values) == 0 else np.asarray(values, dtype=float)


def bootstrap_ci(
    values: np.ndarray | list[float] | None = None,
    *,
    clusters: np.ndarray | list | None = None,
    statistic: Callable[..., float | np.ndarray] | None = None,
    resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> BootstrapInterval:
    """Percentile bootstrap interval.

    Args:
        values: one number per unit (or per row when ``clusters`` is given).
        clusters: one cluster label per row; when given, whole clusters are resampled.
        statistic: without ``clusters``, a SciPy-style ``statistic(sample, axis=...)`` (default
            ``np.mean``); with ``clusters``, ``statistic(weights)`` of the per-row weights of one
            draw, returning a number or a 1-D array (default: the weighted mean of ``values``).
        resamples: bootstrap resamples (default :data:`N_RESAMPLES`).
        confidence: coverage (default :data:`CONFIDENCE`).
        seed: the random generator's seed.

    Returns:
        The interval; with constant ``values`` (nothing to resample) ``low == high == mean``.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if clusters is not None:
        return _cluster_bootstrap(values, clusters, statistic, resamples, confidence, seed)
    if values is None:
        raise ValueError("bootstrap_ci needs values (or clusters and a statistic)")
    sample = np.asarray(values, dtype=float)
    statistic = statistic or np.mean
    estimate = _scalar_or_array(statistic(sample, axis=-1)) if len(sample) else float("nan")
    if len(sample) < 2 or np.all(sample == sample[0]):
        # SciPy warns and returns NaN on a degenerate sample; the interval is the point itself.
        return BootstrapInterval(estimate, estimate, estimate, 0, confidence)
    from scipy import stats  # here, not at import: slim serving images import N_RESAMPLES only

    result = stats.bootstrap(
        (sample,),
        statistic,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return BootstrapInterval(
        estimate, float(interval.low), float(interval.high), resamples, confidence
    )


def _cluster_bootstrap(
    values: np.ndarray | list[float] | None,
    clusters: np.ndarray | list,
    statistic: Callable[..., float | np.ndarray] | None,
    resamples: int,
    confidence: float,
    seed: int,
) -> BootstrapInterval:
    labels, row_cluster = np.unique(np.asarray(clusters), return_inverse=True)
    if statistic is None:
        if values is None:
            raise ValueError("a cluster bootstrap needs values or a statistic of the row weights")
        sample = np.asarray(values, dtype=float)

        def statistic(weights: np.ndarray) -> float:
            return float(np.average(sample, weights=weights)) if weights.sum() else float("nan")

    estimate = _scalar_or_array(np.asarray(statistic(np.ones(len(row_cluster))), dtype=float))
    rng = np.random.default_rng(seed)
    n = len(labels)
    uniform = np.full(n, 1.0 / n)
    draws = []
    for _ in range(resamples):
        weights = rng.multinomial(n, uniform)[row_cluster]
        value = np.asarray(statistic(weights), dtype=float)
        if not np.isnan(value).any():
            draws.append(value)
    if not draws:
        nan = estimate * np.nan
        return BootstrapInterval(estimate, nan, nan, 0, confidence)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(draws), [alpha, 1.0 - alpha], axis=0)
    return BootstrapInterval(
        estimate, _scalar_or_array(low), _scalar_or_array(high), len(draws), confidence
    )
