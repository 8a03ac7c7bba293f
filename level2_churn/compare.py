"""Compare: models and imbalance methods, cross-validated on the development part only.

Every candidate (logistic regression, LightGBM with the fixed defaults, tuned LightGBM, the MLP,
and tuned LightGBM with each imbalance method) is scored on the same repeated stratified K folds
of the development part. Differences are paired fold by fold and tested with the corrected
resampled t-test (``evaluate.paired_difference``). The imbalance method is chosen here, by
cross-validated AP: a choice, so never on the test part.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from level2_churn import evaluate, split, threshold
from level2_churn.models import build_model
from level2_churn.settings import ColumnMapping, Level2Settings
from ml_common.logs import get_logger

log = get_logger(__name__)
# (model, baseline) pairs whose fold differences are tested.
COMPARED = (("lgbm", "lr"), ("lgbm", "lgbm_default"), ("mlp", "lr"))


def candidates(
    columns: ColumnMapping, cfg: Level2Settings, params: dict[str, Any]
) -> dict[str, Callable[[], Any]]:
    """Model factories by name; ``lgbm`` is tuned with ``params``, ``lgbm_default`` is not."""
    seed, n_jobs = cfg.seed, cfg.n_jobs
    made: dict[str, Callable[[], Any]] = {
        "lr": lambda: build_model("lr", columns, seed, n_jobs),
        "lgbm_default": lambda: build_model("lgbm", columns, seed, n_jobs),
        "lgbm": lambda: build_model("lgbm", columns, seed, n_jobs, params),
        "mlp": lambda: build_model("mlp", columns, seed, n_jobs, mlp=cfg.mlp),
    }
    for method in cfg.cv.imbalance_methods:
        if method != "none":
            made[f"lgbm_{method}"] = lambda m=method: build_model(
                "lgbm", columns, seed, n_jobs, params, imbalance=m
            )
    return made


def compare_models(
    X_dev: pd.DataFrame,
    y_dev: pd.Series,
    columns: ColumnMapping,
    cfg: Level2Settings,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Repeated K-fold CV of every candidate on the development rows; the imbalance choice."""
    folds = split.repeated_stratified_folds(y_dev, cfg.cv.folds, cfg.cv.repeats, cfg.seed + 1)
    per_fold: dict[str, list[dict[str, float]]] = {}
    oof: dict[str, np.ndarray] = {}
    made = candidates(columns, cfg, params)
    for i, (name, make) in enumerate(made.items(), start=1):
        log.info("CV %d/%d: %s on %d folds", i, len(made), name, len(folds))
        per_fold[name], oof[name] = evaluate.cross_validate(make, X_dev, y_dev, folds)
    per_fold["lgbm_none"], oof["lgbm_none"] = per_fold["lgbm"], oof["lgbm"]

    n_test_fold = len(y_dev) // cfg.cv.folds
    sizes = {"n_train": len(y_dev) - n_test_fold, "n_test": n_test_fold}
    differences = {
        f"{a}_minus_{b}": {
            m: evaluate.paired_difference(per_fold[a], per_fold[b], m, **sizes)
            for m in ("auc", "ap")
        }
        for a, b in COMPARED
    }
    y = y_dev.to_numpy()
    imbalance = {}
    for method in cfg.cv.imbalance_methods:
        name = f"lgbm_{method}"
        cut, profit = threshold.best_threshold(y, oof[name], cfg.business)
        imbalance[method] = {
            **evaluate.summarise(per_fold[name]),
            "oof_best_threshold": cut,
            "oof_profit_per_1000": profit / len(y) * 1000,
        }
    best_method = max(imbalance, key=lambda m: imbalance[m]["ap_mean"])
    return {
        "per_fold": per_fold,
        "oof": oof,
        "differences": differences,
        "imbalance": imbalance,
        "best_imbalance_method": best_method,
        "n_resamples": len(folds),
    }
