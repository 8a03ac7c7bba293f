"""Page's CUSUM: Siegmund's run length against a simulation, calibration, the alarm's recursion."""

from __future__ import annotations

import numpy as np
import pytest

from level4_fraud.lifecycle.sequential_alarm import (
    CardCusum,
    TailCusum,
    poisson_cusum_arl,
    poisson_threshold_for_budget,
    siegmund_arl,
    threshold_for_budget,
)


def _monte_carlo_run_length(k: float, h: float, runs: int, seed: int) -> float:
    """Mean days to the first alarm of the same recursion on N(0, 1) days (vectorised)."""
    rng = np.random.default_rng(seed)
    statistic = np.zeros(runs)
    alive = np.ones(runs, dtype=bool)
    lengths = np.zeros(runs)
    day = 0
    while alive.any() and day < 100_000:
        day += 1
        statistic[alive] = np.maximum(0, statistic[alive] + rng.normal(size=alive.sum()) - k)
        fired = alive & (statistic >= h)
        lengths[fired] = day
        alive &= ~fired
    return float(lengths.mean())


def test_siegmund_matches_a_simulated_in_control_run_length() -> None:
    h = threshold_for_budget(0.5, 200)
    assert siegmund_arl(0.5, h) == pytest.approx(200, rel=1e-6)
    simulated = _monte_carlo_run_length(0.5, h, runs=2000, seed=0)
    # Siegmund's approximation is known to be within a few per cent for normal data.
    assert simulated == pytest.approx(200, rel=0.1)


def test_calibration_estimates_rate_and_overdispersion() -> None:
    rng = np.random.default_rng(1)
    sizes = [10_000] * 50
    binomial = TailCusum.calibrate(list(rng.binomial(10_000, 0.005, 50)), sizes, 0.5, 1000)
    assert binomial.mu0 == pytest.approx(0.005, rel=0.05) and binomial.phi < 1.5
    # Days whose rate itself varies (sd 30 % of the mean): far wider than binomial.
    rates = 0.005 * rng.lognormal(0, 0.3, 50)
    wide = TailCusum.calibrate(list(rng.binomial(10_000, rates)), sizes, 0.5, 1000)
    assert wide.phi > 2.0
    with pytest.raises(ValueError, match="two"):
        TailCusum.calibrate([5], [1000], 0.5, 1000)


def test_alarm_within_tolerance_is_quiet_and_a_real_rise_fires_fast() -> None:
    rng = np.random.default_rng(2)
    cusum = TailCusum(mu0=0.005, phi=1.0, k=0.5, h=threshold_for_budget(0.5, 1000), tolerance=0.3)
    # 300 days with the tail 20 % up (inside the tolerance): no alarm.
    fired = [cusum.update(int(rng.binomial(10_000, 0.006)), 10_000)[1] for _ in range(300)]
    assert not any(fired)
    # The tail doubles: z ≈ (0.010 - 0.0065) / 0.0007 ≈ 5 a day, alarm on the first or second day.
    days = next(i for i in range(1, 10) if cusum.update(100, 10_000)[1])
    assert days <= 2


def _poisson_run_length(lam: float, k: float, h: float, runs: int, seed: int) -> float:
    """Mean days to the first alarm of the card CUSUM's recursion on Poisson(lam) days."""
    rng = np.random.default_rng(seed)
    statistic, lengths = np.zeros(runs), np.zeros(runs)
    alive = np.ones(runs, dtype=bool)
    day = 0
    while alive.any() and day < 1_000_000:
        day += 1
        statistic[alive] = np.maximum(0, statistic[alive] + rng.poisson(lam, alive.sum()) - k)
        fired = alive & (statistic >= h - 1e-9)
        lengths[fired] = day
        alive &= ~fired
    return float(lengths.mean())


@pytest.mark.parametrize(("lam", "k", "h"), [(0.2, 0.45, 2.0), (0.7, 0.45, 4.15), (1.0, 0.6, 3.0)])
def test_poisson_run_length_is_exact(lam, k, h) -> None:
    exact = poisson_cusum_arl(lam, k, h)
    simulated = _poisson_run_length(lam, k, h, runs=4000, seed=3)
    # 4,000 runs: the mean's standard error is ~ run length / sqrt(4000) ≈ 1.6 %.
    assert simulated == pytest.approx(exact, rel=0.06)


