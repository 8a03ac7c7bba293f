"""Shadow deployment: the challenger scores the same requests; users only see the champion."""

import random

import pytest
from fastapi.testclient import TestClient

from level3_recsys.monitoring import Metrics, Shadow
from level3_recsys.serve import create_app


def test_challenger_scored_in_shadow_and_never_served(settings, tiny_bundle):
    settings.serve.shadow_sample_rate = 1.0  # every request, so the counts below are exact
    app = create_app(settings, tiny_bundle)
    service = app.state.service
    calls = []
    with TestClient(app) as client:  # the lifespan loads the bundle
        real = service.challenger.score_items

        def spy(history, k):
            calls.append((tuple(history.tolist()), k))
            return real(history, k)

        service.challenger.score_items = spy
        bodies = [client.get(f"/recommendations/{u}?k=5").json() for u in (2, 3, 4)]
        session = client.post("/recommendations/session", json={"item_ids": [101], "k": 5})
        service.shadow.wait()
        assert all(b["model_version"] == "1" for b in bodies + [session.json()])
        assert len(calls) == 4 and all(k == 5 for _, k in calls)
        assert calls[0][0] == tuple(service.histories.get(2).tolist())  # same request
        assert service.shadow.completed == 4
        overlaps = list(service.shadow.overlaps)
        assert len(overlaps) == 4 and all(0.0 <= o <= 1.0 for o in overlaps)
        text = client.get("/metrics").text
        assert "recsys_shadow_latency_seconds_count 4.0" in text
        assert "recsys_shadow_overlap_count 4.0" in text
        mean = client.get("/model").json()["shadow_mean_overlap"]
        assert abs(mean - sum(overlaps) / 4) < 1e-9


def test_shadow_failure_does_not_reach_the_user(settings, tiny_bundle):
    app = create_app(settings, tiny_bundle)
    with TestClient(app) as client:
        app.state.service.challenger.score_items = lambda history, k: 1 / 0
        response = client.get("/recommendations/2?k=5")
        app.state.service.shadow.wait()
        assert response.status_code == 200 and response.json()["model_version"] == "1"


def test_default_config_shadows_a_share_of_requests(settings, tiny_bundle):
    """With the packaged config's rate, the challenger scores about that share of requests:
    some, not all (a rate ignored, or read as 0 or 1, fails this)."""
    rate = settings.serve.shadow_sample_rate  # as config.yaml ships it
    app = create_app(settings, tiny_bundle)
    service = app.state.service
    service.shadow.rng = random.Random(11)
    calls = []
    with TestClient(app) as client:
        real = service.challenger.score_items
        service.challenger.score_items = lambda history, k: calls.append(k) or real(history, k)
        n = 400
        for i in range(n):
            assert client.get(f"/recommendations/{2 + i % 3}?k=5").status_code == 200
        service.shadow.wait()
    expected, sd = n * rate, (n * rate * (1 - rate)) ** 0.5
    assert 0 < len(calls) < n
    assert abs(len(calls) - expected) <= 4 * sd  # Binomial(n, rate); the seed fixes the draw


def test_shadow_scores_only_the_sampled_share(settings, tiny_bundle):
    settings.serve.shadow_sample_rate = 0.25
    app = create_app(settings, tiny_bundle)
    service = app.state.service
    service.shadow.rng = random.Random(7)
    calls = []
    with TestClient(app) as client:
        real = service.challenger.score_items
        service.challenger.score_items = lambda history, k: calls.append(k) or real(history, k)
        for i in range(400):
            assert client.get(f"/recommendations/{2 + i % 3}?k=5").json()["model_version"] == "1"
        service.shadow.wait()
        # Binomial(400, 0.25): mean 100, sd 8.7; the seed makes it deterministic anyway.
        assert 70 <= len(calls) <= 130
        assert service.shadow.completed == len(calls) == len(service.shadow.overlaps)
        text = client.get("/metrics").text
        assert f"recsys_shadow_latency_seconds_count {float(len(calls))}" in text
        assert "recsys_shadow_sample_rate 0.25" in text


def test_shadow_sample_rate_zero_scores_nothing(settings, tiny_bundle):
    settings.serve.shadow_sample_rate = 0.0
    app = create_app(settings, tiny_bundle)
    service = app.state.service
    with TestClient(app) as client:
        service.challenger.score_items = lambda history, k: pytest.fail("challenger was called")
        for user in (2, 3, 4):
            assert client.get(f"/recommendations/{user}?k=5").status_code == 200
        service.shadow.wait()
        assert service.shadow.completed == 0
        assert client.get("/model").json()["shadow_mean_overlap"] is None


def test_shadow_rejects_a_rate_outside_zero_one():
    with pytest.raises(ValueError, match="sample_rate"):
        Shadow(Metrics(), sample_rate=1.5)
