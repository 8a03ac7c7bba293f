"""Optuna tuning: seeded TPE, pruning, and every trial tracked in MLflow."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from level2_churn import split
from level2_churn.settings import ColumnMapping
from level2_churn.tune import best_params, trials_table, tune_lgbm

COLUMNS = ColumnMapping(target="churn", categorical=["plan"], numeric=["usage", "tickets"])


def _table(n: int = 800) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "plan": rng.choice(["a", "b"], n),
            "usage": rng.normal(size=n),
            "tickets": rng.poisson(1, n).astype(float),
        }
    )
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(2 + 1.5 * X["usage"]))).astype(int))
    return X, y


def test_study_is_seeded_prunes_and_reports_each_trial() -> None:
    X, y = _table()
    folds = split.stratified_folds(y, 3, 0)
    seen = []
    study = tune_lgbm(
        X,
        y,
        folds,
        COLUMNS,
        n_trials=12,
        seed=0,
        n_jobs=1,
        on_trial=lambda s, t: seen.append(t.number),
    )
    assert seen == list(range(12))
    states = trials_table(study)["state"].value_counts()
    assert states.get("COMPLETE", 0) >= 5 and states.get("PRUNED", 0) >= 1
    again = tune_lgbm(X, y, folds, COLUMNS, n_trials=12, seed=0, n_jobs=1)
    assert best_params(again) == best_params(study)
    assert best_params(study)["subsample_freq"] == 1


def test_each_trial_logs_a_progress_line(caplog) -> None:
    X, y = _table()
    folds = split.stratified_folds(y, 3, 0)
    with caplog.at_level(logging.INFO, logger="level2_churn.tune"):
        study = tune_lgbm(X, y, folds, COLUMNS, n_trials=12, seed=0, n_jobs=1)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("trial ")]
    assert [line.split(":")[0] for line in lines] == [f"trial {i}/12" for i in range(1, 13)]
    pruned = sum(t.state.name == "PRUNED" for t in study.trials)
    assert sum("pruned after fold" in line for line in lines) == pruned > 0
    assert lines[-1].endswith(f"best {study.best_value:.4f} (trial {study.best_trial.number + 1})")
