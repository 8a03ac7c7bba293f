"""Feast (offline join = streaming features; online reads) and the scoring API, incl. 422s."""

from __future__ import annotations

import json

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


def test_feast_join_keeps_same_second_payments_of_one_customer(world) -> None:
    """Two payments by one customer in the same second (at two terminals) both keep their row,
    each with its own terminal's snapshot; Feast alone answers one row per key and second."""
    _, store, raw, _, _ = world
    days = raw[raw["tx_time_days"].between(30, 31)].reset_index(drop=True)
    first = days.iloc[[10]].copy()
    twin = first.assign(
        tx_id=days["tx_id"].max() + 1, terminal_id=(first["terminal_id"] + 1) % N_TERM
    )
    with_twin = pd.concat([days.iloc[:11], twin, days.iloc[11:]], ignore_index=True)
    joined = training_frame(store, with_twin)
    assert len(joined) == len(with_twin)
    assert joined["tx_id"].tolist() == with_twin["tx_id"].tolist()
    a, b = joined.iloc[10], joined.iloc[11]
    assert a["customer_nb_tx_7d"] + 1 == b["customer_nb_tx_7d"]  # the twin counts as a payment
    alone = training_frame(store, twin)
    assert b["terminal_risk_30d"] == pytest.approx(alone["terminal_risk_30d"].iloc[0])


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
        (_payload(customer_id=N_CUST + 99), "customer_id: unknown"),
        (_payload(terminal_id=N_TERM + 99), "terminal_id: unknown"),
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


def test_concurrent_burst_is_answered_and_timed(client) -> None:
    from level4_fraud.serving.service import (
        BackgroundServer,
        concurrent_load_test,
        payloads_of,
    )

    _, sim, _, app = client
    with BackgroundServer(app) as server:
        result = concurrent_load_test(server.url, payloads_of(sim.day(DAYS).head(100)))
    assert result["requests"] == 100 and 0 < result["p50_ms"] <= result["p99_ms"]


def test_intraday_counters_in_one_shared_file_count_like_memory(tmp_path) -> None:
    """Two workers' connections to one sqlite file see one customer's payments together."""
    from datetime import date

    from level4_fraud.serving.service import IntradayCounters

    memory = IntradayCounters()
    worker_a, worker_b = IntradayCounters(tmp_path / "c.db"), IntradayCounters(tmp_path / "c.db")
    payments = [(7, date(2026, 5, 1), 10.0), (7, date(2026, 5, 1), 2.5), (8, date(2026, 5, 1), 1)]
    payments += [(7, date(2026, 5, 1), 4.0), (7, date(2026, 5, 2), 3.0), (7, date(2026, 5, 2), 1)]
    for i, payment in enumerate(payments):
        shared = (worker_a if i % 2 else worker_b).add(*payment)
        assert shared == memory.add(*payment)
    assert memory.add(7, date(2026, 5, 2), 0.5) == (3.0, 4.5)
    worker_a.close()
    worker_b.close()


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


@pytest.fixture(scope="module")
def own_client(world, tmp_path_factory):
    """A client whose app no other test restarts (the load test runs the app's lifespan again)."""
    _, store, _, built, _ = world
    model = train_lightgbm(built[FEATURES], built["tx_fraud"].to_numpy())
    ensemble = FraudEnsemble({"lightgbm": model}, {"lightgbm": 1.0})
    log = tmp_path_factory.mktemp("serve-hostile") / "scores.jsonl"
    app = create_app(lambda: ScoringState(load_config(), store, ensemble, 1, log))
    with TestClient(app) as test_client:
        yield test_client, log


def _raw(test_client, body: str | bytes):
    return test_client.post("/score", content=body, headers={"content-type": "application/json"})


def _body(customer: str = "3", amount: str = "1", when: str = '"2026-05-11T10:15:00"') -> str:
    """A request body with raw JSON tokens (NaN, Infinity, huge numbers) left as written."""
    return (
        f'{{"customer_id": {customer}, "terminal_id": 5, "tx_amount": {amount}, '
        f'"tx_datetime": {when}}}'
    )


HOSTILE_BODIES = [
    # Non-finite or absurd amounts: each used to give 200 {score: null, decision: allow} or a 500.
    _body(amount="Infinity"),
    _body(amount="1e309"),
    _body(amount="1e39"),
    _body(amount="NaN"),
    _body(amount="-Infinity"),
    _body(amount='"12"'),
    _body(amount="true"),
    # Ids: beyond int64 (Feast gave a 500), beyond int32, strings, booleans, floats, objects.
    _body(customer="9223372036854775808"),
    _body(customer="2147483648"),
    _body(customer='"12"'),
    _body(customer="true"),
    _body(customer="3.5"),
    _body(customer='{"$gt": 0}'),
    # Timestamps: 1970, a number, the far future, nonsense.
    _body(when='"1970-01-01T00:00:00"'),
    _body(when="0"),
    _body(when='"9999-12-31T23:59:59"'),
    _body(when='"yesterday"'),
    # Shapes: empty, not an object, unknown fields, broken JSON, bad bytes, deep nesting.
    "",
    "null",
    "[]",
    "{}",
    _body()[:-1] + ', "x": 1}',
    _body()[:-1],
    _body(when='"\\udcff"'),
    b'{"customer_id": 3, "terminal_id": 5, "tx_amount": 1, "tx_datetime": "\xff\xfe"}',
    "[" * 5000 + "]" * 5000,
]


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
def test_hostile_input_gets_a_4xx_that_does_not_echo_it(own_client, body) -> None:
    test_client = own_client[0]
    response = _raw(test_client, body)
    assert response.status_code in (400, 413, 422), response.text  # 400: undecodable bytes
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    assert len(response.content) < 300
    for token in ("Infinity", "1e309", "1e39", "9223372036854775808", "$gt", "1970-01-01T"):
        if token in text:
            assert token not in detail


