"""The API: every endpoint, bad input, admin token, metrics, feedback CTR."""

import pytest
from fastapi.testclient import TestClient

from level3_recsys.serve import create_app


@pytest.fixture
def client(settings, tiny_bundle):
    with TestClient(create_app(settings, tiny_bundle)) as test_client:
        yield test_client


def test_known_user_gets_precomputed_list_of_their_cluster(client):
    body = client.get("/recommendations/2?k=5").json()
    assert body["source"] == "precomputed" and not body["fallback"] and not body["cold_start"]
    assert body["model_version"] == "1" and len(body["items"]) == 5
    # user 2 is even: their cluster is items 100..114
    assert all(100 <= item["item_id"] < 115 for item in body["items"])
    assert body["items"][0]["title"].startswith("Movie ")


def test_stale_or_other_version_list_is_computed_live(client):
    service = client.app.state.service
    service.champion.version = "99"  # the store holds v1 lists: not the served model's
    body = client.get("/recommendations/3?k=5").json()
    assert body["source"] == "live" and body["model_version"] == "99"
    assert all(115 <= item["item_id"] < 130 for item in body["items"])


def test_k_larger_than_stored_list_is_computed_live(client):
    body = client.get("/recommendations/2?k=21").json()
    assert body["source"] == "live" and len(body["items"]) == 21


def test_unknown_user_gets_flagged_cold_start(client):
    body = client.get("/recommendations/123456?k=3").json()
    assert body["cold_start"] is True and body["source"] == "cold_start"
    assert len(body["items"]) == 3


@pytest.mark.parametrize(
    "url",
    [
        "/recommendations/2?k=0",
        "/recommendations/2?k=101",
        "/recommendations/abc",
        "/recommendations/-5",
        "/recommendations/2?k=ten",
        "/recommendations/99999999999999",
    ],
)
def test_bad_input_is_422_with_a_clear_message(client, url):
    response = client.get(url)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("invalid request: ")


def test_session_recommendations(client):
    body = client.post("/recommendations/session", json={"item_ids": [116, 117], "k": 4}).json()
    assert body["source"] == "session" and body["user_id"] is None
    ids = [item["item_id"] for item in body["items"]]
    assert len(ids) == 4 and not {116, 117} & set(ids)
    unknown = client.post("/recommendations/session", json={"item_ids": [5], "k": 4}).json()
    assert unknown["cold_start"] is True


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"item_ids": "1,2"},
        {"item_ids": [1], "k": 0},
        {"item_ids": [1], "extra": 1},
        {"item_ids": list(range(201))},
        {"item_ids": [-1]},
    ],
)
def test_session_bad_body_is_422(client, payload):
    assert client.post("/recommendations/session", json=payload).status_code == 422


def test_malformed_json_is_422(client):
    response = client.post(
        "/recommendations/session",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


def test_feedback_computes_ctr_per_model_version(client):
    client.post(
        "/feedback",
        json={"model_version": "1", "impressions": [100, 101, 102, 103], "clicks": [101]},
    )
    body = client.post(
        "/feedback", json={"model_version": "1", "impressions": [104], "clicks": []}
    ).json()
    assert body == {"model_version": "1", "impressions": 5, "clicks": 1, "ctr": 0.2}
    client.post("/feedback", json={"model_version": "2", "impressions": [1, 2], "clicks": [1]})
    assert client.get("/model").json()["ctr_by_version"] == {"1": 0.2, "2": 0.5}
    metrics = client.get("/metrics").text
    assert 'recsys_ctr{model_version="1"} 0.2' in metrics
    assert 'recsys_clicks_total{model_version="2"} 1.0' in metrics
    assert client.post("/feedback", json={"model_version": "bad version!"}).status_code == 422


def test_health_ready_model(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["ready"] and ready["champion_version"] == "1" and ready["store"] == "ok"
    model = client.get("/model").json()
    assert model["champion"]["name"] == "ease_recency"
    assert model["challenger"]["version"] == "2"


def test_metrics_exported(client):
    client.get("/recommendations/2")
    text = client.get("/metrics").text
    for name in (
        "recsys_request_latency_seconds_bucket",
        "recsys_recommendations_total",
        "recsys_fallback_total",
        "recsys_breaker_state",
        "recsys_drift_score",
        "recsys_shadow_latency_seconds",
        "recsys_model_info",
    ):
        assert name in text
    assert 'endpoint="/recommendations/{user_id}"' in text


def test_admin_needs_the_token(client):
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers={"X-Admin-Token": "nope"}).status_code == 401
    ok = client.post("/admin/reload", headers={"X-Admin-Token": "test-token"})
    assert ok.status_code == 200 and ok.json()["champion_version"] == "1"


def test_admin_switch_serves_the_challenger(client):
    headers = {"X-Admin-Token": "test-token"}
    body = client.post("/admin/switch", json={"serve": "challenger"}, headers=headers).json()
    assert body["champion_version"] == "2" and body["challenger_version"] == "1"
    served = client.get("/recommendations/2?k=3").json()
    assert served["model_version"] == "2" and served["source"] == "live"
    assert client.post("/admin/switch", json={"serve": "x"}, headers=headers).status_code == 422


def test_service_process_runs_one_blas_thread():
    """``uvicorn level3_recsys.serve:…`` gets one OpenBLAS thread without being told: a second
    one spin-waits on the core the event loop needs (the load test's p99 doubled)."""
    import json
    import os
    import subprocess
    import sys

    from ml_common.paths import PROJECT_ROOT

    code = (
        "import json, level3_recsys.serve, threadpoolctl; "
        "print(json.dumps([p['num_threads'] for p in threadpoolctl.threadpool_info() "
        "if p['user_api'] == 'blas']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    threads = json.loads(out.stdout.strip().splitlines()[-1])
    assert threads and all(n == 1 for n in threads)
