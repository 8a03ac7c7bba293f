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
        "/recommendations/2?k=ten",
        "/recommendations/2?k=true",
        "/recommendations/99999999999999",
    ],
)
def test_bad_input_is_422_with_a_clear_message(client, url):
    response = client.get(url)
    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith("invalid request: ") and body["errors"]


@pytest.mark.parametrize("url", ["/recommendations/abc", "/recommendations/-5"])
def test_path_that_is_no_user_id_is_404(client, url):
    response = client.get(url)
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


def test_get_on_the_session_route_reaches_it(client):
    """``GET /recommendations/session`` is not read as user id "session": 405, Allow: POST."""
    response = client.get("/recommendations/session")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


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
        {"item_ids": [116], "k": True},
        {"item_ids": [False]},
        {"item_ids": [116.5]},
        {"item_ids": [116], "k": "3"},
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


def test_feedback_counts_clicks_on_served_items_once(client):
    served = client.get("/recommendations/2?k=4").json()
    shown = [item["item_id"] for item in served["items"]]
    impression = served["impression_id"]
    first = client.post("/feedback", json={"impression_id": impression, "clicks": [shown[1]]})
    assert first.status_code == 200
    assert first.json() == {
        "impression_id": impression,
        "model_version": "1",
        "accepted": 1,
        "duplicates": 0,
        "impressions": 4,
        "clicks": 1,
        "ctr": 0.25,
    }
    # the same click again, and clicks on every item twice: each item counts once
    again = client.post(
        "/feedback", json={"impression_id": impression, "clicks": shown + shown}
    ).json()
    assert again["accepted"] == 3 and again["duplicates"] == 5 and again["ctr"] == 1.0
    # a second list shown: impressions grow, CTR falls; it can never exceed 1
    client.get("/recommendations/3?k=4")
    model = client.get("/model").json()
    assert model["ctr_by_version"] == {"1": 0.5} and model["impressions_by_version"] == {"1": 8}
    metrics = client.get("/metrics").text
    assert 'recsys_ctr{model_version="1"} 0.5' in metrics
    assert 'recsys_clicks_total{model_version="1"} 4.0' in metrics
    assert 'recsys_impressions_total{model_version="1"} 8.0' in metrics


def test_feedback_refuses_what_was_not_served(client):
    served = client.get("/recommendations/2?k=3").json()
    impression = served["impression_id"]
    not_shown = next(i for i in range(100, 130) if i not in {x["item_id"] for x in served["items"]})
    response = client.post("/feedback", json={"impression_id": impression, "clicks": [not_shown]})
    assert response.status_code == 409 and "not shown" in response.json()["detail"]
    response = client.post("/feedback", json={"impression_id": "forged", "clicks": [101]})
    assert response.status_code == 404 and "impression_id" in response.json()["detail"]
    for payload in (
        {"model_version": "1", "impressions": [1], "clicks": [1, 2, 3, 4, 5]},  # the old API
        {"impression_id": impression, "clicks": []},
        {"impression_id": impression, "clicks": [True]},
        {"impression_id": impression},
    ):
        assert client.post("/feedback", json=payload).status_code == 422
    assert client.get("/model").json()["ctr_by_version"] == {"1": 0.0}


def test_fallback_lists_are_their_own_version(client):
    served = client.get("/recommendations/123456?k=3").json()
    assert served["model_version"] == "popularity-1"
    item = served["items"][0]["item_id"]
    body = client.post(
        "/feedback", json={"impression_id": served["impression_id"], "clicks": [item]}
    ).json()
    assert body["model_version"] == "popularity-1" and body["ctr"] == pytest.approx(1 / 3)


def test_health_ready_model(client):
    assert client.get("/health").json() == {"status": "ok"}
    response = client.get("/ready")
    ready = response.json()
    assert response.status_code == 200 and ready["reason"] is None
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


def test_admin_switch_says_what_it_does_and_is_idempotent(client):
    headers = {"X-Admin-Token": "test-token"}

    def switch(serve):
        return client.post("/admin/switch", json={"serve": serve}, headers=headers).json()

    body = switch("champion")
    assert body["changed"] is False and body["served_version"] == "1"
    assert "already serving the champion" in body["detail"]
    body = switch("challenger")
    assert body["changed"] is True and body["serving"] == "challenger"
    assert body["served_version"] == "2" and "now serving the challenger (v2)" in body["detail"]
    # the registry aliases are not changed by a switch
    assert body["champion_version"] == "1" and body["challenger_version"] == "2"
    served = client.get("/recommendations/2?k=3").json()
    assert served["model_version"] == "2" and served["source"] == "live"
    body = switch("challenger")  # a second switch does not swap back
    assert body["changed"] is False and body["served_version"] == "2"
    assert client.get("/model").json()["serving"] == "challenger"
    body = switch("champion")
    assert body["changed"] is True and body["served_version"] == "1"
    assert client.get("/recommendations/2?k=3").json()["model_version"] == "1"
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
