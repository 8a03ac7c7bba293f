"""Drift detection: is today's traffic different in a way that matters for fraud?

Three signals per day, each compared with a reference period (the champion's training data):

- **the alarm — anomaly tail rate**: the share of today's transactions whose isolation-forest
  score lies above the ``tail_quantile`` (99.5 %) of the reference traffic's scores. The forest
  sees each transaction relative to its customer's own history (``models.anomaly``), so cards used
  unlike their past fill the tail. With ``alarm: cusum`` (the default) the daily tail counts feed
  Page's CUSUM (:mod:`level4_fraud.lifecycle.sequential_alarm`), calibrated on ``calibration``
  days the champion trained on to a false-alarm budget, with a stated tolerance for harmless
  movement of the tail (the seasonal change moves it by up to ~30 %). With ``card_alarm`` (the
  default) and the day's card ids, a second CUSUM watches **where** the tail falls: the number of
  cards with ``card_tail_payments`` or more tail payments that day. Fraud clusters by card, harmless
  change does not, so a new pattern that lifts the tail too little for the rate test (a quarter of
  the card-testing payments reach it) can still show as a few suspect cards a day. The
  false-alarm budget is split between the two tests (each gets twice the budget: by the union
  bound the pair raises at most one false alarm per budget). ``alarm: tail_ratio`` keeps
  the previous rule (ratio ≥ ``alarm_ratio`` and binomial p ≤ ``alarm_p_value`` on
  ``signal_days`` of the last ``window_days`` days) for comparison.
- **feature drift** (reported, exported, not the alarm): population stability index (PSI) of each
  feature against reference quantile bins. It fires on the seasonal change too — that is the point
  of showing it next to the alarm.
- **score drift** (reported): two-sample Kolmogorov–Smirnov statistic of the champion's scores.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from level4_fraud.config import MonitorConfig
from level4_fraud.data.features import FEATURES, as_matrix
from level4_fraud.lifecycle.sequential_alarm import CardCusum, LabelCusum, TailCusum, top_k_hits
from level4_fraud.models.anomaly import AnomalyDetector
from ml_common.drift import psi


@dataclass
class DayDrift:
    """One day's drift signals."""

    tail_rate: float
    tail_ratio: float
    p_value: float
    signal: bool
    alarm: bool
    feature_psi: dict[str, float] = field(default_factory=dict)
    max_feature_psi: float = 0.0
    score_ks: float = 0.0
    cusum: float | None = None  # Page's CUSUM statistic (alarm "cusum")
    z: float | None = None  # today's standardised tail rate (alarm "cusum")
    suspect_cards: int | None = None  # cards with card_tail_payments+ tail payments today
    card_cusum: float | None = None  # the card CUSUM's statistic
    suspect_terminals: int | None = None  # terminals with terminal_tail_payments+ tail payments
    terminal_cusum: float | None = None
    precision_at_k: float | None = None  # of the labelled day (delay_days ago), if any
    missed_fraud: float | None = None  # fraud of the labelled day outside its top k
    precision_cusum: float | None = None  # None until the label tests are calibrated
    missed_cusum: float | None = None
    alarm_by: str | None = None  # which test fired first (see DriftMonitor.TESTS)

    def as_dict(self) -> dict[str, object]:
        """A JSON-safe dict."""
        return asdict(self)


