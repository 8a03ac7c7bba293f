"""The weighted ensemble of FraudNet, LightGBM and the anomaly detector (what is registered)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from level4_fraud.data.features import as_matrix
from level4_fraud.models.anomaly import AnomalyDetector
from level4_fraud.models.fraudnet import predict_proba


@dataclass
class FraudEnsemble:
    """A weighted average of member probabilities (the anomaly score enters as its percentile).

    Attributes:
        members: name → model (``FraudNet``, LightGBM classifier or :class:`AnomalyDetector`).
        weights: name → weight; only members with a weight take part.
    """

    members: dict[str, Any]
    weights: dict[str, float]

    def member_scores(self, X: np.ndarray | pd.DataFrame) -> dict[str, np.ndarray]:
        """Each member's probability-like score for ``X``."""
        X = as_matrix(X)
        return {name: score_member(model, X) for name, model in self.members.items()}

    def combine(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """The weighted average of already computed member scores."""
        total = sum(self.weights.get(n, 0.0) for n in scores)
        if total <= 0:
            raise ValueError("ensemble weights must sum to a positive number")
        return sum(self.weights.get(n, 0.0) * s for n, s in scores.items()) / total

    def predict_proba(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """The ensemble's fraud score in [0, 1] (members with weight 0 are not evaluated)."""
        X = as_matrix(X)
        active = {n: m for n, m in self.members.items() if self.weights.get(n, 0.0) > 0}
        return self.combine({name: score_member(model, X) for name, model in active.items()})


def score_member(model: Any, X: np.ndarray) -> np.ndarray:
    """A probability-like score from any member type."""
    if isinstance(model, nn.Module):
        return predict_proba(model, X)
    if isinstance(model, (AnomalyDetector, FraudEnsemble)):
        return model.predict_proba(X)
    return model.predict_proba(X)[:, 1]  # a scikit-learn style classifier (LightGBM)
