"""The business metric and the decision threshold it picks.

Business metric (config ``business``): contact every customer scored above the threshold. Each
contact costs ``contact_cost``; a contacted customer accepts the retention offer with probability
``acceptance_rate``, and each accepted offer costs ``offer_cost``. An accepted offer to a customer
who would have churned keeps ``customer_value``. Expected profit at a threshold::

    TP * a * (value - offer) - FP * a * offer - (TP + FP) * contact

Why not scikit-learn's ``TunedThresholdClassifierCV`` with this metric as its scorer: it would
pick the same kind of threshold, but inside an estimator, on its own internal folds. Written out,
the whole profit curve is in plain sight (it is drawn in the profit figure), the search is exact
over every distinct score rather than a grid (checked against brute force in the tests), and the
protocol stays explicit: the threshold comes from the validation part, never from the test part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from level2_churn.settings import BusinessSettings
from ml_common.plots import save_figure


def expected_profit(tp: Any, fp: Any, business: BusinessSettings) -> Any:
    """The formula of the module docstring for ``tp`` / ``fp`` contacted (numbers or arrays)."""
    a = business.acceptance_rate
    return (
        tp * a * (business.customer_value - business.offer_cost)
        - fp * a * business.offer_cost
        - (tp + fp) * business.contact_cost
    )


def profit_curve(y: np.ndarray, p: np.ndarray, business: BusinessSettings) -> pd.DataFrame:
    """Expected campaign profit at every distinct threshold (contact everyone with p >= t)."""
    y = np.asarray(y)
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(1 - y_sorted)
    profit = expected_profit(tp, fp, business)
    last = np.r_[p_sorted[1:] != p_sorted[:-1], True]  # one point per distinct threshold
    curve = pd.DataFrame(
        {
            "threshold": p_sorted[last],
            "contacted": (tp + fp)[last],
            "tp": tp[last],
            "profit": profit[last],
        }
    )
    return pd.concat(
        [
            pd.DataFrame({"threshold": [1.0 + 1e-9], "contacted": [0], "tp": [0], "profit": [0.0]}),
            curve,
        ],
        ignore_index=True,
    )


def best_threshold(y: np.ndarray, p: np.ndarray, business: BusinessSettings) -> tuple[float, float]:
    """(threshold, profit) that maximises expected profit on (y, p)."""
    curve = profit_curve(y, p, business)
    row = curve.loc[curve["profit"].idxmax()]
    return float(row["threshold"]), float(row["profit"])


def profit_at(y: np.ndarray, p: np.ndarray, threshold: float, business: BusinessSettings) -> float:
    """Expected profit when contacting everyone with probability >= ``threshold``."""
    chosen = p >= threshold
    tp = float(np.sum(chosen & (y == 1)))
    fp = float(np.sum(chosen & (y == 0)))
    return float(expected_profit(tp, fp, business))


def confusion_at(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, int]:
    tn, fp, fn, tp = confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1]).ravel()
    return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}


def plot_profit(
    curve: pd.DataFrame, threshold: float, confusion: dict[str, int], title: str, path: Path
) -> Path:
    import matplotlib.pyplot as plt

    fig, (ax, ax_cm) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]})
    ax.plot(curve["threshold"].clip(upper=1), curve["profit"])
    ax.axvline(threshold, color="k", ls="--", lw=0.8, label=f"chosen threshold {threshold:.3f}")
    ax.set(xlabel="threshold (contact if p >= t)", ylabel="expected profit", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    matrix = np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])
    ax_cm.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        # White on the dark cells, black on the light ones: readable whatever the counts.
        dark = value > (matrix.min() + matrix.max()) / 2
        ax_cm.text(j, i, str(value), ha="center", va="center", color="white" if dark else "black")
    ax_cm.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["stay", "churn"],
        yticklabels=["stay", "churn"],
        xlabel="predicted",
        ylabel="actual",
        title="confusion at threshold (test)",
    )
    return save_figure(fig, path)
