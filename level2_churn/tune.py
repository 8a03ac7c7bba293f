"""Tune LightGBM with Optuna: TPE sampler, median pruning after each fold, trials in MLflow.

Each trial scores a parameter set fold by fold and reports the running mean AP; the median
pruner stops a trial whose running mean is below the median of earlier trials at the same fold.
Every trial (finished or pruned) is logged as a nested MLflow run under the tuning run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import average_precision_score

from level2_churn.settings import ColumnMapping
from level2_churn.split import Fold
from ml_common.logs import get_logger

log = get_logger(__name__)


def search_space(trial: optuna.Trial) -> dict[str, Any]:
    """Small trees, slow learning, strong regularisation: what tabular churn data rewards."""
    return {
        "n_estimators": trial.suggest_int("n_estimators", 150, 600, step=50),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.1, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 3, 16),
        "min_child_samples": trial.suggest_int("min_child_samples", 20, 200),
        "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 50.0, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
    }


def tune_lgbm(
    X: pd.DataFrame,
    y: pd.Series,
    folds: list[Fold],
    columns: ColumnMapping,
    n_trials: int,
    seed: int,
    n_jobs: int,
    timeout_s: float | None = None,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> optuna.Study:
    """Run the study; ``on_trial`` is called after each trial (used to log it to MLflow)."""
    from level2_churn.models import build_model

    def objective(trial: optuna.Trial) -> float:
        params = {**search_space(trial), "subsample_freq": 1}
        aps = []
        for step, (train, valid) in enumerate(folds):
            model = build_model("lgbm", columns, seed, n_jobs, params)
            model.fit(X.iloc[train], y.iloc[train])
            p = model.predict_proba(X.iloc[valid])[:, 1]
            aps.append(average_precision_score(y.iloc[valid], p))
            trial.report(float(np.mean(aps)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(aps))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )
    callbacks = [progress_logger(n_trials)] + ([on_trial] if on_trial else [])
    study.optimize(objective, n_trials=n_trials, timeout=timeout_s, callbacks=callbacks)
    return study


def progress_logger(
    n_trials: int,
) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """A callback that logs one line per trial: ``trial n/N``, its AP (or pruned), the best so far.

    Optuna's own logging is silenced (one warning-free line per trial reads better); a trial
    takes 1-10 s, so the user never waits long without news.
    """

    def log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        outcome = f"AP {trial.value:.4f}" if trial.value is not None else trial.state.name.lower()
        try:
            best = f"best {study.best_value:.4f} (trial {study.best_trial.number + 1})"
        except ValueError:  # no trial has finished yet
            best = "no finished trial yet"
        log.info("trial %d/%d: %s; %s", trial.number + 1, n_trials, outcome, best)

    return log_trial


def best_params(study: optuna.Study) -> dict[str, Any]:
    """The best trial's parameters, ready for ``build_model('lgbm', ..., params=...)``."""
    return {**study.best_params, "subsample_freq": 1}


def trials_table(study: optuna.Study) -> pd.DataFrame:
    frame = study.trials_dataframe(attrs=("number", "value", "state", "params", "duration"))
    frame["duration"] = frame["duration"].dt.total_seconds()
    return frame