def test_card_threshold_meets_the_budget_and_the_calibration_is_an_upper_bound() -> None:
    h = poisson_threshold_for_budget(0.2, 0.45, 2000)
    assert poisson_cusum_arl(0.2, 0.45, h) >= 2000 > poisson_cusum_arl(0.2, 0.45, h - 0.05)
    # No suspect card in 14 calibration days: lam0 is the 95 % upper bound 3.0 / 14, not 0.
    quiet = CardCusum.calibrate([0] * 14, shift=0.5, budget_days=2000)
    assert quiet.lam0 == pytest.approx(2.9957 / 14, rel=1e-3)
    assert quiet.k == pytest.approx(0.45)  # (0.714 - 0.214) / ln(0.714 / 0.214) = 0.415, rounded up
    # Fewer days, same zero counts: a wider bound, so a higher h and a slower test.
    assert CardCusum.calibrate([0] * 7, 0.5, 2000).h > quiet.h
    with pytest.raises(ValueError, match="two days"):
        CardCusum.calibrate([0], 0.5, 2000)


def test_card_alarm_is_quiet_at_the_null_and_fires_on_a_suspect_card_a_day() -> None:
    rng = np.random.default_rng(4)
    cusum = CardCusum.calibrate([0] * 14, shift=0.5, budget_days=2000)
    fired = [cusum.update(int(rng.poisson(0.15)))[1] for _ in range(300)]
    assert not any(fired)
    cusum.statistic = 0.0
    days = next(i for i in range(1, 30) if cusum.update(1)[1])
    assert days == 8  # 8 x (1 - 0.45) = 4.4 >= h = 4.15


def test_top_k_hits_counts_precision_and_the_fraud_it_misses() -> None:
    from level4_fraud.lifecycle.sequential_alarm import top_k_hits

    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.05])
    labels = np.array([1, 0, 1, 1, 0])
    assert top_k_hits(scores, labels, 2) == (0.5, 2.0)
    assert top_k_hits(scores, labels, 10) == (3 / 5, 0.0)  # k beyond the day: the whole day


def test_label_cusum_is_quiet_in_control_and_catches_a_fall_in_precision() -> None:
    """Reference days from the same distribution: no alarm in 1,000 in-control days on 10
    seeds (the budget's run length is 5,000 days); precision falling from 0.5 to 0.15 (past the
    30 % tolerance's edge of 0.35) fires within days: measured 2-6 days on 9 seeds, 10 on the
    seed whose seven reference days happened to spread widely (upper bound of the sd 0.17)."""
    from level4_fraud.lifecycle.sequential_alarm import LabelCusum

    false_alarms = slowest = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        reference = rng.binomial(100, 0.5, 7) / 100
        test = LabelCusum.calibrate(list(reference), 0.05, 0.5, 5000, 0.3, -1)
        assert test.h == pytest.approx(threshold_for_budget(0.5, 5000))
        for value in rng.binomial(100, 0.5, 100) / 100:
            false_alarms += test.update(value)[1]
        test.statistic = 0.0
        days = 0
        while not test.update(rng.binomial(100, 0.15) / 100)[1]:
            days += 1
        assert days <= 11, days
        slowest = max(slowest, days)
    assert false_alarms == 0 and slowest >= 2  # a fall of this size never fires on day one


def test_label_cusum_for_missed_fraud_detects_a_rise_not_a_fall() -> None:
    from level4_fraud.lifecycle.sequential_alarm import LabelCusum

    test = LabelCusum.calibrate([30, 35, 28, 33, 31, 29, 34], 5.5, 0.5, 5000, 0.3, +1)
    for _ in range(50):  # far fewer missed payments: good news, never an alarm
        assert not test.update(5)[1]
    assert test.statistic == 0.0
    fired = [test.update(80)[1] for _ in range(5)]
    assert any(fired)  # 80 a day against an edge of about 41: within days
    with pytest.raises(ValueError, match="three"):
        LabelCusum.calibrate([1.0, 2.0], 1.0, 0.5, 5000, 0.3, +1)
