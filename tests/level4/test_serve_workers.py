"""``serve`` runs as many uvicorn workers as ``serve.workers`` says, and answers a burst."""

from __future__ import annotations

import httpx
import pytest

from level4_fraud.config import load_config
from level4_fraud.data.feature_store import SnapshotWriter, feast_dir, open_store, push_online
from level4_fraud.data.features import FeatureBuilder
from level4_fraud.data.simulate import TransactionSimulator
from level4_fraud.serving.service import ServiceProcess, concurrent_load_test, payloads_of
from level4_fraud.training.registry import log_model
from level4_fraud.training.train import fit_ensemble
from ml_common.tracking import CHAMPION, set_alias


@pytest.mark.slow
def test_serve_starts_the_configured_workers_and_answers_a_burst(tmp_path) -> None:
    settings = load_config(
        None,
        simulation={"n_customers": 300, "n_terminals": 600, "seed": 4},
        model_name="level4-fraud-test-workers",
        torch={"epochs": 1, "num_threads": 1},
        lightgbm={"n_estimators": 20},
        ensemble={"isolation_trees": 10},
        serve={"workers": 2},
    )
    sim = TransactionSimulator(settings.simulation)
    builder = FeatureBuilder(300, 600, 7, sim.config.start_date)
    writer = SnapshotWriter(feast_dir())
    frames = []
    for day in range(20):
        writer.add_day(builder, day)
        frames.append(builder.transform_day(sim.day(day)))
    customer, terminal = writer.add_day(builder, 20)
    writer.flush()
    push_online(open_store(), customer, terminal)
    import pandas as pd

    model = fit_ensemble(pd.concat(frames[5:], ignore_index=True), settings)
    set_alias(settings.model_name, CHAMPION, log_model(model, settings, {}, run_name="workers"))

    with ServiceProcess(settings, tmp_path / "settings.json") as service:
        result = concurrent_load_test(service.url, payloads_of(sim.day(20).head(200)))
        pids = {
            httpx.get(f"{service.url}/health", headers={"connection": "close"}).json()["worker_pid"]
            for _ in range(40)
        }
    assert result["requests"] == 200 and result["p99_ms"] > 0
    assert len(pids) == 2  # two processes answered
