"""Circuit breaker: unit behaviour, then fault injection in the running app (store down,
model slow) with the popularity fallback verified, and recovery."""

import logging
import time

import pytest
from fastapi.testclient import TestClient

from level3_recsys.monitoring import BreakerOpen, CircuitBreaker
from level3_recsys.serve import create_app


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_failures_and_recovers_after_reset():
    clock = FakeClock()
    breaker = CircuitBreaker("dep", failures=2, reset_seconds=10, slow_seconds=1, clock=clock)

    def boom():
        raise ValueError("down")

    for _ in range(2):
        with pytest.raises(ValueError):
            breaker.call(boom)
    assert breaker.state_name == "open"
    with pytest.raises(BreakerOpen):
        breaker.call(lambda: 1)  # not even called
    clock.now = 10.0
    assert breaker.call(lambda: 42) == 42  # half-open trial succeeds
    assert breaker.state_name == "closed"


def test_slow_calls_count_as_failures_and_half_open_failure_reopens():
    clock = FakeClock()
    breaker = CircuitBreaker("dep", failures=2, reset_seconds=5, slow_seconds=0.1, clock=clock)

    def slow():
        clock.now += 0.5
        return "late"

    assert breaker.call(slow) == "late"
    assert breaker.state_name == "closed"
    breaker.call(slow)
    assert breaker.state_name == "open"
    clock.now += 5
    breaker.call(slow)  # the half-open trial is slow again → open
    assert breaker.state_name == "open"


class DownStore:
    def get(self, user_id):
        raise ConnectionError("store unreachable")

    def ping(self):
        raise ConnectionError("store unreachable")

    def close(self):
        pass


def metric(client, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    raise AssertionError(f"{line_start} not exported")


def fault_lines(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name in ("level3_recsys.serve", "level3_recsys.service", "level3_recsys.monitoring")
    ]


def test_store_down_opens_breaker_and_serves_flagged_fallback(settings, tiny_bundle, caplog):
    caplog.set_level(logging.INFO)
    app = create_app(settings, tiny_bundle, store=DownStore())
    with TestClient(app) as client:
        bodies = [client.get("/recommendations/2?k=5").json() for _ in range(4)]
        assert all(b["fallback"] and b["source"] == "fallback" for b in bodies)
        assert [b["fallback_reason"] for b in bodies] == [
            "store",
            "store",
            "breaker_open",
            "breaker_open",
        ]
        # fallback = popular items minus the user's own history
        service = app.state.service
        seen = set(service.champion.to_ids(service.histories.get(2)))
        assert not seen & {item["item_id"] for item in bodies[0]["items"]}
        assert metric(client, 'recsys_breaker_state{dependency="store"}') == 2
        assert metric(client, 'recsys_fallback_total{reason="store"}') == 2
        assert metric(client, 'recsys_fallback_total{reason="breaker_open"}') == 2
        assert client.get("/ready").json()["breakers"]["store"] == "open"
        # the store recovers → after the reset time one trial call closes the breaker
        service.store = service.__class__.__init__.__globals__["open_store"](
            settings.store, tiny_bundle / "store.sqlite", read_only=True
        )
        time.sleep(settings.serve.breaker_reset_seconds + 0.05)
        body = client.get("/recommendations/2?k=5").json()
        assert body["source"] == "precomputed" and not body["fallback"]
        assert metric(client, 'recsys_breaker_state{dependency="store"}') == 0
        client.get("/recommendations/2?k=5")
    # one line per transition, each with its reason; none per request
    assert fault_lines(caplog) == [
        "store down: ConnectionError: store unreachable",
        "store breaker open: 2 calls in a row failed (last: ConnectionError: store unreachable);"
        f" calls skipped for {settings.serve.breaker_reset_seconds:g} s",
        f"store breaker half_open: {settings.serve.breaker_reset_seconds:g} s since it opened,"
        " one trial call",
        "store breaker closed: a trial call succeeded",
        fault_lines(caplog)[4],
    ]
    assert fault_lines(caplog)[4].startswith("store up again after ")


def test_slow_model_opens_breaker_and_serves_fallback(settings, tiny_bundle, caplog):
    caplog.set_level(logging.INFO)
    app = create_app(settings, tiny_bundle)
    with TestClient(app) as client:
        service = app.state.service
        real = service.champion.score_items

        def slow(history, k):
            time.sleep(0.08)  # above model_timeout_ms = 50
            return real(history, k)

        service.champion.score_items = slow
        request = {"item_ids": [101, 102], "k": 3}
        first = [client.post("/recommendations/session", json=request).json() for _ in range(2)]
        assert all(not b["fallback"] for b in first)  # slow but answered; counted as failures
        third = client.post("/recommendations/session", json=request).json()
        assert third["fallback"] and third["fallback_reason"] == "breaker_open"
        assert metric(client, 'recsys_breaker_state{dependency="model"}') == 2
        service.champion.score_items = real  # the model is fast again
        time.sleep(settings.serve.breaker_reset_seconds + 0.05)
        assert not client.post("/recommendations/session", json=request).json()["fallback"]
        assert client.get("/ready").json()["breakers"]["model"] == "closed"
    opened = [line for line in fault_lines(caplog) if "model breaker open" in line]
    assert len(opened) == 1 and "(last: slow: " in opened[0] and "ms > 50 ms)" in opened[0]


def test_failing_model_falls_back_with_reason(settings, tiny_bundle):
    app = create_app(settings, tiny_bundle)
    with TestClient(app) as client:
        app.state.service.champion.version = "other"  # forces the live path
        app.state.service.champion.score_items = lambda history, k: 1 / 0
        body = client.get("/recommendations/2?k=3").json()
        assert body["fallback"] and body["fallback_reason"] == "model"
