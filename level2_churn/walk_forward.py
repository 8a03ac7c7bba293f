"""The event recipe: tune and choose the family on the months before the test months, then
score month by month.

Each test month's models learn only from earlier cut-offs (``split.walk_forward``); its threshold
is the one that maximised profit on the month before. Tuning folds and the family choice
(``compare.choose_family`` on ``selection.event_folds`` time-ordered folds) never see a test
month. Returns the metrics dict (``metrics.json``) and the last month's model of the chosen
family, the one registered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import Progress

from level2_churn import evaluate, split, threshold
from level2_churn.compare import build_family, choose_family
from level2_churn.generate import MECHANISM_FEATURES
from level2_churn.mechanism import (
    MECHANISM_FLOOR,
    chance_of_gain_share,
    gain_by_feature,
    mechanism_gain_share,
)
from level2_churn.models import model_frame
from level2_churn.settings import ColumnMapping, EventDataset, Level2Settings, MLPSettings
from level2_churn.tune import NOT_TUNED, tune_and_log
from ml_common.logs import get_logger

log = get_logger(__name__)




def choose_on_months(
    X: pd.DataFrame,
    y: pd.Series,
    cutoffs: pd.Series,
    first_test: int,
    columns: ColumnMapping,
    cfg: Level2Settings,
    params: dict[str, Any] | None,
    mlp: MLPSettings,
    window: int,
) -> dict[str, Any]:
    """The declared family rule on time-ordered folds before ``first_test`` (no test month)."""
    folds = [
        (train, valid)
        for _, train, valid in split.walk_forward(
            cutoffs, cfg.selection.event_folds, window, before=first_test
        )
    ]
    per_fold = {}
    for family in cfg.selection.candidates:
        log.info("choice %s on %d months before the test months", family, len(folds))
        make = lambda f=family: build_family(f, columns, cfg, params, mlp=mlp)  # noqa: E731
        per_fold[family], _ = evaluate.cross_validate(make, X, y, folds)
    n_train = int(np.mean([len(a) for a, _ in folds]))
    n_test = int(np.mean([len(b) for _, b in folds]))
    selection = choose_family(per_fold, cfg.selection, n_train, n_test)
    selection["means_ap"] = {f: float(np.mean([s["ap"] for s in per_fold[f]])) for f in per_fold}
    selection["folds"] = len(folds)
    return selection


def month_difference(
    per_month: pd.DataFrame, chosen: str, baseline: str
) -> dict[str, dict[str, float]]:
    """Champion - best baseline (AUC and AP) over the test months, with the corrected t-test.

    The months do not overlap as test sets but share training months, hence the correction
    (``n_train``: a month's training rows, ``n_test``: its test rows, averaged over months).
    """
    n_train = int(per_month["n_train"].mean())
    n_test = int(per_month["n_test"].mean())
    out = {}
    for metric in ("auc", "ap"):
        champion = [{metric: v} for v in per_month[f"{chosen}_{metric}"]]
        base = [{metric: v} for v in per_month[f"{baseline}_{metric}"]]
        out[metric] = evaluate.paired_difference(champion, base, metric, n_train, n_test)
    return out


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
    window = dataset.train_window_months
    folds = split.walk_forward(table["cutoff"], dataset.test_months, window)
    first_test = folds[0][0]
    # Tuning and the family choice: the same walk-forward on the cut-offs before the first
    # test month, so neither ever sees a test month.
    tune_folds = [
        (train, valid)
        for _, train, valid in split.walk_forward(
            table["cutoff"], min(cfg.tune.folds, 2), window, before=first_test
        )
    ]
    mlp = cfg.mlp.model_copy(update={"epochs": dataset.mlp_epochs})
    families = list(cfg.selection.candidates)
    if "lgbm_tuned" in families:
        log.info("tuning LightGBM: %d trials on time-ordered folds", cfg.tune.n_trials)
        tuning = tune_and_log(X, y, tune_folds, columns, cfg, mlflow, out)
    else:
        tuning = NOT_TUNED
    params = tuning["best_params"]
    selection = choose_on_months(
        X, y, table["cutoff"], first_test, columns, cfg, params, mlp, window
    )
    chosen = selection["chosen_family"]
    # The mechanism check reads LightGBM gains: the chosen family if it is a LightGBM.
    gain_family = chosen if chosen.startswith("lgbm") else "lgbm_default"
    scored = families + ([gain_family] if gain_family not in families else [])

    months: list[dict[str, Any]] = []
    pooled: dict[str, list[np.ndarray]] = {name: [] for name in scored}
    pooled_y: list[np.ndarray] = []
    previous: tuple[np.ndarray, np.ndarray] | None = None
    champion = gain_model = None
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
                "n_train": len(train),
                "n_test": len(test),
                "churn_rate": float(y_test.mean()),
            }
            for name in scored:
                model = build_family(name, columns, cfg, params, mlp=mlp)
                model.fit(X.iloc[train], y.iloc[train])
                p = model.predict_proba(X.iloc[test])[:, 1]
                for key, value in evaluate.scores(y_test, p).items():
                    row[f"{name}_{key}"] = value
                pooled[name].append(p)
                if name == chosen:
                    champion, p_champion = model, p
                if name == gain_family:
                    gain_model = model
            if previous is not None:  # threshold chosen on last month, applied to this one
                cut, _ = threshold.best_threshold(previous[0], previous[1], cfg.business)
                row["threshold"] = cut
                row["profit"] = threshold.profit_at(y_test, p_champion, cut, cfg.business)
            previous = (y_test, p_champion)
            pooled_y.append(y_test)
            months.append(row)
            progress.advance(task)
    per_month = pd.DataFrame(months)
    per_month.to_csv(out / "walk_forward.csv", index=False)

    gains = gain_by_feature(gain_model, top=None)
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
        "walk_forward": plot_walk_forward(per_month, scored, out / "walk_forward.png"),
    }
    profits = per_month["profit"].dropna() if "profit" in per_month else pd.Series(dtype=float)
    metrics = {
        "walk_forward": {
            name: {
                "ap_mean": float(per_month[f"{name}_ap"].mean()),
                "ap_std": float(per_month[f"{name}_ap"].std(ddof=1)),
                "auc_mean": float(per_month[f"{name}_auc"].mean()),
            }
            for name in scored
        },
        "selection": selection,
        "chosen_family": chosen,
        # The baseline that did best on the test months: the stricter comparison to report.
        "best_baseline_by_month": (
            best_baseline := max(
                cfg.selection.baselines, key=lambda f: float(per_month[f"{f}_ap"].mean())
            )
        ),
        "champion_minus_best_baseline_by_month": month_difference(per_month, chosen, best_baseline),
        "months": per_month.astype(object).where(per_month.notna(), None).to_dict("records"),
        "profit_mean_per_month": float(profits.mean()) if len(profits) else None,
        "top_features": dict(list(gains.items())[:10]),
        "mechanism_gain_share": recovered,
        "mechanism_floor": MECHANISM_FLOOR,
        "mechanism_chance_of_floor": chance_of_gain_share(
            len(features), n_mechanism, MECHANISM_FLOOR
        ),
        "selection_ap": selection["means_ap"][chosen],
        "tuning": tuning,
        "figures": {k: p.name for k, p in figures.items()},
    }
    return metrics, champion


def plot_walk_forward(per_month: pd.DataFrame, families: list[str], path: Path) -> Path:
    import matplotlib.pyplot as plt

    from ml_common.plots import save_figure

    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(per_month))
    width = 0.8 / len(families)
    for i, name in enumerate(families):
        offset = (i - (len(families) - 1) / 2) * width
        ax.bar(x + offset, per_month[f"{name}_ap"], width=width, label=name)
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
