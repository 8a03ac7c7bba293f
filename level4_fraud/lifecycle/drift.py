"""Drift detection: is today's traffic different in a way that matters for fraud?

Three signals per day, each compared with a reference period (the champion's training data):

- **the alarm — anomaly tail rate**: the share of today's transactions whose isolation-forest
  score lies above the ``tail_quantile`` (99.5 %) of the reference traffic's scores. The forest
  sees each transaction relative to its customer's own history (``models.behaviour_matrix``), so a
  population-wide,
  harmless change (everyone spends 30 % more) leaves the tail alone while cards used unlike their
  past fill it. The alarm fires when the rate is ``alarm_ratio`` times the expected one, a one-sided
  binomial test rejects "no change" at ``alarm_p_value``, on ``signal_days`` of the last
  ``window_days`` days.
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
    """

    def __init__(
        self,
        detector: AnomalyDetector,
        reference: pd.DataFrame | np.ndarray,
        reference_scores: np.ndarray,
        config: MonitorConfig,
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
        )
