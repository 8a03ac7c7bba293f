"""Shadow deployment: the challenger scores the same requests; users only see the champion."""

from fastapi.testclient import TestClient

from level3_recsys.serve import create_app


def test_challenger_scored_in_shadow_and_never_served(settings, tiny_bundle):
    app = create_app(settings, tiny_bundle)
    service = app.state.service
    calls = []
    real = service.challenger.score_items

    def spy(history, k):
        calls.append((tuple(history.tolist()), k))
        return real(history, k)

    service.challenger.score_items = spy
    with TestClient(app) as client:
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
    app.state.service.challenger.score_items = lambda history, k: 1 / 0
    with TestClient(app) as client:
        response = client.get("/recommendations/2?k=5")
        app.state.service.shadow.wait()
        assert response.status_code == 200 and response.json()["model_version"] == "1"
