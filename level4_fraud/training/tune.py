"""An Optuna search over FraudNet's hyperparameters, every trial an MLflow run.

The objective is *prequential* (walk-forward) average precision over the folds of
:func:`level4_fraud.data.protocol.walk_forward_folds` (the ones the ensemble's weights are chosen
on): train on a window, skip the label delay, test on the following week; slide back a week and
repeat; average. That is the
handbook's protocol for model selection on time-ordered fraud data: a random split would let the
model see the future.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from level4_fraud.data.protocol import walk_forward_folds
from ml_common.config import ConfigError
from ml_common.logs import get_logger

log = get_logger(__name__)


def tune(settings: Any, splits: Any, n_trials: int = 10, n_folds: int = 2) -> dict[str, Any]:
    """Search hidden sizes, dropout, learning rate, batch size and epochs; log trials to MLflow.

    Args:
        settings: :class:`~level4_fraud.config.IndustrialSettings` (the ``industrial`` section).
        splits: :class:`~level4_fraud.data.protocol.Splits` (the training window is searched).
        n_trials: Optuna trials (TPE sampler, seeded).
        n_folds: walk-forward folds per trial.

    Returns:
        ``best_value`` (mean walk-forward AP), ``best_params``, ``trials`` (one dict per trial),
        ``parent_run_id`` of the MLflow run holding the trials as nested runs.
    """
    import optuna

    from level4_fraud.config import TorchConfig
    from level4_fraud.models.fraudnet import predict_proba, train_torch_model
    from ml_common.tracking import setup_mlflow

    mlflow = setup_mlflow("level4_fraud")
    X, y, day = splits.X_train, splits.y_train, splits.day_train
    w = settings.world
    # The same walk-forward folds as the ensemble's prequential selection, by day.
    day_folds = walk_forward_folds(w.warmup_days, w.train_days, n_folds, w.delay_days, w.test_days)
    if not day_folds:
        raise ConfigError("training window too short for walk-forward folds")
    folds = [((day >= a) & (day < b), (day >= c) & (day < d)) for a, b, c, d in day_folds]

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
            device=settings.device,
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
