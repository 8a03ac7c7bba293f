"""The drift detector: quiet on stable and seasonal traffic, alarmed by the new fraud pattern."""

from __future__ import annotations

import numpy as np
import pytest

from level4_fraud.config import MonitorConfig, SimulationConfig
from level4_fraud.data.features import FEATURES, features_frame
from level4_fraud.data.simulate import TransactionSimulator
from level4_fraud.lifecycle.drift import DriftMonitor, psi
from level4_fraud.models.anomaly import train_isolation_forest

WORLD = {"n_customers": 2000, "n_terminals": 4000, "seed": 1, "n_days": 72}


@pytest.fixture(scope="module")
def worlds():
    drifted = features_frame(
        TransactionSimulator(SimulationConfig(**WORLD, seasonal_day=45, new_pattern_day=62)), 30, 72
    )
    return drifted


def test_psi_is_zero_for_same_and_large_for_shifted() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=20_000)
    assert psi(a, rng.normal(size=20_000)) < 0.01
    assert psi(a, rng.normal(1.0, 1, size=20_000)) > 0.3


@pytest.mark.parametrize("alarm", ["cusum", "cusum+cards", "tail_ratio"])
def test_alarm_fires_on_new_pattern_not_on_stable_or_seasonal(worlds, alarm) -> None:
    frame = worlds
    reference = frame[frame["tx_time_days"].between(30, 43)]
    detector = train_isolation_forest(reference[FEATURES], n_estimators=100)
    # The threshold from days 30-36, the CUSUM's null calibrated on days 37-43, the card test's
    # on all 14.
    threshold_days = reference[reference["tx_time_days"] <= 36]
    days = {d: frame[frame["tx_time_days"] == d] for d in range(30, 72)}
    with_cards = alarm == "cusum+cards"
    monitor = DriftMonitor(
        detector,
        threshold_days[FEATURES],
        np.zeros(len(threshold_days)),
        MonitorConfig(alarm=alarm.removesuffix("+cards"), card_alarm=with_cards),
        calibration=[days[d][FEATURES] for d in range(37, 44)],
        card_days=[(days[d][FEATURES], days[d]["customer_id"]) for d in range(30, 44)],
    )
    assert (monitor.card_cusum is not None) == with_cards
    signals = {}
    for day in range(44, 72):
        part = days[day]
        signals[day] = monitor.check(part[FEATURES], np.zeros(len(part)), part["customer_id"])
    quiet = [d for d in range(44, 62) if signals[d].signal]
    assert quiet == [], f"drift signal on stable/seasonal days {quiet}"
    alarms = [d for d, s in signals.items() if s.alarm]
    assert alarms and 62 <= alarms[0] <= 65, alarms
    if alarm == "cusum":  # one alarm, then the statistic stays above h until handled
        assert len(alarms) == 1 and all(signals[d].signal for d in range(alarms[0], 72))
    # Feature PSI reacts to the harmless seasonal change: it is reported, not the alarm.
    seasonal = np.mean([signals[d].feature_psi["tx_amount"] for d in range(58, 62)])
    stable = np.mean([signals[d].feature_psi["tx_amount"] for d in range(44, 46)])
    assert seasonal > 2 * stable


def test_cusum_alarm_needs_calibration_days() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, len(FEATURES))).astype(np.float32)
    detector = train_isolation_forest(X, n_estimators=10)
    with pytest.raises(ValueError, match="calibration"):
        DriftMonitor(detector, X, np.zeros(len(X)), MonitorConfig(alarm="cusum"))


def test_suspect_cards_counts_cards_with_several_tail_payments() -> None:
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(4000, len(FEATURES)))).astype(np.float32)
    detector = train_isolation_forest(X, n_estimators=20)
    config = MonitorConfig(card_tail_payments=3)
    monitor = DriftMonitor(detector, X, np.zeros(len(X)), config, calibration=[X[:2000], X[2000:]])
    in_tail = detector.raw_score(X) > monitor.threshold
    cards = np.arange(len(X))  # every payment its own card: none has two
    assert monitor.suspect_cards(X, cards) == 0
    tail_rows = np.flatnonzero(in_tail)
    cards[tail_rows[:3]] = -1  # one card with three tail payments
    cards[tail_rows[3:5]] = -2  # one with two: below the bar
    cards[np.flatnonzero(~in_tail)[:5]] = -3  # five payments, none in the tail
    assert monitor.suspect_cards(X, cards) == 1


