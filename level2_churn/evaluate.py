"""Evaluate: cross-validated ROC AUC / AP with paired differences, calibration, and the business
metric that picks the decision threshold.

Business metric (config ``business``): contact every customer scored above the threshold. Each
contact costs ``contact_cost``; a contacted customer accepts the retention offer with probability
``acceptance_rate``, and each accepted offer costs ``offer_cost``. An accepted offer to a customer
who would have churned keeps ``customer_value``. Expected profit at a threshold::

    TP * a * (value - offer) - FP * a * offer - (TP + FP) * contact
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    roc_auc_score,
)

from level2_churn.settings import BusinessSettings
from level2_churn.split import Fold
from ml_common.plots import roc_pr_figure, save_figure


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, average precision and Brier score of probabilities ``p``."""
    return {
        "auc": float(roc_auc_score(y, p)),
        "ap": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
    }


def cross_validate(
    make_model: Callable[[], Any], X: pd.DataFrame, y: pd.Series, folds: list[Fold]
) -> tuple[list[dict[str, float]], np.ndarray]:
    """Per-fold scores and the out-of-fold probabilities of a freshly built model per fold."""
    oof = np.zeros(len(y))
    per_fold = []
    for train, test in folds:
        model = clone(make_model())
        model.fit(X.iloc[train], y.iloc[train])
        oof[test] = model.predict_proba(X.iloc[test])[:, 1]
        per_fold.append(scores(y.iloc[test].to_numpy(), oof[test]))
    return per_fold, oof


def summarise(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """mean and std (ddof=1) of each score over folds."""
    frame = pd.DataFrame(per_fold)
    out = {}
    for column in frame:
        out[f"{column}_mean"] = float(frame[column].mean())
        out[f"{column}_std"] = float(frame[column].std(ddof=1))
    return out


def corrected_resampled_ttest(
    differences: np.ndarray, n_train: int, n_test: int
) -> tuple[float, float]:
    """Nadeau and Bengio's corrected resampled t-test: (t statistic, two-sided p-value).

    Written out because it is the lesson: the plain paired t-test treats the J fold differences
    as independent, but cross-validation folds share most of their training rows, so the
    differences are positively correlated and the plain test's variance is too small (its
    p-values too small). Nadeau & Bengio (2003) inflate the variance of the mean difference from
    ``s^2 / J`` to ``(1/J + n_test/n_train) * s^2``; with 5-fold CV that more than doubles it.
    """
    d = np.asarray(differences, dtype=float)
    j = len(d)
    variance = d.var(ddof=1) if j > 1 else 0.0
    if j < 2 or variance == 0:
        return 0.0, 1.0
    t = d.mean() / np.sqrt((1 / j + n_test / n_train) * variance)
    return float(t), float(2 * stats.t.sf(abs(t), df=j - 1))


def paired_difference(
    model: list[dict[str, float]],
    baseline: list[dict[str, float]],
    metric: str,
    n_train: int,
    n_test: int,
) -> dict[str, float]:
    """Fold-by-fold difference model - baseline on the same folds: mean, std, and two p-values.

    ``p_value`` is the corrected resampled t-test (the one to read); ``p_value_naive`` is the plain
    paired t-test, kept beside it to show how much smaller the anti-conservative test makes it.
    ``n_train`` / ``n_test`` are the rows a fold trains on and is scored on.
    """
    a = np.array([f[metric] for f in model])
    b = np.array([f[metric] for f in baseline])
    diff = a - b
    naive = float(stats.ttest_rel(a, b).pvalue) if len(diff) > 1 and diff.std() > 0 else 1.0
    t, p_value = corrected_resampled_ttest(diff, n_train, n_test)
    return {
        "mean": float(diff.mean()),
        "std": float(diff.std(ddof=1)) if len(diff) > 1 else 0.0,
        "t_corrected": t,
        "p_value": p_value,
        "p_value_naive": naive,
        "n_resamples": len(diff),
    }


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


def plot_curves(y: np.ndarray, oof: Mapping[str, np.ndarray], title: str, path: Path) -> Path:
    """ROC and PR curves of every model (shared helper from ml_common)."""
    return save_figure(roc_pr_figure(y, oof, title=title), path)


def plot_calibration(y: np.ndarray, oof: Mapping[str, np.ndarray], title: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, p in oof.items():
        frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(mean, frac, marker="o", ms=3, label=f"{name} (Brier {brier_score_loss(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect")
    ax.set(xlabel="predicted churn probability", ylabel="observed churn rate", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


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
