"""The drift alarm as a sequential test: Page's CUSUM on the daily anomaly-tail rate.

Why this test (checkable from first principles, not fitted to one burst):

- Each day ``t`` the monitor counts the payments above a tail threshold (the 99.5 % isolation-forest
  score of reference traffic). On stable traffic the count is binomial with the reference's rate
  ``mu0``, widened by an over-dispersion factor ``phi`` (days differ more than coin flips:
  customers, terminals and fraud waves move together). Both ``mu0`` and ``phi`` are estimated on
  **calibration days** that did not set the threshold, from the champion's own training period.
- Not every movement of the tail is worth a page: a population-wide change (the seasonal rise in
  spending, in this simulator) moves it too, by up to ~30 %. The **tolerance** ``tau`` says how
  much relative rise is harmless; the test standardises against that edge,
  ``z_t = (rate_t - (1 + tau) mu0) / sqrt(phi · mu0 (1 - mu0) / n_t)``, so ``z_t`` is ≈ N(0, 1)
  for a tail exactly ``tau`` above the reference and negative below it.
- Page's CUSUM ``S_t = max(0, S_{t-1} + z_t - k)`` accumulates small persistent excesses (a new
  pattern adds a few dozen tail payments a day, every day) and forgets noise; the alarm is
  ``S_t ≥ h``. ``k`` is half the shift to detect fastest (``k = 0.5``: one standard deviation).
- ``h`` comes from the **false-alarm budget**: the in-control average run length (mean days
  between false alarms) of a CUSUM of N(0, 1) values is given by Siegmund's approximation
  ``ARL0 ≈ (exp(2k(h + 1.166)) - 2k(h + 1.166) - 1) / (2k²)``; :func:`threshold_for_budget` solves
  it for ``ARL0 = budget``: at most one false alarm per ``budget`` days while the tail stays
  within the tolerance (fewer on truly stable days). The scenario matrix then measures the real
  false-alarm rate on stable and seasonal days, and the smallest pattern volume it still catches:
  the tolerance is the price of not paging on harmless change.

Written by hand to teach it (a dozen lines); :func:`siegmund_arl` is checked against a Monte Carlo
run of the same recursion in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def siegmund_arl(k: float, h: float) -> float:
    """Siegmund's approximation of a one-sided CUSUM's in-control average run length (days)."""
    if k <= 0:
        raise ValueError("k must be positive")
    b = 2 * k * (h + 1.166)
    return (math.exp(b) - b - 1) / (2 * k * k)


def threshold_for_budget(k: float, budget_days: float) -> float:
    """The decision interval ``h`` whose in-control average run length is ``budget_days``."""
    if budget_days <= 1:
        raise ValueError("the false-alarm budget must be more than one day between alarms")
    lo, hi = 0.0, 100.0
    for _ in range(100):  # bisection: the ARL grows monotonically with h
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if siegmund_arl(k, mid) < budget_days else (lo, mid)
    return hi


@dataclass
class TailCusum:
    """Page's CUSUM of standardised daily tail rates.

    Args:
        mu0: tail rate expected on stable days (from calibration days).
        phi: over-dispersion of the daily count relative to a binomial (≥ 1).
        k: reference value (half the standardised shift to detect fastest).
        h: decision interval (from :func:`threshold_for_budget`).
        tolerance: relative rise of the tail rate treated as harmless.
    """

    mu0: float
    phi: float
    k: float
    h: float
    tolerance: float = 0.0
    statistic: float = 0.0

    @classmethod
    def calibrate(
        cls,
        tail_counts: list[int],
        day_sizes: list[int],
        k: float,
        budget_days: float,
        tolerance: float = 0.0,
    ) -> TailCusum:
        """Estimate ``mu0`` and ``phi`` from calibration days' tail counts and day sizes."""
        counts, sizes = np.asarray(tail_counts, float), np.asarray(day_sizes, float)
        if len(counts) < 2 or sizes.min() <= 0:
            raise ValueError("calibrating the alarm needs at least two non-empty days")
        mu0 = max(float(counts.sum() / sizes.sum()), 1.0 / float(sizes.sum()))
        binomial_var = mu0 * (1 - mu0) / sizes
        # Pearson's dispersion estimate, never below the binomial's own spread.
        phi = max(1.0, float(np.mean((counts / sizes - mu0) ** 2 / binomial_var)))
        h = threshold_for_budget(k, budget_days)
        return cls(mu0=mu0, phi=phi, k=k, h=h, tolerance=tolerance)

    def standardise(self, tail_count: int, n: int) -> float:
        """``z`` of one day's tail count."""
        if n <= 0:
            return 0.0
        sd = math.sqrt(self.phi * self.mu0 * (1 - self.mu0) / n)
        return (tail_count / n - (1 + self.tolerance) * self.mu0) / sd

    def update(self, tail_count: int, n: int) -> tuple[float, bool]:
        """Add one day; return ``(S_t, S_t ≥ h)``."""
        self.statistic = max(0.0, self.statistic + self.standardise(tail_count, n) - self.k)
        return self.statistic, self.statistic >= self.h

    def reset(self) -> None:
        """Start again from 0 (after an alarm is handled by a new champion)."""
        self.statistic = 0.0


