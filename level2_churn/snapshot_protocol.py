"""The snapshot recipe (Telco or any one-row-per-customer table): choose on the development
part, then look at the test part once.

1. ``split.stratified_holdout`` sets a test part aside (the rest is train + validation: the
   *development* part).
2. ``develop`` makes every choice without a test row: Optuna on the train part (``tune``), the
   repeated-CV comparison of the candidate families, the family chosen by the rule declared in
   ``selection`` and the imbalance method (``compare``), the chosen family fitted on train and
   its profit threshold picked on validation (``threshold``).
3. ``train_snapshot`` scores the champion on the test part, once, and draws the figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from level2_churn import compare, evaluate, split, threshold
from level2_churn.models import model_frame
from level2_churn.settings import ColumnMapping, Level2Settings, SnapshotDataset
from level2_churn.tune import NOT_TUNED, tune_and_log
from ml_common.logs import get_logger

log = get_logger(__name__)


def develop(
    X: pd.DataFrame,
    y: pd.Series,
    holdout: split.HoldoutSplit,
    columns: ColumnMapping,
    cfg: Level2Settings,
    out: Path,
    mlflow: Any,
) -> dict[str, Any]:
    """Every choice, made on the development part (train + validation) only.

    Tuning (Optuna on the train part, only when ``lgbm_tuned`` is a candidate), the family
    choice by the declared rule and the imbalance method (repeated K-fold CV on train +
    validation, corrected t-tests) and the profit threshold (the chosen family fitted on train,
    threshold picked on validation). No test row reaches this function.
    """
    develop_rows = np.sort(np.r_[holdout.train, holdout.valid])
    X_dev = X.iloc[develop_rows].reset_index(drop=True)
    y_dev = y.iloc[develop_rows].reset_index(drop=True)
    # The train and validation parts in development-part positions.
    train_rows = np.flatnonzero(np.isin(develop_rows, holdout.train))
    valid_rows = np.flatnonzero(np.isin(develop_rows, holdout.valid))

    if "lgbm_tuned" in cfg.selection.candidates:
        log.info(
            "tuning LightGBM: %d trials on %d training rows", cfg.tune.n_trials, len(train_rows)
        )
        tune_folds = [
            (train_rows[a], train_rows[b])
            for a, b in split.stratified_folds(y_dev.iloc[train_rows], cfg.tune.folds, cfg.seed)
        ]
        tuning = tune_and_log(X_dev, y_dev, tune_folds, columns, cfg, mlflow, out)
    else:
        tuning = NOT_TUNED
    compared = compare.compare_models(X_dev, y_dev, columns, cfg, tuning["best_params"])
    method = compared["best_imbalance_method"]
    family = compared["selection"]["chosen_family"]

    # The chosen family learns on the train part; the validation part picks its threshold.
    log.info("champion: %s (imbalance: %s) fitted on the train part", family, method)
    champion = compare.build_family(family, columns, cfg, tuning["best_params"], imbalance=method)
    champion.fit(X_dev.iloc[train_rows], y_dev.iloc[train_rows])
    p_valid = champion.predict_proba(X_dev.iloc[valid_rows])[:, 1]
    y_valid = y_dev.to_numpy()[valid_rows]
    cut, valid_profit = threshold.best_threshold(y_valid, p_valid, cfg.business)
    return {
        **compared,
        "champion": champion,
        "tuning": tuning,
        "y_dev": y_dev.to_numpy(),
        "threshold": cut,
        "valid_profit": valid_profit,
        "selection_ap": compared["imbalance"][method]["ap_mean"],
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
    ``develop`` on the other rows; the test part is scored once, at the end, to
    report. ``holdout`` fixes the split (the poisoned-labels test passes it in).
    """
    X, y = model_frame(table, columns)
    if holdout is None:
        holdout = split.stratified_holdout(y, dataset.test_size, dataset.valid_size, cfg.seed)
    dev = develop(X, y, holdout, columns, cfg, out, mlflow)
    champion, cut = dev["champion"], dev["threshold"]

    # The one and only look at the test part.
    p_test = champion.predict_proba(X.iloc[holdout.test])[:, 1]
    y_test = y.to_numpy()[holdout.test]
    test_profit = threshold.profit_at(y_test, p_test, cut, cfg.business)
    confusion = threshold.confusion_at(y_test, p_test, cut)

    per_fold, oof, y_dev = dev["per_fold"], dev["oof"], dev["y_dev"]
    reported = list(cfg.selection.candidates)
    title = f"out-of-fold, {cfg.cv.folds}-fold CV on the development part"
    figures = {
        "roc_pr": evaluate.plot_curves(y_dev, oof, title, out / "roc_pr.png"),
        "calibration": evaluate.plot_calibration(
            y_dev,
            oof,
            "calibration (out-of-fold, development part)",
            out / "calibration.png",
        ),
        "profit": threshold.plot_profit(
            threshold.profit_curve(y_test, p_test, cfg.business),
            cut,
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
        "paired_differences": dev["differences"],
        "selection": dev["selection"],
        "chosen_family": dev["selection"]["chosen_family"],
        "imbalance": dev["imbalance"],
        "best_imbalance_method": dev["best_imbalance_method"],
        "selection_ap": dev["selection_ap"],
        "tuning": dev["tuning"],
        "holdout": {
            "threshold": cut,
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