def test_a_card_watching_monitor_needs_the_days_card_ids(worlds) -> None:
    part = worlds[worlds["tx_time_days"] == 40]
    detector = train_isolation_forest(part[FEATURES], n_estimators=10)
    monitor = DriftMonitor(
        detector,
        part[FEATURES],
        np.zeros(len(part)),
        MonitorConfig(),
        calibration=[part[FEATURES], part[FEATURES]],
        card_days=[(part[FEATURES], part["customer_id"])] * 2,
    )
    assert monitor.cusum is not None
    monitor.cusum.statistic = 1.0
    with pytest.raises(ValueError, match="card ids"):
        monitor.check(part[FEATURES], np.zeros(len(part)))
    assert monitor.cusum.statistic == 1.0  # refused before either statistic moved


def test_label_tests_calibrate_on_the_first_labelled_days_then_catch_missed_fraud(worlds) -> None:
    """The monitor's label tests: silent while their reference fills, quiet on days like it,
    alarmed when fraud the champion does not rank appears (a terminal wave's signature)."""
    part = worlds[worlds["tx_time_days"] == 40]
    detector = train_isolation_forest(part[FEATURES], n_estimators=10)
    config = MonitorConfig(card_alarm=False, terminal_alarm=False, label_reference_days=5)
    monitor = DriftMonitor(
        detector, part[FEATURES], np.zeros(len(part)), config, calibration=[part[FEATURES]] * 2
    )
    rng = np.random.default_rng(0)

    def labelled(extra_missed: int) -> tuple[np.ndarray, np.ndarray]:
        scores = rng.random(4000)
        labels = np.zeros(4000, dtype=int)
        order = np.argsort(-scores)
        labels[order[rng.choice(100, rng.binomial(100, 0.5), replace=False)]] = 1  # hits
        labels[order[100 + rng.choice(3900, rng.poisson(30) + extra_missed, replace=False)]] = 1
        return scores, labels

    X, zeros = part[FEATURES], np.zeros(len(part))
    days = [monitor.check(X, zeros, labelled=labelled(0)) for _ in range(5)]
    assert monitor.missed_cusum is not None and monitor.precision_cusum is not None
    assert all(d.missed_cusum is None for d in days[:4])  # the reference was filling
    quiet = [monitor.check(X, zeros, labelled=labelled(0)) for _ in range(30)]
    quiet += [monitor.check(X, zeros) for _ in range(3)]  # days without arrived labels
    assert not any(d.alarm for d in quiet)
    drifted = [monitor.check(X, zeros, labelled=labelled(60)) for _ in range(5)]
    fired = [d for d in drifted if d.alarm]
    assert len(fired) == 1 and fired[0].alarm_by == "missed fraud"
    assert drifted.index(fired[0]) <= 2


def test_a_terminal_watching_monitor_needs_the_days_terminal_ids(worlds) -> None:
    part = worlds[worlds["tx_time_days"] == 40]
    detector = train_isolation_forest(part[FEATURES], n_estimators=10)
    monitor = DriftMonitor(
        detector,
        part[FEATURES],
        np.zeros(len(part)),
        MonitorConfig(card_alarm=False),
        calibration=[part[FEATURES], part[FEATURES]],
        terminal_days=[(part[FEATURES], part["terminal_id"])] * 2,
    )
    assert monitor.terminal_cusum is not None
    assert (
        monitor.budget == MonitorConfig().false_alarm_budget_days * 4
    )  # tail, terminals, 2 labels
    with pytest.raises(ValueError, match="terminal ids"):
        monitor.check(part[FEATURES], np.zeros(len(part)))
    day = monitor.check(part[FEATURES], np.zeros(len(part)), terminals=part["terminal_id"])
    assert day.suspect_terminals is not None and day.suspect_terminals >= 0