class DriftMonitor:
    """Checks each day against a reference period; keeps the last ``window_days`` signals.

    Args:
        detector: the champion's isolation forest (percentile-scored on its training rows).
        reference: feature rows of the reference period.
        reference_scores: the champion's scores on ``reference``.
        config: thresholds.
        calibration: feature rows of each calibration day (days that did not set the threshold,
            from the champion's training period); required by the ``cusum`` alarm.
        card_days: ``(feature rows, card ids)`` of each day the champion trained on; with
            ``card_alarm`` they calibrate the suspect-card CUSUM, and :meth:`check` then needs
            the day's card ids.
        terminal_days: the same with terminal ids, for the suspect-terminal CUSUM
            (``terminal_alarm``).

    With ``label_alarm`` the monitor also takes, each day, the champion's scores and the labels
    of the day whose labels have just arrived (``labelled`` in :meth:`check`): the first
    ``label_reference_days`` of them calibrate the two label tests, later ones update them.
    The false-alarm budget is split evenly between every test in use (union bound).
    """

    TESTS = (
        "tail rate",
        "suspect cards",
        "suspect terminals",
        "precision at k",
        "missed fraud",
    )

    def __init__(
        self,
        detector: AnomalyDetector,
        reference: pd.DataFrame | np.ndarray,
        reference_scores: np.ndarray,
        config: MonitorConfig,
        calibration: list[np.ndarray] | None = None,
        card_days: list[tuple[np.ndarray, np.ndarray]] | None = None,
        terminal_days: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self.detector = detector
        self.config = config
        rng = np.random.default_rng(0)
        X = as_matrix(reference)
        if len(X) > 50_000:
            pick = rng.choice(len(X), 50_000, replace=False)
            X, reference_scores = X[pick], np.asarray(reference_scores)[pick]
        self.reference = X
        self.reference_scores = np.asarray(reference_scores)
        self.expected_rate = 1.0 - config.tail_quantile
        # The tail threshold is calibrated on the reference traffic itself, so a monitor can be
        # re-baselined on recent (unlabelled) traffic after a new champion is deployed.
        self.threshold = float(np.quantile(detector.raw_score(X), config.tail_quantile))
        self.recent: deque[bool] = deque(maxlen=config.window_days)
        self.cusum: TailCusum | None = None
        self.card_cusum: CardCusum | None = None
        self.terminal_cusum: CardCusum | None = None
        self.precision_cusum: LabelCusum | None = None
        self.missed_cusum: LabelCusum | None = None
        self._label_reference: list[tuple[float, float]] = []
        if config.alarm == "cusum":
            if not calibration:
                raise ValueError("the cusum alarm needs calibration days")
            with_cards = config.card_alarm and bool(card_days)
            with_terminals = config.terminal_alarm and bool(terminal_days)
            n_tests = 1 + with_cards + with_terminals + 2 * config.label_alarm
            self.budget = config.false_alarm_budget_days * n_tests
            days = [as_matrix(day) for day in calibration]
            self.cusum = TailCusum.calibrate(
                [int((detector.raw_score(d) > self.threshold).sum()) for d in days],
                [len(d) for d in days],
                config.cusum_k,
                self.budget,
                config.harmless_tail_change,
            )
            if with_cards:
                assert card_days is not None
                self.card_cusum = CardCusum.calibrate(
                    [self.suspect_cards(X_day, cards) for X_day, cards in card_days],
                    config.card_shift_per_day,
                    self.budget,
                )
            if with_terminals:
                assert terminal_days is not None
                self.terminal_cusum = CardCusum.calibrate(
                    [self.suspect_terminals(X_day, ids) for X_day, ids in terminal_days],
                    config.terminal_shift_per_day,
                    self.budget,
                )

    def suspect_cards(self, X: np.ndarray | pd.DataFrame, cards: np.ndarray) -> int:
        """Cards with ``card_tail_payments`` or more payments above the tail threshold."""
        in_tail = self.detector.raw_score(as_matrix(X)) > self.threshold
        return _suspect_cards(in_tail, cards, self.config.card_tail_payments)

    def suspect_terminals(self, X: np.ndarray | pd.DataFrame, terminals: np.ndarray) -> int:
        """Terminals with ``terminal_tail_payments`` or more payments above the tail threshold."""
        in_tail = self.detector.raw_score(as_matrix(X)) > self.threshold
        return _suspect_cards(in_tail, terminals, self.config.terminal_tail_payments)

    def _label_tests(self, scores: np.ndarray, labels: np.ndarray) -> tuple[float, float, bool]:
        """Feed one labelled day to the label tests (or to their reference while it fills)."""
        cfg = self.config
        precision, missed = top_k_hits(scores, labels, cfg.label_top_k)
        if self.precision_cusum is None or self.missed_cusum is None:
            self._label_reference.append((precision, missed))
            if len(self._label_reference) >= cfg.label_reference_days:
                p = [v[0] for v in self._label_reference]
                m = [v[1] for v in self._label_reference]
                p0 = float(np.mean(p))
                self.precision_cusum = LabelCusum.calibrate(
                    p,
                    float(np.sqrt(max(p0 * (1 - p0), 1e-6) / cfg.label_top_k)),
                    cfg.cusum_k,
                    self.budget,
                    cfg.label_tolerance,
                    -1,
                )
                self.missed_cusum = LabelCusum.calibrate(
                    m,
                    float(np.sqrt(max(np.mean(m), 1.0))),  # Poisson spread at least
                    cfg.cusum_k,
                    self.budget,
                    cfg.label_tolerance,
                    +1,
                )
            return precision, missed, False
        _, precision_signal = self.precision_cusum.update(precision)
        _, missed_signal = self.missed_cusum.update(missed)
        return precision, missed, precision_signal or missed_signal

    def check(
        self,
        frame: pd.DataFrame | np.ndarray,
        scores: np.ndarray,
        cards: np.ndarray | None = None,
        terminals: np.ndarray | None = None,
        labelled: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> DayDrift:
        """Today's signals; ``alarm`` is true on the day a test first crosses its threshold
        (``tail_ratio``: the window first holds ``signal_days``). ``cards`` / ``terminals``: each
        row's card / terminal id, required when the monitor watches them; ``labelled``: the
        champion's scores and the labels of the day whose labels arrived today (if any)."""
        cfg = self.config
        if self.card_cusum is not None and cards is None:  # before any statistic moves
            raise ValueError("this monitor watches suspect cards: pass the day's card ids")
        if self.terminal_cusum is not None and terminals is None:
            raise ValueError("this monitor watches suspect terminals: pass the day's terminal ids")
        X = as_matrix(frame)
        n = len(X)
        raw = self.detector.raw_score(X)
        tail = int((raw > self.threshold).sum())
        rate = tail / max(n, 1)
        ratio = rate / self.expected_rate
        p_value = (
            float(stats.binomtest(tail, n, self.expected_rate, alternative="greater").pvalue)
            if n
            else 1.0
        )
        statistic = z = suspect = card_statistic = alarm_by = None
        terminal_count = terminal_statistic = precision = missed = None
        if self.cusum is not None:
            tests = [self.cusum, self.card_cusum, self.terminal_cusum]
            tests += [self.precision_cusum, self.missed_cusum]
            # The alarm is the day the set first signals: any statistic crosses its h.
            was_signalling = any(t is not None and t.statistic >= t.h - 1e-9 for t in tests)
            z = self.cusum.standardise(tail, n)
            statistic, signal = self.cusum.update(tail, n)
            fired = ["tail rate"] if signal else []
            in_tail = raw > self.threshold
            if self.card_cusum is not None:
                assert cards is not None
                suspect = _suspect_cards(in_tail, cards, cfg.card_tail_payments)
                card_statistic, card_signal = self.card_cusum.update(suspect)
                fired += ["suspect cards"] if card_signal else []
            if self.terminal_cusum is not None:
                assert terminals is not None
                terminal_count = _suspect_cards(in_tail, terminals, cfg.terminal_tail_payments)
                terminal_statistic, terminal_signal = self.terminal_cusum.update(terminal_count)
                fired += ["suspect terminals"] if terminal_signal else []
            if cfg.label_alarm and labelled is not None:
                precision, missed, _ = self._label_tests(*labelled)
                if self.precision_cusum is not None and self.precision_cusum.statistic >= (
                    self.precision_cusum.h
                ):
                    fired.append("precision at k")
                if self.missed_cusum is not None and self.missed_cusum.statistic >= (
                    self.missed_cusum.h
                ):
                    fired.append("missed fraud")
            signal = bool(fired)
            alarm_by = fired[0] if fired else None
            alarm = signal and not was_signalling
        else:
            signal = ratio >= cfg.alarm_ratio and p_value <= cfg.alarm_p_value
            before = sum(self.recent)
            self.recent.append(signal)
            alarm = sum(self.recent) >= cfg.signal_days > before
        feature_psi = {
            name: psi(self.reference[:, i], X[:, i], cfg.psi_bins)
            for i, name in enumerate(FEATURES)
        }
        score_ks = float(stats.ks_2samp(self.reference_scores, scores).statistic) if n else 0.0
        return DayDrift(
            tail_rate=rate,
            tail_ratio=ratio,
            p_value=p_value,
            signal=signal,
            alarm=alarm,
            feature_psi=feature_psi,
            max_feature_psi=max(feature_psi.values()),
            score_ks=score_ks,
            cusum=statistic,
            z=z,
            suspect_cards=suspect,
            card_cusum=card_statistic,
            suspect_terminals=terminal_count,
            terminal_cusum=terminal_statistic,
            precision_at_k=precision,
            missed_fraud=missed,
            precision_cusum=self.precision_cusum.statistic if self.precision_cusum else None,
            missed_cusum=self.missed_cusum.statistic if self.missed_cusum else None,
            alarm_by=alarm_by,
        )


def _suspect_cards(in_tail: np.ndarray, cards: np.ndarray, at_least: int) -> int:
    if not in_tail.any():
        return 0
    per_card = np.unique(np.asarray(cards)[in_tail], return_counts=True)[1]
    return int((per_card >= at_least).sum())
