"""The handbook's metrics: ROC AUC, average precision and card precision@k, overall and per day.

Card precision@k (CP@k) is what an investigation team of limited size cares about: each day the
``k`` cards with the highest fraud score are checked, and CP@k is the share of them that really
had fraud that day, averaged over days. As in the handbook, a card already found compromised on an
earlier test day is removed from later days' rankings (it would have been blocked).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def card_precision_top_k(
    frame: pd.DataFrame, scores: np.ndarray, k: int = 100
) -> tuple[float, list[float]]:
    """Mean and per-day card precision@k of ``scores`` on ``frame`` (``customer_id``,
    ``tx_time_days``, ``tx_fraud``)."""
    data = pd.DataFrame(
        {
            "day": frame["tx_time_days"].to_numpy(),
            "customer_id": frame["customer_id"].to_numpy(),
            "fraud": frame["tx_fraud"].to_numpy(),
            "score": np.asarray(scores),
        }
    )
    per_card = data.groupby(["day", "customer_id"], sort=True).agg(
        score=("score", "max"), fraud=("fraud", "max")
    )
    detected: set[int] = set()
    daily = []
    for _, cards in per_card.groupby(level="day", sort=True):
        cards = cards.droplevel("day")
        cards = cards[~cards.index.isin(detected)]
        top = cards.nlargest(k, "score")
        daily.append(float(top["fraud"].sum()) / k)
        detected.update(top.index[top["fraud"] == 1].tolist())
    return (float(np.mean(daily)) if daily else float("nan")), daily


def fraud_metrics(frame: pd.DataFrame, scores: np.ndarray, k: int = 100) -> dict[str, float]:
    """``auc``, ``ap`` and ``cp{k}`` of ``scores`` against ``frame['tx_fraud']``."""
    y = frame["tx_fraud"].to_numpy()
    scores = np.asarray(scores)
    both = 0 < y.sum() < len(y)
    return {
        "auc": float(roc_auc_score(y, scores)) if both else float("nan"),
        "ap": float(average_precision_score(y, scores)) if both else float("nan"),
        f"cp{k}": card_precision_top_k(frame, scores, k)[0],
    }