# -- the card-concentration alarm ------------------------------------------------------------
#
# Fraud clusters by card (a tested card makes 6-14 payments in half an hour; a leaked card a
# third of its payments for two weeks), legitimate anomalies do not: on stable days a card with
# several payments in the anomaly tail on one day is rare. The second statistic counts, each day,
# the cards with at least ``m`` tail payments. Such counts are small (0-2 a day), so a normal
# approximation would be wrong; the CUSUM below is the exact Poisson one (Lucas 1985):
#
#   S_t = max(0, S_{t-1} + C_t - k),  k = (lam1 - lam0) / ln(lam1 / lam0),
#
# the likelihood-ratio CUSUM for a rise of the daily rate from ``lam0`` to ``lam1``, with ``h``
# chosen so that the in-control average run length, computed exactly by a Markov chain on S's
# grid (below), meets the false-alarm budget.

_GRID = 20  # S moves on multiples of 1/20: k is rounded up to that grid (a slightly slower test)


def poisson_cusum_arl(lam0: float, k: float, h: float) -> float:
    """Exact average run length (days) of the Poisson CUSUM above while the rate is ``lam0``.

    ``k`` and ``h`` are rounded up to multiples of 1/20; S's states below ``h`` form a Markov
    chain, and the expected days to absorption solve ``(I - Q) L = 1`` (Brook & Evans 1972).
    """
    from scipy import stats

    k_steps, n_states = math.ceil(k * _GRID - 1e-9), max(1, math.ceil(h * _GRID - 1e-9))
    counts = np.arange(0, n_states // _GRID + k_steps // _GRID + 3)
    pmf = stats.poisson.pmf(counts, lam0)
    Q = np.zeros((n_states, n_states))
    for i in range(n_states):
        for c, p in zip(counts, pmf, strict=True):
            j = max(0, i + c * _GRID - k_steps)
            if j < n_states:
                Q[i, j] += p
    run_lengths = np.linalg.solve(np.eye(n_states) - Q, np.ones(n_states))
    return float(run_lengths[0])


def poisson_threshold_for_budget(lam0: float, k: float, budget_days: float) -> float:
    """The smallest ``h`` on the 1/20 grid whose in-control run length is at least the budget."""
    if budget_days <= 1:
        raise ValueError("the false-alarm budget must be more than one day between alarms")
    lo, hi = 1, _GRID
    while poisson_cusum_arl(lam0, k, hi / _GRID) < budget_days:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # bisection on grid steps: the run length grows with h
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if poisson_cusum_arl(lam0, k, mid / _GRID) >= budget_days else (mid, hi)
    return hi / _GRID


@dataclass
class CardCusum:
    """Poisson CUSUM of the daily number of cards with several payments in the anomaly tail.

    Args:
        lam0: cards a day expected on stable days (a 95 % upper bound from calibration days).
        lam1: the raised rate the test is tuned to detect fastest (``lam0 + shift``).
        k: reference value, ``(lam1 - lam0) / ln(lam1 / lam0)`` rounded up to 1/20.
        h: decision interval for the false-alarm budget (:func:`poisson_threshold_for_budget`).
    """

    lam0: float
    lam1: float
    k: float
    h: float
    statistic: float = 0.0

    @classmethod
    def calibrate(cls, daily_counts: list[int], shift: float, budget_days: float) -> CardCusum:
        """``lam0`` from the calibration days' counts: the one-sided 95 % upper confidence bound
        of a Poisson mean (with a handful of days and counts near 0 the point estimate, often
        0, would make one concentrated card an alarm)."""
        from scipy import stats

        if len(daily_counts) < 2:
            raise ValueError("calibrating the card alarm needs at least two days")
        total = int(np.sum(daily_counts))
        lam0 = float(stats.chi2.ppf(0.95, 2 * (total + 1)) / (2 * len(daily_counts)))
        lam1 = lam0 + shift
        k = math.ceil((lam1 - lam0) / math.log(lam1 / lam0) * _GRID - 1e-9) / _GRID
        return cls(lam0=lam0, lam1=lam1, k=k, h=poisson_threshold_for_budget(lam0, k, budget_days))

    def update(self, count: int) -> tuple[float, bool]:
        """Add one day's count; return ``(S_t, S_t ≥ h)``."""
        self.statistic = max(0.0, self.statistic + count - self.k)
        return self.statistic, self.statistic >= self.h - 1e-9


# -- the delayed-label tests -------------------------------------------------------------------
#
# Labels arrive ``delay_days`` late, but when they do they say what no unlabelled statistic can:
# whether the champion still finds the fraud. Two daily values of each labelled day, against the
# champion's own first labelled days after deployment (its validation, out of sample):
#
# - precision at the daily top-k (the payments investigators look at) — a fall is drift that
#   fills the alert queue with legitimate payments;
# - fraud missed by the top-k (the day's fraud count minus the hits) — a rise is fraud the model
#   does not rank: a terminal wave, stolen cards at ordinary amounts.
#
# Each is standardised against the reference mean moved by a stated tolerance (harmless change
# moves both a little: more payments, more fraud by the same mechanisms), with a 95 % upper
# confidence bound of the reference spread (few reference days), and fed to Page's CUSUM with
# ``h`` from Siegmund's run length, like the tail-rate test.


@dataclass
class LabelCusum:
    """Page's CUSUM of one daily labelled value against its reference days.

    Args:
        mean: the value's mean on the reference days.
        sd: a 95 % upper confidence bound of its day-to-day standard deviation (at least
            ``floor``, the sampling spread alone).
        k, h: reference value and decision interval (``threshold_for_budget``).
        tolerance: relative movement treated as harmless.
        direction: ``+1`` to detect a rise (missed fraud), ``-1`` a fall (precision).
    """

    mean: float
    sd: float
    k: float
    h: float
    tolerance: float
    direction: int
    statistic: float = 0.0

    @classmethod
    def calibrate(
        cls,
        values: list[float],
        floor: float,
        k: float,
        budget_days: float,
        tolerance: float,
        direction: int,
    ) -> LabelCusum:
        """From the reference days' values; ``floor``: the value's sampling sd on one day."""
        from scipy import stats

        values_arr = np.asarray(values, float)
        if len(values_arr) < 3:
            raise ValueError("calibrating a label test needs at least three labelled days")
        n = len(values_arr)
        spread = float(values_arr.std(ddof=1))
        upper = spread * math.sqrt((n - 1) / stats.chi2.ppf(0.05, n - 1))
        return cls(
            mean=float(values_arr.mean()),
            sd=max(upper, floor, 1e-9),
            k=k,
            h=threshold_for_budget(k, budget_days),
            tolerance=tolerance,
            direction=direction,
        )

    def standardise(self, value: float) -> float:
        """``z`` of one day's value: positive when it moved past the tolerance edge."""
        edge = self.mean * (1 + self.direction * self.tolerance)
        return self.direction * (value - edge) / self.sd

    def update(self, value: float) -> tuple[float, bool]:
        """Add one labelled day; return ``(S_t, S_t ≥ h)``."""
        self.statistic = max(0.0, self.statistic + self.standardise(value) - self.k)
        return self.statistic, self.statistic >= self.h


def top_k_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> tuple[float, float]:
    """``(precision at the top k, fraud missed by the top k)`` of one labelled day."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    k = min(k, len(scores))
    if k == 0:
        return 0.0, 0.0
    top = np.argsort(-scores, kind="stable")[:k]
    hits = float(labels[top].sum())
    return hits / k, float(labels.sum()) - hits
