"""The promotion gate and the Prefect retraining flow: a worse challenger is never promoted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from level4_fraud.config import load_config
from level4_fraud.lifecycle.retrain import ROLLBACK, gate, retrain_flow, rollback
from level4_fraud.training.registry import load_model
from level4_fraud.training.train import fit_ensemble
from ml_common.tracking import CHALLENGER, CHAMPION, alias_version


def test_gate_needs_the_margin() -> None:
    assert gate(0.60, 0.70, 0.02)[0] is True
    assert gate(0.60, 0.61, 0.02)[0] is False  # better, but not by the margin
    assert gate(0.60, 0.50, 0.0)[0] is False
    assert gate(0.60, float("nan"), 0.0)[0] is False


@pytest.fixture(scope="module")
def setup(tiny_features):
    settings = load_config(
        None,
        model_name="level4-fraud-test-retrain",
        torch={"epochs": 3, "num_threads": 1},
        lightgbm={"n_estimators": 60},
        ensemble={"isolation_trees": 30},
    )
    days = tiny_features["tx_time_days"]
    train = tiny_features[days.between(30, 44)]
    holdout = tiny_features[days.between(52, 59)]
    return settings, train, holdout


def test_worse_challenger_is_never_promoted_and_better_one_is(setup, tmp_path) -> None:
    settings, train, holdout = setup
    decisions = tmp_path / "decisions.jsonl"
    # First run with no champion: the challenger becomes champion.
    first = retrain_flow(
        train, holdout, None, settings, trigger="schedule", day=1, decisions_path=str(decisions)
    )
    assert first["promoted"]
    champion_version = alias_version(settings.model_name, CHAMPION)
    champion = load_model(settings, CHAMPION)
    # A challenger trained on shuffled labels is worse: it must not move the alias.
    shuffled = train.copy()
    shuffled["tx_fraud"] = np.random.default_rng(0).permutation(shuffled["tx_fraud"].to_numpy())
    worse = fit_ensemble(shuffled, settings)
    decision = retrain_flow(
        train,
        holdout,
        champion,
        settings,
        trigger="drift",
        day=2,
        decisions_path=str(decisions),
        challenger=worse,
    )
    assert not decision["promoted"]
    assert decision["challenger"]["ap"] < decision["champion"]["ap"]
    assert alias_version(settings.model_name, CHAMPION) == champion_version
    assert alias_version(settings.model_name, CHALLENGER) == decision["challenger_version"]
    # A challenger that is clearly better (the champion is the shuffled one) is promoted and the
    # old champion is kept for rollback.
    decision = retrain_flow(
        train,
        holdout,
        worse,
        settings,
        trigger="schedule",
        day=3,
        decisions_path=str(decisions),
        challenger=champion,
    )
    assert decision["promoted"]
    new_version = alias_version(settings.model_name, CHAMPION)
    assert new_version == decision["challenger_version"] != champion_version
    assert alias_version(settings.model_name, ROLLBACK) == champion_version
    assert rollback(settings) == champion_version
    assert alias_version(settings.model_name, CHAMPION) == champion_version
    # Every decision is recorded.
    records = [json.loads(line) for line in decisions.read_text().splitlines()]
    assert [r["promoted"] for r in records] == [True, False, True]
    assert all(r["reason"] for r in records)
