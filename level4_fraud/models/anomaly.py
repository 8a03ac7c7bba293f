"""The unsupervised detector: an isolation forest on behaviour features, scored as a percentile.

It takes no labels, and it also drives the drift monitor's anomaly-tail alarm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from level4_fraud.data.features import FEATURES, as_matrix


def behaviour_matrix(X: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Features relative to the customer's own recent history, the anomaly detector's input.

    A population-wide change (everyone spends 30 % more) barely moves these, because each
    customer's 7-day window follows within days; a card used unlike its own past does. Columns:
    log amount vs the 7-day mean, today's count above the 7-day daily rate, night flag, delayed
    terminal risk over 7 and 30 days. (30-day references lag a seasonal ramp for a month and
    would mistake it for anomalies.)
    """
    X = as_matrix(X)
    col = {name: X[:, i] for i, name in enumerate(FEATURES)}
    return np.column_stack(
        [
            np.log1p(col["tx_amount"]) - np.log1p(col["customer_avg_amount_7d"]),
            col["customer_nb_tx_1d"] - col["customer_nb_tx_7d"] / 7,
            col["tx_during_night"],
            col["terminal_risk_7d"],
            col["terminal_risk_30d"],
        ]
    ).astype(np.float32)


@dataclass
class AnomalyDetector:
    """Isolation forest on :func:`behaviour_matrix`, scored as a percentile of training rows.

    The percentile mapping makes the score comparable across retrains and usable in the
    ensemble and by the drift monitor (share of traffic above the reference's 99.5th percentile).
    """

    forest: Any
    reference: np.ndarray = field(repr=False)

    def raw_score(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Higher is more anomalous."""
        return -self.forest.score_samples(behaviour_matrix(X))

    def predict_proba(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """The anomaly score's percentile among the training rows, in [0, 1]."""
        rank = np.searchsorted(self.reference, self.raw_score(X), side="right")
        return rank / len(self.reference)


def train_isolation_forest(
    X: np.ndarray | pd.DataFrame, n_estimators: int = 100, max_samples: int = 4096, seed: int = 0
) -> AnomalyDetector:
    """An unsupervised detector fitted on (mostly legitimate) traffic, no labels used."""
    from sklearn.ensemble import IsolationForest

    X = as_matrix(X)
    forest = IsolationForest(
        n_estimators=n_estimators, max_samples=min(max_samples, len(X)), random_state=seed, n_jobs=1
    ).fit(behaviour_matrix(X))
    detector = AnomalyDetector(forest, np.empty(0))
    sample = X if len(X) <= 50_000 else X[np.random.default_rng(seed).choice(len(X), 50_000, False)]
    detector.reference = np.sort(detector.raw_score(sample))
    return detector
