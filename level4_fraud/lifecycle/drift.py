"""Drift detection: is today's traffic different in a way that matters for fraud?

Three signals per day, each compared with a reference period (the champion's training data):

- **the alarm — anomaly tail rate**: the share of today's transactions whose isolation-forest
  score lies above the ``tail_quantile`` (99.5 %) of the reference traffic's scores. The forest
  sees each transaction relative to its customer's own history (``models.anomaly``), so cards used
  unlike their past fill the tail. With ``alarm: cusum`` (the default) the daily tail counts feed
  Page's CUSUM (:mod:`level4_fraud.lifecycle.sequential_alarm`), calibrated on ``calibration``
  days the champion trained on to a false-alarm budget, with a stated tolerance for harmless
  movement of the tail (the seasonal change moves it by up to ~30 %). ``alarm: tail_ratio`` keeps
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
from level4_fraud.lifecycle.sequential_alarm import TailCusum
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
    """

    def __init__(
        self,
        detector: AnomalyDetector,
        reference: pd.DataFrame | np.ndarray,
        reference_scores: np.ndarray,
        config: MonitorConfig,
        calibration: list[np.ndarray] | None = None,
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
        if config.alarm == "cusum":
            if not calibration:
                raise ValueError("the cusum alarm needs calibration days")
            days = [as_matrix(day) for day in calibration]
            self.cusum = TailCusum.calibrate(
                [int((detector.raw_score(d) > self.threshold).sum()) for d in days],
                [len(d) for d in days],
                config.cusum_k,
                config.false_alarm_budget_days,
                config.harmless_tail_change,
            )

    def check(self, frame: pd.DataFrame | np.ndarray, scores: np.ndarray) -> DayDrift:
        """Today's signals; ``alarm`` is true on the day the window first holds ``signal_days``."""
        cfg = self.config
        X = as_matrix(frame)
        n = len(X)
        tail = int((self.detector.raw_score(X) > self.threshold).sum())
        rate = tail / max(n, 1)
        ratio = rate / self.expected_rate
        p_value = (
            float(stats.binomtest(tail, n, self.expected_rate, alternative="greater").pvalue)
            if n
            else 1.0
        )
        statistic = z = None
        if self.cusum is not None:
            was_above = self.cusum.statistic >= self.cusum.h
            z = self.cusum.standardise(tail, n)
            statistic, signal = self.cusum.update(tail, n)
            alarm = signal and not was_above
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
        )