HOSTILE_KEYS = ["<script>alert(1)</script>", "k" * 3900, "line\nbreak", "tx_amount\r\nX-Evil: 1"]


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=["script", "long", "newline", "header"])
def test_422_names_the_schema_path_never_a_client_key(own_client, key) -> None:
    """An unknown key is reported as such by the schema, not echoed (it was, whole)."""
    test_client = own_client[0]
    response = test_client.post("/score", json={**_payload(), key: 1})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("<unknown field>: ") and "\n" not in detail
    assert key not in detail and "<script>" not in detail and len(response.content) < 200


def test_422_names_a_bad_fields_schema_path_without_its_value(own_client) -> None:
    test_client = own_client[0]
    value = "<script>alert(1)</script>\n" + "9" * 500
    for field in ("customer_id", "terminal_id", "tx_amount", "tx_datetime", "tx_id"):
        detail = test_client.post("/score", json=_payload(**{field: value})).json()["detail"]
        assert detail.split(":")[0] == field
        assert "<script>" not in detail and "999" not in detail and "\n" not in detail


def test_schema_path_helper_walks_nested_models_and_dict_keys() -> None:
    from pydantic import BaseModel

    from level4_fraud.serving.errors import schema_path, validation_detail

    class Inner(BaseModel):
        amount: float
        tags: dict[str, int]

    class Outer(BaseModel):
        inner: Inner | None
        rows: list[Inner]

    assert schema_path(("body", "inner", "amount"), Outer) == "inner.amount"
    assert schema_path(("body", "inner", "tags", "<b>"), Outer) == "inner.tags.<key>"
    assert schema_path(("body", "rows", 3, "amount"), Outer) == "rows[3].amount"
    assert schema_path(("body", "<b>"), Outer, "extra_forbidden") == "<unknown field>"
    assert schema_path(("body",), Outer) == "body"
    assert validation_detail([], Outer) == "body: invalid request"
    line = validation_detail([{"loc": ("body", "inner"), "msg": "a\nb" * 200, "type": "x"}], Outer)
    assert "\n" not in line and len(line) <= len("inner: ") + 120


def test_body_size_limit_rejects_a_large_body_without_reading_or_echoing_it(own_client) -> None:
    test_client = own_client[0]
    big = '{"customer_id": 3, "terminal_id": 5, "tx_amount": 1, "pad": "' + "x" * 22_000_000 + '"}'
    response = _raw(test_client, big)
    assert response.status_code == 413 and len(response.content) < 200


def test_rejected_amounts_do_not_poison_the_customers_counters(own_client) -> None:
    test_client, log = own_client
    for bad in ("Infinity", "1e309", "1e39", "NaN"):
        body = (
            f'{{"customer_id": 8, "terminal_id": 5, "tx_amount": {bad}, '
            '"tx_datetime": "2026-05-12T09:00:00"}'
        )
        assert _raw(test_client, body).status_code == 422
    poisoned = test_client.post(
        "/score",
        json=_payload(customer_id=8, tx_amount=5000.0, tx_datetime="2026-05-12T09:05:00"),
    ).json()
    control = test_client.post(
        "/score",
        json=_payload(customer_id=9, tx_amount=5000.0, tx_datetime="2026-05-12T09:05:00"),
    ).json()
    assert poisoned["score"] is not None and poisoned["decision"] == control["decision"] == "block"
    test_client.app.state.scoring._log.flush()

    def no_constants(name: str) -> float:
        raise AssertionError(f"{name} in the score log")

    for line in log.read_text().splitlines():  # strict JSON: no bare NaN in the score log
        assert 0 <= json.loads(line, parse_constant=no_constants)["score"] <= 1


def test_timestamps_are_normalised_to_utc() -> None:
    from datetime import datetime

    from level4_fraud.serving.service import Transaction

    base = {"customer_id": 3, "terminal_id": 5, "tx_amount": 1.0}
    shifted = Transaction(**base, tx_datetime="2026-05-11T12:15:00+02:00")
    naive = Transaction(**base, tx_datetime="2026-05-11T10:15:00")
    zulu = Transaction(**base, tx_datetime="2026-05-11T10:15:00Z")
    assert (
        shifted.tx_datetime
        == naive.tx_datetime
        == zulu.tx_datetime
        == datetime(2026, 5, 11, 10, 15)
    )
    assert shifted.tx_datetime.tzinfo is None
