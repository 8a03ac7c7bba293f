"""Hostile input: forged feedback floods, oversized bodies, a locked or missing store, a broken
bundle, the public default admin token."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import sqlite3
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from level3_recsys.deploy import SERVICE_APP, deployed_admin_token
from level3_recsys.fuzz import feedback_flood
from level3_recsys.impressions import ClickNotShown, ImpressionLog, UnknownImpression
from level3_recsys.loadtest.run import uvicorn_server
from level3_recsys.serve import create_app
from level3_recsys.settings import DEFAULT_ADMIN_TOKEN, load
from ml_common.config import ConfigError


@pytest.fixture
def client(settings, tiny_bundle):
    with TestClient(create_app(settings, tiny_bundle)) as test_client:
        yield test_client


# ---- feedback -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n", [400, pytest.param(10_000, marks=pytest.mark.slow, id="10000")], ids=str
)
def test_flood_of_forged_feedback_changes_nothing(client, n):
    result = feedback_flood(client, n=n, seed=0)
    # every forgery refused or ignored: unknown impression 404, old body shape 422, item not
    # shown 409, replayed click 200 with nothing accepted
    assert result["statuses"] == {status: n // 4 for status in ("200", "404", "409", "422")}
    assert result["series_growth"] == 0
    assert result["impressions_held_growth"] == 0 and result["model_bytes_growth"] == 0
    # /metrics grows only by the digits of counters that count the requests themselves
    assert 0 <= result["metrics_bytes_growth"] < 200
    assert result["ctr_changed"] is False
    assert result["drift_features"] and result["drift_score_change"] == 0.0


def test_impression_log_expires_and_says_why_a_click_is_refused():
    now = [0.0]
    log = ImpressionLog(10_000, ttl_s=10, clock=lambda: now[0], wall_clock=lambda: 1e9 + now[0])
    first = log.issue("1", [1, 2])
    assert log.click(first, [2, 2]).accepted == [2]
    assert log.click(first, [2, 1]).accepted == [1]  # each item once
    with pytest.raises(ClickNotShown):
        log.click(first, [3])
    with pytest.raises(UnknownImpression, match="never issued"):
        log.click("A" * 32, [1])  # well-formed but not signed by this process
    forged = first[:-4] + ("AAAA" if not first.endswith("AAAA") else "BBBB")
    with pytest.raises(UnknownImpression, match="never issued"):
        log.click(forged, [1])
    now[0] = 10.5
    with pytest.raises(UnknownImpression, match="expired impression_id: the list was served 10 s"):
        log.click(first, [1])
    assert len(log) == 0 and log.nbytes == 0 and log.clients == 0


def test_a_k100_impression_is_well_under_1kb_and_the_accounting_matches_tracemalloc():
    import gc
    import tracemalloc

    log = ImpressionLog(2**40, ttl_s=1e9)
    items = list(range(10_000, 10_100))
    gc.collect()
    tracemalloc.start()
    for i in range(5_000):
        log.issue("v7", items, client=f"10.0.{i % 50}.1")
    gc.collect()
    measured, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_impression = measured / 5_000
    assert per_impression < 850  # measured 781 bytes on CPython 3.11 (400 of them the item ids)
    # the log's own count is within 10% of what the allocator holds for it
    assert 0.9 < log.nbytes / measured < 1.1, (log.nbytes, measured)


def test_one_client_flooding_cannot_evict_another_clients_impression():
    log = ImpressionLog(200_000, ttl_s=1e9, client_quota_bytes=20_000)
    real = log.issue("1", list(range(10)), client="10.0.0.7")
    flood = [log.issue("1", list(range(100)), client="10.6.6.6") for _ in range(10_000)]
    assert log.click(real, [3]).accepted == [3]  # the flood evicted only its own lists
    assert log.nbytes <= 200_000 and log.evicted_by_quota > 9_000 and log.evicted_by_budget == 0
    with pytest.raises(UnknownImpression, match="evicted impression_id: .*memory was full"):
        log.click(flood[0], [1])
    assert log.click(flood[-1], [1]).accepted == [1]
    # 600 addresses together fill the whole budget: the largest holders lose lists, not the user
    many = [
        log.issue("1", list(range(100)), client=f"10.1.{i // 250}.{i % 250}") for i in range(600)
    ]
    assert log.nbytes <= 200_000 and log.evicted_by_budget > 0
    assert log.click(real, [4]).accepted == [4]
    assert log.click(many[-1], [5]).accepted == [5]


def test_flooding_the_service_keeps_impression_memory_under_its_budget(settings, tiny_bundle):
    """A flood of anonymous k=100 lists: the log's byte count stays under the budget, the
    process's resident memory grows by about the budget at most, and a real user's impression
    from another address survives it."""
    import resource

    budget = 2 * 2**20
    settings.serve.impression_budget_bytes = budget
    settings.serve.impression_client_quota_bytes = budget // 8
    app = create_app(settings, tiny_bundle)
    with TestClient(app, client=("10.0.0.7", 5000)) as user, TestClient(app) as flooder:
        service = app.state.service
        mine = user.get("/recommendations/2?k=5").json()
        for _ in range(300):  # warm-up: allocator pools, caches, first series
            service.recommend_user(3, 20, client="10.9.9.9")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, peak so far
        for i in range(12_000):  # k=100 from the catalogue of 30: lists of 30 items
            service.recommend_user(1000 + i, 100, client=f"10.6.{i % 16}.1")
        growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        log = service.impressions
        assert log.nbytes <= budget and log.evicted_by_budget > 0
        assert growth_mb < 2 * budget / 2**20 + 8, growth_mb  # was ~11 KB per impression
        click = {"impression_id": mine["impression_id"], "clicks": [mine["items"][0]["item_id"]]}
        assert user.post("/feedback", json=click).json()["accepted"] == 1
        gone = flooder.get("/recommendations/2?k=5").json()
        for _ in range(700):  # > its quota (256 KiB) of 30-item lists (~0.5 KB each)
            flooder.get("/recommendations/2?k=100")
        late = {"impression_id": gone["impression_id"], "clicks": [gone["items"][0]["item_id"]]}
        refused = flooder.post("/feedback", json=late)
        assert refused.status_code == 404
        assert refused.json()["detail"].startswith("evicted impression_id: the list was served")


# ---- numbers too large to parse --------------------------------------------------------------
HUGE = "9" * 5000  # Python refuses int() of more than 4,300 digits


@pytest.mark.parametrize(
    "path",
    [
        f"/recommendations/{HUGE}",
        f"/recommendations/{'1' * 4301}",
        f"/recommendations/{'0' * 5000}{HUGE}",
        "/recommendations/2147483648",
        f"/users/{HUGE}/history",
        f"/recommendations/2?k={HUGE}",
        f"/users?limit={HUGE}",
        f"/users/2/history?n=-{HUGE}",
    ],
    ids=["id-5000", "id-4301", "zeros+id", "id-max+1", "history-id", "k", "limit", "n"],
)
def test_huge_numbers_anywhere_in_the_url_are_422_not_500(client, path, caplog):
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert HUGE not in response.text and "Traceback" not in caplog.text


def test_leading_zeros_still_name_the_user(client):
    assert client.get(f"/recommendations/{'0' * 5000}2?k=3").json()["user_id"] == 2


def test_huge_numbers_in_a_body_are_400_not_500(client):
    for path, body in (
        ("/recommendations/session", '{"item_ids": [' + HUGE + '], "k": 5}'),
        ("/feedback", '{"impression_id": "x", "clicks": [' + HUGE + "]}"),
    ):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400 and HUGE not in response.text


# ---- request size ---------------------------------------------------------------------------
def test_body_over_the_limit_is_413_before_parsing(client):
    limit = client.app.state.settings.serve.max_body_bytes
    big = b'{"item_ids": [' + b"1," * limit + b"1]}"
    response = client.post(
        "/recommendations/session", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and str(limit) in response.json()["detail"]

    def chunks():  # no Content-Length: counted while received
        for _ in range(limit // 1000 + 2):
            yield b" " * 1000

    response = client.post(
        "/feedback", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    ok = client.post("/recommendations/session", json={"item_ids": [101], "k": 3})
    assert ok.status_code == 200


# ---- a store that is locked, missing, down --------------------------------------------------
def lock_sqlite(path: Path) -> sqlite3.Connection:
    """Hold an exclusive lock on the sqlite file (readers get SQLITE_BUSY after their timeout)."""
    conn = sqlite3.connect(path, timeout=5, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


@pytest.fixture
def writable_bundle(tiny_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    for path in [bundle, *bundle.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return bundle


def get(url: str, timeout: float = 30) -> tuple[int, dict]:
    import json

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_health_answers_while_store_reads_wait_on_a_locked_sqlite(writable_bundle):
    """A store read blocked on the lock holds a thread-pool worker, never the event loop.

    The store timeout is set to 2 s here (40x the default) so that blocked reads are still in
    flight while /health is asked: /health must answer before any of them returns.
    """
    env = {
        "LEVEL3_SERVE__BUNDLE_DIR": str(writable_bundle),
        "LEVEL3_SERVE__ADMIN_TOKEN": "locked-store-token",
        "LEVEL3_SERVE__STORE_TIMEOUT_MS": "2000",
        "LEVEL3_SERVE__BREAKER_FAILURES": "100",
    }
    with uvicorn_server(SERVICE_APP, env) as base:
        assert get(f"{base}/recommendations/2?k=3")[1]["source"] == "precomputed"
        lock = lock_sqlite(writable_bundle / "store.sqlite")
        try:
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                started = time.perf_counter()
                blocked = [
                    pool.submit(get, f"{base}/recommendations/{u}?k=3") for u in (2, 3, 4, 5)
                ]
                time.sleep(0.3)  # the reads are now waiting on the lock
                health_times = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    status, body = get(f"{base}/health")
                    health_times.append(time.perf_counter() - t0)
                    assert status == 200 and body == {"status": "ok"}
                assert not any(f.done() for f in blocked), "store reads did not wait on the lock"
                results = [f.result() for f in blocked]
                waited = time.perf_counter() - started
        finally:
            lock.rollback()
            lock.close()
        # the blocked reads ended in the flagged fallback, after about the store timeout
        assert all(r[1]["fallback_reason"] == "store" for r in results)
        assert waited >= 1.5
        # /health meanwhile: a small fraction of the 2 s wait (typically a few ms)
        assert max(health_times) < 0.5, health_times


def test_locked_store_falls_back_fast_and_ready_says_why(settings, writable_bundle):
    with TestClient(create_app(settings, writable_bundle)) as client:
        lock = lock_sqlite(writable_bundle / "store.sqlite")
        try:
            body = client.get("/recommendations/2?k=3").json()
            assert body["fallback"] and body["fallback_reason"] == "store"
            response = client.get("/ready")
            assert response.status_code == 503
            assert response.json()["store"] == "down" and "locked" in response.json()["reason"]
        finally:
            lock.rollback()
            lock.close()
        assert client.get("/ready").status_code == 200


def test_ready_503_when_the_store_file_is_missing(settings, writable_bundle):
    (writable_bundle / "store.sqlite").unlink()
    with TestClient(create_app(settings, writable_bundle)) as client:
        response = client.get("/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False and body["store"] == "down"
        assert body["reason"].startswith("store down:")
        assert client.get("/health").status_code == 200


def test_ready_503_when_redis_refuses(settings, tiny_bundle):
    from ml_common.services import free_port

    settings.store.backend = "redis"
    settings.store.redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens
    with TestClient(create_app(settings, tiny_bundle)) as client:
        response = client.get("/ready")
        assert response.status_code == 503 and "store down" in response.json()["reason"]


def test_ready_503_when_the_champion_cannot_be_loaded(settings, writable_bundle):
    (writable_bundle / "champion" / "weights.npy").unlink()
    with TestClient(create_app(settings, writable_bundle)) as client:
        response = client.get("/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["champion_version"] is None
        assert "champion cannot be loaded" in body["reason"] and "weights.npy" in body["reason"]
        answer = client.get("/recommendations/2")
        assert answer.status_code == 503 and "weights.npy" in answer.json()["detail"]
        assert client.get("/health").status_code == 200


# ---- admin token ----------------------------------------------------------------------------
def test_service_refuses_the_default_admin_token(tiny_bundle):
    settings = load(None)
    assert settings.serve.admin_token == DEFAULT_ADMIN_TOKEN
    with pytest.raises(ConfigError, match="LEVEL3_SERVE__ADMIN_TOKEN"):
        create_app(settings, tiny_bundle)
    with pytest.raises(ConfigError, match="empty"):
        create_app(load(None, serve={"admin_token": " "}), tiny_bundle)
    dev = load(None, serve={"allow_default_admin_token": True})
    with TestClient(create_app(dev, tiny_bundle)) as client:
        assert client.get("/health").status_code == 200


def test_uvicorn_and_cli_refuse_the_default_token(tiny_bundle):
    import subprocess
    import sys

    from ml_common.paths import PROJECT_ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("LEVEL3_SERVE__ADMIN_TOKEN")}
    env.update(PYTHONPATH=str(PROJECT_ROOT), LEVEL3_SERVE__BUNDLE_DIR=str(tiny_bundle))
    cli = subprocess.run(
        [sys.executable, "-m", "level3_recsys", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode != 0 and "public default" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_deploy_writes_a_random_private_token_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(tmp_path))
    settings = load(None)
    token = deployed_admin_token(settings, create=True)
    path = tmp_path / "level3" / "admin_token"
    assert path.read_text().strip() == token and len(token) >= 32
    assert token != DEFAULT_ADMIN_TOKEN
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert deployed_admin_token(settings, create=True) == token  # reused, not rotated
    explicit = load(None, serve={"admin_token": "from-the-environment"})
    assert deployed_admin_token(explicit, create=True) == "from-the-environment"
