"""Train: tuning, model comparison, imbalance comparison and the chosen threshold, per dataset.

Two recipes share every building block:

- ``train_snapshot`` (Telco or any one-row-per-customer table): Optuna on the training part,
  K-fold CV of LR / tuned LightGBM / MLP on all rows with paired differences, the imbalance
  comparison, and a stratified train / validation / test holdout where the validation part picks
  the profit-maximising threshold and the test part reports it.
- ``train_events`` (the generated sources): Optuna on time-ordered folds before the first test
  month, then walk-forward month by month; the threshold for a month is chosen on the month before.

Both return a metrics dict (written as ``metrics.json``) and the fitted champion pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import Progress

from level2_churn import evaluate, split
from level2_churn.generate import MECHANISM_FEATURES
from level2_churn.models import MODEL_NAMES, build_model
from level2_churn.settings import ColumnMapping, EventDataset, Level2Settings, SnapshotDataset
from level2_churn.tune import best_params, trials_table, tune_lgbm
from ml_common.logs import get_logger

log = get_logger(__name__)


def _features(table: pd.DataFrame, columns: ColumnMapping) -> tuple[pd.DataFrame, pd.Series]:
    X = table[list(columns.categorical) + list(columns.numeric)]
    return X, table[columns.target].astype(int)


def _tune(
    X: pd.DataFrame,
    y: pd.Series,
    folds: list[split.Fold],
    columns: ColumnMapping,
    cfg: Level2Settings,
    mlflow: Any,
    out: Path,
) -> dict[str, Any]:
    """Optuna search for LightGBM on ``folds``; trials go to MLflow and ``trials.csv``.

    Returns the tuning summary stored in metrics.json, ``best_params`` included.
    """
    study = tune_lgbm(
        X,
        y,
        folds,
        columns,
        cfg.tune.n_trials,
        cfg.seed,
        cfg.n_jobs,
        cfg.tune.timeout_s,
        on_trial=_mlflow_trial_logger(mlflow) if mlflow else None,
    )
    trials_table(study).to_csv(out / "trials.csv", index=False)
    return {
        "n_trials": len(study.trials),
        "n_pruned": sum(t.state.name == "PRUNED" for t in study.trials),
        "best_cv_ap": float(study.best_value),
        "best_params": best_params(study),
    }


def _mlflow_trial_logger(mlflow: Any) -> Any:
    def on_trial(study: Any, trial: Any) -> None:
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(trial.params)
            mlflow.set_tag("state", trial.state.name)
            if trial.value is not None:
                mlflow.log_metric("cv_ap", trial.value)
            for step, value in trial.intermediate_values.items():
                mlflow.log_metric("running_ap", value, step=step)

    return on_trial


def _develop_snapshot(
    X: pd.DataFrame,
    y: pd.Series,
    holdout: split.HoldoutSplit,
    columns: ColumnMapping,
    cfg: Level2Settings,
    out: Path,
    mlflow: Any,
) -> dict[str, Any]:
    """Every choice, made on the development part (train + validation) only.

    Tuning (Optuna on the train part), model comparison and the imbalance method (repeated
    K-fold CV on train + validation, corrected t-tests) and the profit threshold (model fitted on
    train, threshold picked on validation). No argument here holds a test row.
    """
    seed, n_jobs = cfg.seed, cfg.n_jobs
    develop = np.sort(np.r_[holdout.train, holdout.valid])
    X_dev, y_dev = X.iloc[develop].reset_index(drop=True), y.iloc[develop].reset_index(drop=True)
    # The train part in development-part positions (for tuning and the threshold model).
    train_in_dev = np.flatnonzero(np.isin(develop, holdout.train))
    valid_in_dev = np.flatnonzero(np.isin(develop, holdout.valid))

    log.info("tuning LightGBM: %d trials on %d training rows", cfg.tune.n_trials, len(train_in_dev))
    tune_folds = [
        (train_in_dev[a], train_in_dev[b])
        for a, b in split.stratified_folds(y_dev.iloc[train_in_dev], cfg.tune.folds, seed)
    ]
    tuning = _tune(X_dev, y_dev, tune_folds, columns, cfg, mlflow, out)
    params = tuning["best_params"]

    folds = split.repeated_stratified_folds(y_dev, cfg.cv.folds, cfg.cv.repeats, seed + 1)
    candidates = {
        "lr": lambda: build_model("lr", columns, seed, n_jobs),
        "lgbm_default": lambda: build_model("lgbm", columns, seed, n_jobs),
        "lgbm": lambda: build_model("lgbm", columns, seed, n_jobs, params),
        "mlp": lambda: build_model("mlp", columns, seed, n_jobs, mlp=cfg.mlp),
    }
    for method in cfg.cv.imbalance_methods:
        if method != "none":
            candidates[f"lgbm_{method}"] = lambda m=method: build_model(
                "lgbm", columns, seed, n_jobs, params, imbalance=m
            )
    per_fold: dict[str, list[dict[str, float]]] = {}
    oof: dict[str, np.ndarray] = {}
    for i, (name, make) in enumerate(candidates.items(), start=1):
        log.info("CV %d/%d: %s on %d folds", i, len(candidates), name, len(folds))
        per_fold[name], oof[name] = evaluate.cross_validate(make, X_dev, y_dev, folds)
    per_fold["lgbm_none"], oof["lgbm_none"] = per_fold["lgbm"], oof["lgbm"]

    n_test_fold = len(y_dev) // cfg.cv.folds
    sizes = {"n_train": len(y_dev) - n_test_fold, "n_test": n_test_fold}
    compared = (("lgbm", "lr"), ("lgbm", "lgbm_default"), ("mlp", "lr"))
    differences = {
        f"{a}_minus_{b}": {
            m: evaluate.paired_difference(per_fold[a], per_fold[b], m, **sizes)
            for m in ("auc", "ap")
        }
        for a, b in compared
    }
    y_np = y_dev.to_numpy()
    imbalance = {}
    for method in cfg.cv.imbalance_methods:
        name = f"lgbm_{method}"
        threshold, profit = evaluate.best_threshold(y_np, oof[name], cfg.business)
        imbalance[method] = {
            **evaluate.summarise(per_fold[name]),
            "oof_best_threshold": threshold,
            "oof_profit_per_1000": profit / len(y_np) * 1000,
        }
    best_method = max(imbalance, key=lambda m: imbalance[m]["ap_mean"])

    # The champion learns on the train part; the validation part picks its threshold.
    champion = build_model("lgbm", columns, seed, n_jobs, params, imbalance=best_method)
    champion.fit(X_dev.iloc[train_in_dev], y_dev.iloc[train_in_dev])
    p_valid = champion.predict_proba(X_dev.iloc[valid_in_dev])[:, 1]
    threshold, valid_profit = evaluate.best_threshold(y_np[valid_in_dev], p_valid, cfg.business)
    return {
        "champion": champion,
        "tuning": tuning,
        "per_fold": per_fold,
        "oof": oof,
        "y_dev": y_np,
        "differences": differences,
        "imbalance": imbalance,
        "best_imbalance_method": best_method,
        "threshold": threshold,
        "valid_profit": valid_profit,
        "selection_ap": imbalance[best_method]["ap_mean"],
        "n_resamples": len(folds),
    }


def train_snapshot(
    table: pd.DataFrame,
    columns: ColumnMapping,
    dataset: SnapshotDataset,
    cfg: Level2Settings,
    out: Path,
    mlflow: Any = None,
    holdout: split.HoldoutSplit | None = None,
) -> tuple[dict[str, Any], Any]:
    """The snapshot recipe; figures go to ``out``. Returns (metrics, champion pipeline).

    Protocol: a stratified test part is set aside first; every choice is made by
    ``_develop_snapshot`` on the other rows; the test part is scored once, at the end, to
    report. ``holdout`` fixes the split (the poisoned-labels test passes it in).
    """
    X, y = _features(table, columns)
    if holdout is None:
        holdout = split.stratified_holdout(y, dataset.test_size, dataset.valid_size, cfg.seed)
    dev = _develop_snapshot(X, y, holdout, columns, cfg, out, mlflow)
    champion, threshold = dev["champion"], dev["threshold"]

    # The one and only look at the test part.
    p_test = champion.predict_proba(X.iloc[holdout.test])[:, 1]
    y_test = y.to_numpy()[holdout.test]
    test_profit = evaluate.profit_at(y_test, p_test, threshold, cfg.business)
    confusion = evaluate.confusion_at(y_test, p_test, threshold)

    per_fold, oof, y_dev = dev["per_fold"], dev["oof"], dev["y_dev"]
    reported = (*MODEL_NAMES, "lgbm_default")
    oof_models = {name: oof[name] for name in MODEL_NAMES}
    title = f"out-of-fold, {cfg.cv.folds}-fold CV on the development part"
    figures = {
        "roc_pr": evaluate.plot_curves(y_dev, oof_models, title, out / "roc_pr.png"),
        "calibration": evaluate.plot_calibration(
            y_dev,
            oof_models,
            "calibration (out-of-fold, development part)",
            out / "calibration.png",
        ),
        "profit": evaluate.plot_profit(
            evaluate.profit_curve(y_test, p_test, cfg.business),
            threshold,
            confusion,
            "expected campaign profit (test)",
            out / "profit.png",
        ),
    }
    metrics = {
        "protocol": {
            "development_rows": len(y_dev),
            "test_rows": len(y_test),
            "cv_folds": cfg.cv.folds,
            "cv_repeats": cfg.cv.repeats,
            "choices_made_on": "development part (train + validation); test scored once",
        },
        "cv": {name: evaluate.summarise(per_fold[name]) for name in reported},
        "cv_folds": {name: per_fold[name] for name in reported},
        "paired_difference_lgbm_minus_lr": dev["differences"]["lgbm_minus_lr"],
        "paired_difference_lgbm_minus_lgbm_default": dev["differences"]["lgbm_minus_lgbm_default"],
        "paired_difference_mlp_minus_lr": dev["differences"]["mlp_minus_lr"],
        "imbalance": dev["imbalance"],
        "best_imbalance_method": dev["best_imbalance_method"],
        "selection_ap": dev["selection_ap"],
        "tuning": dev["tuning"],
        "holdout": {
            "threshold": threshold,
            "valid_profit": dev["valid_profit"],
            "test_profit": test_profit,
            "test_customers": len(y_test),
            "test_profit_per_1000": test_profit / len(y_test) * 1000,
            "confusion": confusion,
            **{f"test_{k}": v for k, v in evaluate.scores(y_test, p_test).items()},
        },
        "figures": {k: p.name for k, p in figures.items()},
    }
    return metrics, champion


def train_events(
    table: pd.DataFrame,
    columns: ColumnMapping,
    dataset: EventDataset,
    cfg: Level2Settings,
    out: Path,
    mlflow: Any = None,
) -> tuple[dict[str, Any], Any]:
    """The walk-forward recipe on the event table. Returns (metrics, last month's LightGBM)."""
    X, y = _features(table, columns)
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
    tuning = _tune(X, y, tune_folds, columns, cfg, mlflow, out)
    params = tuning["best_params"]

    months: list[dict[str, Any]] = []
    pooled: dict[str, list[np.ndarray]] = {name: [] for name in MODEL_NAMES}
    pooled_y: list[np.ndarray] = []
    previous: tuple[np.ndarray, np.ndarray] | None = None
    champion = None
    with Progress(transient=True) as progress:
        task = progress.add_task("walk-forward", total=len(folds))
        for cutoff, train, test in folds:
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
                threshold, _ = evaluate.best_threshold(previous[0], previous[1], cfg.business)
                row["threshold"] = threshold
                row["profit"] = evaluate.profit_at(y_test, p_lgbm, threshold, cfg.business)
            previous = (y_test, p_lgbm)
            pooled_y.append(y_test)
            months.append(row)
            progress.advance(task)
    per_month = pd.DataFrame(months)
    per_month.to_csv(out / "walk_forward.csv", index=False)

    gains = _importance(champion, top=None)
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
        "walk_forward": _plot_walk_forward(per_month, out / "walk_forward.png"),
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


# The recovery check: the share of LightGBM's total gain that lands on the exact mechanism
# features (generate.HIDDEN_MECHANISM["features"]). A random ranking puts about 14/27 = 0.52 there.
MECHANISM_FLOOR = 0.7


def mechanism_gain_share(gains: dict[str, float], mechanism: frozenset[str]) -> float:
    """Share of the total gain held by features whose exact name is in ``mechanism``."""
    total = sum(gains.values())
    return sum(v for f, v in gains.items() if f in mechanism) / total if total else 0.0


def chance_of_gain_share(n_features: int, n_mechanism: int, floor: float) -> float:
    """Probability that random gains (uniform on the simplex) reach ``floor``: the check's
    false-pass rate. The share of k of n such gains follows Beta(k, n - k); 14 of 27 features
    and floor 0.7 give 2.6 %."""
    from scipy.stats import beta

    return float(beta(n_mechanism, n_features - n_mechanism).sf(floor))


def _importance(pipeline: Any, top: int | None) -> dict[str, float]:
    """Share of total gain per input feature (one-hot columns summed back to their source)."""
    names = pipeline.named_steps["preprocess"].get_feature_names_out()
    booster = pipeline.named_steps["model"].booster_
    gain = booster.feature_importance(importance_type="gain")
    categorical = pipeline.named_steps["preprocess"].transformers_[0][2]
    by_feature: dict[str, float] = {}
    for name, value in zip(names, gain, strict=True):
        source = next((c for c in categorical if name.startswith(f"{c}_")), name)
        by_feature[source] = by_feature.get(source, 0.0) + float(value)
    total = sum(by_feature.values()) or 1.0
    ranked = sorted(by_feature.items(), key=lambda kv: -kv[1])[:top]
    return {k: round(v / total, 4) for k, v in ranked}


def _plot_walk_forward(per_month: pd.DataFrame, path: Path) -> Path:
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
