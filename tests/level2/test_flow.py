"""End to end: the Prefect flow on a small generated dataset, reproducibility, the registry."""

from __future__ import annotations

import json

import pytest

from level2_churn import pipeline
from ml_common.tracking import CHAMPION, alias_version, setup_mlflow
from tests.level2.conftest import small_config


@pytest.fixture(scope="module")
def flow_results(prefect_server: None) -> dict:
    from level2_churn.flow import churn_flow

    return churn_flow(small_config())


def test_flow_runs_every_stage_and_registers_a_champion(flow_results: dict) -> None:
    result = flow_results["generated"]
    walk = result["metrics"]["walk_forward"]
    assert set(walk) == {"lr", "lgbm", "mlp"}
    # The hidden mechanism is learnable: far above the churn rate (AP of a random ranking).
    churn_rate = max(m["churn_rate"] for m in result["metrics"]["months"])
    assert walk["lgbm"]["ap_mean"] > 3 * churn_rate
    registered = result["registered"]
    assert registered["alias"] == CHAMPION
    setup_mlflow(small_config().experiment)
    assert alias_version(registered["model_name"], CHAMPION) == registered["version"]
    out = pipeline.dataset_dir("generated") / "train"
    for name in (
        "metrics.json",
        "run.json",
        "trials.csv",
        "roc_pr.png",
        "walk_forward.png",
        "model.joblib",
    ):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert set(run) >= {"config", "data_hashes", "code_version", "config_hash"}
    assert set(run["data_hashes"]) == {"customers.csv", "billing.csv", "tickets.csv", "usage.csv"}
    top = result["metrics"]["top_features"]
    assert result["metrics"]["top_features_in_hidden_mechanism"] >= 0.6, top


def test_run_is_tracked_in_mlflow_with_its_trials(flow_results: dict) -> None:
    mlflow = setup_mlflow(small_config().experiment)
    run_id = flow_results["generated"]["metrics"]["mlflow_run_id"]
    run = mlflow.get_run(run_id)
    assert run.data.tags["git_sha"] and run.data.tags["config_hash"]
    trials = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    assert len(trials) == small_config().tune.n_trials


def test_same_config_and_seed_give_the_same_metrics(flow_results: dict) -> None:
    cfg = small_config()
    first = flow_results["generated"]["metrics"]
    second = pipeline.train_stage(cfg, "generated")
    assert second["walk_forward"] == first["walk_forward"]
    assert second["tuning"]["best_params"] == first["tuning"]["best_params"]
    other_seed = pipeline.train_stage(small_config(seed=7), "generated")
    assert other_seed["tuning"]["best_params"] != first["tuning"]["best_params"]
