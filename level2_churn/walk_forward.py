"""The event recipe: tune on the months before the test months, then score month by month.

Each test month's models learn only from earlier cut-offs (``split.walk_forward``); its threshold
is the one that maximised profit on the month before. Tuning folds never see a test month.
Returns the metrics dict (``metrics.json``) and the last month's LightGBM, the one registered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import Progress

from level2_churn import evaluate, split, threshold
from level2_churn.generate import MECHANISM_FEATURES
from level2_churn.mechanism import (
    MECHANISM_FLOOR,
    chance_of_gain_share,
    gain_by_feature,
    mechanism_gain_share,
)
from level2_churn.models import MODEL_NAMES, build_model, model_frame
from level2_churn.settings import ColumnMapping, EventDataset, Level2Settings
from level2_churn.tune import tune_and_log
from ml_common.logs import get_logger

log = get_logger(__name__)


def train_walk_forward(
    table: pd.DataFrame,
    columns: ColumnMapping,
    dataset: EventDataset,
    cfg: Level2Settings,
    out: Path,
    mlflow: Any = None,
) -> tuple[dict[str, Any], Any]:
    """The walk-forward recipe on the event table. Returns (metrics, last month's LightGBM)."""
    X, y = model_frame(table, columns)
    seed, n_jobs = cfg.seed, cfg.n_jobs
    window = dataset.train_window_months
    folds = split.walk_forward(table["cutoff"], dataset.test_months, window)
    # Tuning: the same walk-forward on the cut-offs before the first test month.
    tune_folds = [
        (train, valid)
        for _, train, valid in split.walk_forward(
            table["cutoff"], min(cfg.tune.folds, 2), window, before=folds[0][0]
        )
    ]
    mlp = cfg.mlp.model_copy(update={"epochs": dataset.mlp_epochs})
    log.info("tuning LightGBM: %d trials on time-ordered folds", cfg.tune.n_trials)
    tuning = tune_and_log(X, y, tune_folds, columns, cfg, mlflow, out)
    params = tuning["best_params"]

    months: list[dict[str, Any]] = []
    pooled: dict[str, list[np.ndarray]] = {name: [] for name in MODEL_NAMES}
    pooled_y: list[np.ndarray] = []
    previous: tuple[np.ndarray, np.ndarray] | None = None
    champion = None
    with Progress(transient=True) as progress:
        task = progress.add_task("walk-forward", total=len(folds))
        for month, (cutoff, train, test) in enumerate(folds, start=1):
            # A log line too: the progress bar is invisible when the output is not a terminal.
            log.info(
                "walk-forward %d/%d: cut-off %d-%02d, %d training rows, %d test rows",
                month,
                len(folds),
                cutoff // 12,
                cutoff % 12 + 1,
                len(train),
                len(test),
            )
            y_test = y.iloc[test].to_numpy()
            row: dict[str, Any] = {
                "cutoff": cutoff,
                "n_test": len(test),
                "churn_rate": float(y_test.mean()),
            }
            for name in MODEL_NAMES:
                model = build_model(
                    name, columns, seed, n_jobs, params if name == "lgbm" else None, mlp=mlp
                )
                model.fit(X.iloc[train], y.iloc[train])
                p = model.predict_proba(X.iloc[test])[:, 1]
                for key, value in evaluate.scores(y_test, p).items():
                    row[f"{name}_{key}"] = value
                pooled[name].append(p)
                if name == "lgbm":
                    champion, p_lgbm = model, p
            if previous is not None:  # threshold chosen on last month, applied to this one
                cut, _ = threshold.best_threshold(previous[0], previous[1], cfg.business)
                row["threshold"] = cut
                row["profit"] = threshold.profit_at(y_test, p_lgbm, cut, cfg.business)
            previous = (y_test, p_lgbm)
            pooled_y.append(y_test)
            months.append(row)
            progress.advance(task)
    per_month = pd.DataFrame(months)
    per_month.to_csv(out / "walk_forward.csv", index=False)

    gains = gain_by_feature(champion, top=None)
    features = [*columns.categorical, *columns.numeric]
    recovered = mechanism_gain_share(gains, MECHANISM_FEATURES)
    n_mechanism = len(MECHANISM_FEATURES & set(features))
    y_pooled = np.concatenate(pooled_y)
    figures = {
        "roc_pr": evaluate.plot_curves(
            y_pooled,
            {k: np.concatenate(v) for k, v in pooled.items()},
            "walk-forward, pooled test months",
            out / "roc_pr.png",
        ),
        "walk_forward": plot_walk_forward(per_month, out / "walk_forward.png"),
    }
    profits = per_month["profit"].dropna() if "profit" in per_month else pd.Series(dtype=float)
    metrics = {
        "walk_forward": {
            name: {
                "ap_mean": float(per_month[f"{name}_ap"].mean()),
                "ap_std": float(per_month[f"{name}_ap"].std(ddof=1)),
                "auc_mean": float(per_month[f"{name}_auc"].mean()),
            }
            for name in MODEL_NAMES
        },
        "months": per_month.astype(object).where(per_month.notna(), None).to_dict("records"),
        "profit_mean_per_month": float(profits.mean()) if len(profits) else None,
        "top_features": dict(list(gains.items())[:10]),
        "mechanism_gain_share": recovered,
        "mechanism_floor": MECHANISM_FLOOR,
        "mechanism_chance_of_floor": chance_of_gain_share(
            len(features), n_mechanism, MECHANISM_FLOOR
        ),
        "selection_ap": tuning["best_cv_ap"],
        "tuning": tuning,
        "figures": {k: p.name for k, p in figures.items()},
    }
    return metrics, champion


def plot_walk_forward(per_month: pd.DataFrame, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from ml_common.plots import save_figure

    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(per_month))
    for offset, name in zip((-0.25, 0, 0.25), MODEL_NAMES, strict=True):
        ax.bar(x + offset, per_month[f"{name}_ap"], width=0.25, label=name)
    ax.plot(x, per_month["churn_rate"], "k--", marker="o", ms=3, label="churn rate (chance AP)")
    labels = [f"{c // 12}-{c % 12 + 1:02d}" for c in per_month["cutoff"]]
    ax.set(
        xticks=x,
        xticklabels=labels,
        xlabel="test month (cut-off)",
        ylabel="average precision",
        title="walk-forward AP per month",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path)
