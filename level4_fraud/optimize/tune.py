"""An Optuna search over FraudNet's hyperparameters, every trial an MLflow run.

The objective is *prequential* (walk-forward) average precision: train on a window, skip the label
delay, test on the following week; slide the window forward a week and repeat; average. That is the
handbook's protocol for model selection on time-ordered fraud data: a random split would let the
model see the future.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from ml_common.logs import get_logger

log = get_logger(__name__)


def walk_forward_folds(n_rows_by_day: np.ndarray, n_folds: int = 2) -> list[tuple[slice, slice]]:
    """(train, test) row slices of the training window, ordered by day: test = the last weeks.

    Fold ``k`` (newest last) trains on all days before its test week minus a one-week gap
    standing in for the label delay.
    """
    days = len(n_rows_by_day)
    bounds = np.concatenate([[0], np.cumsum(n_rows_by_day)])
    folds = []
    for k in range(n_folds, 0, -1):
        test_end = days - 7 * (k - 1)
        test_start = test_end - 7
        train_end = test_start - 7
        if train_end < 7:
            continue
        folds.append(
            (
                slice(0, int(bounds[train_end])),
                slice(int(bounds[test_start]), int(bounds[test_end])),
            )
        )
    if not folds:
        raise ValueError("training window too short for walk-forward folds (needs >= 21 days)")
    return folds


def tune(settings: Any, splits: Any, n_trials: int = 10, n_folds: int = 2) -> dict[str, Any]:
    """Search hidden sizes, dropout, learning rate, batch size and epochs; log trials to MLflow.

    Args:
        settings: :class:`~level4_fraud.industrial.IndustrialSettings`.
        splits: :class:`~level4_fraud.industrial.Splits` (the training window is searched).
        n_trials: Optuna trials (TPE sampler, seeded).
        n_folds: walk-forward folds per trial.

    Returns:
        ``best_value`` (mean walk-forward AP), ``best_params``, ``trials`` (one dict per trial),
        ``parent_run_id`` of the MLflow run holding the trials as nested runs.
    """
    import optuna

    from level4_fraud.models import TorchConfig, predict_proba, train_torch_model
    from ml_common.tracking import setup_mlflow

    mlflow = setup_mlflow("level4_fraud")
    X, y = splits.X_train, splits.y_train
    # Rows are in day order; the training window has settings.world.train_days days.
    rows_per_day = np.array_split(np.arange(len(y)), settings.world.train_days)
    folds = walk_forward_folds(np.array([len(r) for r in rows_per_day]), n_folds)

    def objective(trial: optuna.Trial) -> float:
        first = trial.suggest_categorical("hidden_1", [32, 64, 128, 256])
        second = trial.suggest_categorical("hidden_2", [0, 16, 32, 64])
        config = TorchConfig(
            hidden=(first, second) if second else (first,),
            dropout=trial.suggest_float("dropout", 0.0, 0.3),
            lr=trial.suggest_float("lr", 3e-4, 1e-2, log=True),
            batch_size=trial.suggest_categorical("batch_size", [512, 1024, 2048]),
            epochs=trial.suggest_int("epochs", 2, 6),
            seed=settings.seed,
            device="cpu",
        )
        scores = []
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(trial.params)
            for k, (train, test) in enumerate(folds):
                model = train_torch_model(X[train], y[train], config)
                ap = float(average_precision_score(y[test], predict_proba(model, X[test])))
                scores.append(ap)
                mlflow.log_metric("fold_ap", ap, step=k)
            mlflow.log_metric("walk_forward_ap", float(np.mean(scores)))
        return float(np.mean(scores))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.seed)
    )
    with mlflow.start_run(run_name="optuna-fraudnet") as parent:
        mlflow.set_tag("stage", "tune")
        study.optimize(objective, n_trials=n_trials, show_progress_bar=False)
        mlflow.log_params({f"best_{k}": v for k, v in study.best_params.items()})
        mlflow.log_metric("best_walk_forward_ap", study.best_value)
    log.info("best walk-forward AP %.4f with %s", study.best_value, study.best_params)
    return {
        "best_value": study.best_value,
        "best_params": study.best_params,
        "trials": [{"number": t.number, "value": t.value, **t.params} for t in study.trials],
        "parent_run_id": parent.info.run_id,
    }
