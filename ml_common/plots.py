"""Figures more than one level draws: ROC and precision-recall curves, and saving a figure.

Matplotlib runs headless (Agg); figures are written atomically as PNG.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from ml_common.atomic import atomic_write  # noqa: E402


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG atomically and close it. Returns the path."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def roc_pr_figure(y_true: np.ndarray, scores: Mapping[str, np.ndarray], title: str = "") -> Figure:
    """ROC and PR curves side by side, one line per model, AUC / AP in the legend."""
    y_true = np.asarray(y_true)
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(y_true, score)
        precision, recall, _ = precision_recall_curve(y_true, score)
        ax_roc.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y_true, score):.3f})")
        ax_pr.plot(
            recall, precision, label=f"{name} (AP {average_precision_score(y_true, score):.3f})"
        )
    ax_roc.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance")
    ax_pr.axhline(y_true.mean(), color="k", ls="--", lw=0.8, label=f"base rate {y_true.mean():.3f}")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    for ax in (ax_roc, ax_pr):
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
