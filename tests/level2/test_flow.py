"""End to end: the Prefect flow on a small generated dataset, reproducibility, the registry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from level2_churn import stages
from level2_churn.generate import MECHANISM_FEATURES
from level2_churn.mechanism import MECHANISM_FLOOR, chance_of_gain_share, mechanism_gain_share
from level2_churn.settings import ColumnMapping
from ml_common.tracking import CHAMPION, alias_version, setup_mlflow
from tests.level2.conftest import small_config


@pytest.fixture(scope="module")
def flow_results(prefect_server: None) -> dict:
    from level2_churn.flow import churn_flow

    return churn_flow(small_config())


def test_flow_runs_every_stage_and_registers_a_champion(flow_results: dict) -> None:
    result = flow_results["generated"]
    walk = result["metrics"]["walk_forward"]
    assert set(walk) == {"lr", "lgbm_default", "lgbm_tuned", "mlp"}
    # The hidden mechanism is learnable: far above the churn rate (AP of a random ranking).
    churn_rate = max(m["churn_rate"] for m in result["metrics"]["months"])
    chosen = result["metrics"]["chosen_family"]
    assert walk[chosen]["ap_mean"] > 3 * churn_rate
    # The family was chosen on the months before the test months, by the declared rule.
    selection = result["metrics"]["selection"]
    assert selection["chosen_family"] == chosen and selection["folds"] == 3
    assert result["metrics"]["selection_ap"] == selection["means_ap"][chosen]
    registered = result["registered"]
    assert registered["alias"] == CHAMPION
    setup_mlflow(small_config().experiment)
    assert alias_version(registered["model_name"], CHAMPION) == registered["version"]
    out = stages.dataset_dir("generated") / "train"
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
    assert result["metrics"]["mechanism_gain_share"] >= MECHANISM_FLOOR, top
    # The floor means something: a random ranking of the same features passes it rarely.
    assert result["metrics"]["mechanism_chance_of_floor"] < 0.05


def test_a_random_ranking_fails_the_mechanism_floor(flow_results: dict) -> None:
    features = pipeline_columns()
    assert set(MECHANISM_FEATURES) <= set(features)  # exact names: each one is a real feature
    rng = np.random.default_rng(0)
    shares = [
        mechanism_gain_share(
            dict(zip(features, rng.dirichlet(np.ones(len(features))), strict=True)),
            MECHANISM_FEATURES,
        )
        for _ in range(4000)
    ]
    assert np.mean(shares) < 0.6
    assert np.mean(np.array(shares) >= MECHANISM_FLOOR) < 0.05
    chance = chance_of_gain_share(len(features), len(MECHANISM_FEATURES), MECHANISM_FLOOR)
    assert np.mean(np.array(shares) >= MECHANISM_FLOOR) == pytest.approx(chance, abs=0.01)
    # Gain only on the noise columns scores zero.
    noise = {f: 1.0 for f in features if f not in MECHANISM_FEATURES}
    assert mechanism_gain_share(noise, MECHANISM_FEATURES) == 0


def pipeline_columns() -> list[str]:
    """Every model input of the generated dataset, from the prepared ``columns.json``."""
    path = stages.dataset_dir("generated") / "prepared" / "columns.json"
    columns = ColumnMapping(**json.loads(path.read_text()))
    return [*columns.categorical, *columns.numeric]


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
    second = stages.train_stage(cfg, "generated")
    assert second["walk_forward"] == first["walk_forward"]
    assert second["tuning"]["best_params"] == first["tuning"]["best_params"]
    other_seed = stages.train_stage(small_config(seed=7), "generated")
    assert other_seed["tuning"]["best_params"] != first["tuning"]["best_params"]
