"""Feast (offline join = streaming features; online reads) and the scoring API, incl. 422s."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from level4_fraud.config import SimulationConfig, load_config
from level4_fraud.data.feature_store import (
    SnapshotWriter,
    online_snapshot,
    open_store,
    push_online,
    training_frame,
)
from level4_fraud.data.features import FEATURES, FeatureBuilder
from level4_fraud.data.simulate import TransactionSimulator
from level4_fraud.models.ensemble import FraudEnsemble
from level4_fraud.models.trees import train_lightgbm
from level4_fraud.serving.service import ScoringState, create_app, load_test

N_CUST, N_TERM, DAYS = 200, 400, 40
_BUILDER: dict[str, FeatureBuilder] = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    sim = TransactionSimulator(SimulationConfig(n_customers=N_CUST, n_terminals=N_TERM, seed=5))
    builder = FeatureBuilder(N_CUST, N_TERM, 7, sim.config.start_date)
    root = tmp_path_factory.mktemp("feast")
    writer = SnapshotWriter(root)
    raw, built = [], []
    for day in range(DAYS):
        customer, terminal = writer.add_day(builder, day)
        frame = sim.day(day)
        raw.append(frame)
        built.append(builder.transform_day(frame))
    customer, terminal = writer.add_day(builder, DAYS)  # what is served on the next day
    writer.flush()
    _BUILDER["world"] = builder
    store = open_store(root)
    push_online(store, customer, terminal)
    return (
        sim,
        store,
        pd.concat(raw, ignore_index=True),
        pd.concat(built, ignore_index=True),
        (
            customer,
            terminal,
        ),
    )


def test_feast_point_in_time_join_equals_streaming_features(world) -> None:
    _, store, raw, built, _ = world
    days = raw["tx_time_days"].between(30, 39)
    joined = training_frame(store, raw[days])
    expected = built[built["tx_time_days"].between(30, 39)].reset_index(drop=True)
    assert np.allclose(joined[FEATURES].to_numpy(), expected[FEATURES].to_numpy())


def test_online_store_serves_the_latest_snapshot(world) -> None:
    _, store, _, _, (customer, terminal) = world
    values = online_snapshot(store, 7, 11)
    assert values["customer_nb_tx_prev_6d"] == pytest.approx(
        customer.loc[7, "customer_nb_tx_prev_6d"]
    )
    assert values["terminal_risk_30d"] == pytest.approx(terminal.loc[11, "terminal_risk_30d"])
    assert online_snapshot(store, N_CUST + 50, 11)["customer_nb_tx_prev_6d"] is None


@pytest.fixture(scope="module")
def client(world, tmp_path_factory):
    sim, store, _, built, _ = world
    model = train_lightgbm(built[FEATURES], built["tx_fraud"].to_numpy())
    ensemble = FraudEnsemble({"lightgbm": model}, {"lightgbm": 1.0})
    settings = load_config()
    log = tmp_path_factory.mktemp("serve") / "scores.jsonl"
    app = create_app(lambda: ScoringState(settings, store, ensemble, 1, log))
    with TestClient(app) as test_client:
        yield test_client, sim, log, app


def _payload(**overrides):
    payload = {
        "tx_id": 1,
        "customer_id": 3,
        "terminal_id": 5,
        "tx_amount": 42.5,
        "tx_datetime": "2026-05-11T10:15:00",
    }
    payload.update(overrides)
    return payload


def test_scores_a_transaction_and_logs_it(client) -> None:
    test_client, _, log, _ = client
    response = test_client.post("/score", json=_payload())
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0 <= body["score"] <= 1 and body["decision"] in {"allow", "block"}
    assert body["model_version"] == 1
    huge = test_client.post("/score", json=_payload(tx_id=2, tx_amount=5000.0)).json()
    assert huge["score"] > body["score"]  # scenario 1: very large amounts are fraud
    metrics = test_client.get("/metrics").text
    assert 'fraud_scoring_requests_total{decision="' in metrics
    assert 'model_version="1"' in metrics  # every metric series names the version that scored
    assert test_client.get("/model").json()["version"] == 1
    test_client.app.state.scoring._log.flush()
    assert len(log.read_text().splitlines()) >= 2


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({k: v for k, v in _payload().items() if k != "tx_amount"}, "tx_amount"),
        (_payload(tx_amount=-3), "tx_amount"),
        (_payload(customer_id=N_CUST + 99), "unknown customer_id"),
        (_payload(terminal_id=N_TERM + 99), "unknown terminal_id"),
        (_payload(tx_datetime="yesterday"), "tx_datetime"),
    ],
)
def test_bad_transactions_get_422_with_a_clear_message(client, payload, needle) -> None:
    test_client = client[0]
    response = test_client.post("/score", json=payload)
    assert response.status_code == 422
    assert needle in response.text


def test_load_test_over_loopback(client) -> None:
    _, sim, _, app = client
    result = load_test(app, sim.day(DAYS), n_requests=40, warmup=5)
    assert result["requests"] == 40 and 0 < result["p50_ms"] <= result["p99_ms"]


def test_service_features_equal_the_builders(world, tmp_path) -> None:
    """Online snapshot + the service's intraday counters = the batch features, row for row."""
    from level4_fraud.serving.service import Transaction

    sim, store, _, _, _ = world
    day = sim.day(DAYS).head(300)
    expected = _BUILDER["world"].transform_day(day, record=False)
    ensemble = FraudEnsemble({}, {})
    state = ScoringState(load_config(), store, ensemble, None, tmp_path / "s.jsonl")
    rows = np.vstack(
        [
            state.features(
                Transaction(
                    customer_id=int(r.customer_id),
                    terminal_id=int(r.terminal_id),
                    tx_amount=float(r.tx_amount),
                    tx_datetime=r.tx_datetime.to_pydatetime(),
                )
            )
            for r in day.itertuples()
        ]
    )
    state.close()
    assert np.allclose(rows, expected[FEATURES].to_numpy(dtype=np.float32), rtol=1e-5)
