"""Evaluate: cross-validated ROC AUC / AP, paired differences with the corrected resampled t-test,
and the ROC/PR and calibration figures. The business metric and the threshold live in
``threshold``."""

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
    roc_auc_score,
)

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
