"""The leak-free protocol: every choice is made without the test part, which is scored once.

Poisoning the test labels (flipping every one of them) must leave every choice unchanged (tuned
parameters, chosen family, imbalance method, threshold, the score that decides promotion) while
the reported test scores do change: proof that the choices never looked at the test rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from level2_churn import split
from level2_churn.settings import ColumnMapping, SnapshotDataset
from level2_churn.snapshot_protocol import train_snapshot
from tests.level2.conftest import small_config

COLUMNS = ColumnMapping(target="left", categorical=["plan"], numeric=["usage", "tickets"])


def _table(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "plan": rng.choice(["a", "b", "c"], n),
            "usage": rng.normal(size=n),
            "tickets": rng.poisson(1, n).astype(float),
        }
    )
    logit = -1.5 - 1.2 * table["usage"] + 0.6 * table["tickets"] + (table["plan"] == "a")
    table["left"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return table


def _choices(metrics: dict) -> dict:
    return {
        "best_params": metrics["tuning"]["best_params"],
        "best_imbalance_method": metrics["best_imbalance_method"],
        "threshold": metrics["holdout"]["threshold"],
        "selection_ap": metrics["selection_ap"],
        "selection": metrics["selection"],
        "chosen_family": metrics["chosen_family"],
        "cv": metrics["cv"],
    }


def test_poisoned_test_labels_change_no_choice(tmp_path: Path) -> None:
    cfg = small_config(
        cv={"folds": 3, "repeats": 1, "imbalance_methods": ["none", "class_weight"]},
        tune={"n_trials": 4, "folds": 2},
        mlp={"epochs": 2},
    )
    dataset = SnapshotDataset(source="unused.csv", columns=COLUMNS)
    table = _table()
    holdout = split.stratified_holdout(table["left"], 0.2, 0.2, cfg.seed)
    (tmp_path / "clean").mkdir()
    (tmp_path / "poisoned").mkdir()
    clean, _ = train_snapshot(table, COLUMNS, dataset, cfg, tmp_path / "clean", holdout=holdout)
    poisoned_table = table.copy()
    test_rows = poisoned_table.index[holdout.test]
    poisoned_table.loc[test_rows, "left"] = 1 - poisoned_table.loc[test_rows, "left"]
    poisoned, _ = train_snapshot(
        poisoned_table, COLUMNS, dataset, cfg, tmp_path / "poisoned", holdout=holdout
    )
    assert _choices(poisoned) == _choices(clean)
    # ... while the test scores, computed once at the end, do see the poison.
    assert poisoned["holdout"]["test_auc"] == pytest.approx(1 - clean["holdout"]["test_auc"])
    assert clean["holdout"]["test_auc"] > 0.7
    assert clean["protocol"]["development_rows"] + clean["protocol"]["test_rows"] == len(table)
