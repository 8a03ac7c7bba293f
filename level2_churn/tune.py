"""Tune LightGBM with Optuna: TPE sampler, median pruning after each fold, trials in MLflow.

Each trial scores a parameter set fold by fold and reports the running mean AP; the median
pruner stops a trial whose running mean is below the median of earlier trials at the same fold.
Every trial (finished or pruned) is logged as a nested MLflow run under the tuning run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import average_precision_score

from level2_churn.settings import ColumnMapping, Level2Settings
from level2_churn.split import Fold
from ml_common.logs import get_logger

# What ``tuning`` holds when LightGBM-tuned is not a candidate: no Optuna study is run.
NOT_TUNED: dict[str, Any] = {
    "n_trials": 0,
    "n_pruned": 0,
    "best_cv_ap": None,
    "best_params": None,
    "skipped": "lgbm_tuned is not in selection.candidates",
}

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
        state = trial.state.name
        if state == "COMPLETE":
            outcome = f"AP {trial.value:.4f}"
        elif state == "PRUNED" and trial.intermediate_values:
            # Optuna stores a pruned trial's last running value as its value: say it is one.
            last = max(trial.intermediate_values)
            outcome = (
                f"pruned after fold {last + 1} (running AP {trial.intermediate_values[last]:.4f})"
            )
        else:
            outcome = state.lower()
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


def tune_and_log(
    X: pd.DataFrame,
    y: pd.Series,
    folds: list[Fold],
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
        on_trial=mlflow_trial_logger(mlflow) if mlflow else None,
    )
    trials_table(study).to_csv(out / "trials.csv", index=False)
    return {
        "n_trials": len(study.trials),
        "n_pruned": sum(t.state.name == "PRUNED" for t in study.trials),
        "best_cv_ap": float(study.best_value),
        "best_params": best_params(study),
    }


def mlflow_trial_logger(mlflow: Any) -> Any:
    """A callback that logs each trial as a nested MLflow run, with its per-fold running AP.

    Hand-written rather than optuna-integration's ``MLflowCallback``: that one logs only the
    final value, while the running AP per fold is what shows why the pruner stopped a trial
    (and it would add a package for ten lines).
    """

    def on_trial(study: Any, trial: Any) -> None:
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(trial.params)
            mlflow.set_tag("state", trial.state.name)
            if trial.state.name == "COMPLETE":  # a pruned trial's value is only a running AP
                mlflow.log_metric("cv_ap", trial.value)
            for step, value in trial.intermediate_values.items():
                mlflow.log_metric("running_ap", value, step=step)

    return on_trial
