"""Feature drift: PSI, the live monitor behind /metrics, and the Evidently batch report."""

import numpy as np
from fastapi.testclient import TestClient

from level3_recsys.batch import drift_report
from level3_recsys.monitoring import DriftMonitor, psi
from level3_recsys.serve import create_app


def test_psi_zero_for_same_distribution_large_for_shifted():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 5000)
    assert psi(reference, rng.normal(0, 1, 5000)) < 0.02
    assert psi(reference, rng.normal(2, 1, 5000)) > 1.0


def test_monitor_needs_enough_samples():
    monitor = DriftMonitor({"x": list(range(100))}, window=50)
    for value in range(10):
        monitor.observe("x", value)
    assert monitor.scores() == {}
    for value in range(40):
        monitor.observe("x", 1000 + value)
    assert monitor.scores()["x"] > 1.0


def test_service_drift_score_rises_with_shifted_traffic(settings, tiny_bundle):
    app = create_app(settings, tiny_bundle)
    with TestClient(app) as client:
        # Long sessions of one item: far from the training reference (lengths 8).
        for _ in range(40):
            client.post("/recommendations/session", json={"item_ids": [101] * 60, "k": 3})
        text = client.get("/metrics").text
        score = next(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("recsys_drift_score ")
        )
        assert score > 1.0
        assert 'recsys_feature_psi{feature="session_length"}' in text
        features = client.get("/admin/features", headers={"X-Admin-Token": "test-token"}).json()
        assert len(features["features"]["session_length"]) == 40


def test_evidently_report_written(tmp_path):
    rng = np.random.default_rng(0)
    reference = {
        "user_activity": rng.poisson(20, 500).tolist(),
        "session_length": rng.poisson(5, 500).tolist(),
    }
    current = {
        "user_activity": rng.poisson(60, 200).tolist(),
        "session_length": rng.poisson(5, 200).tolist(),
    }
    summary = drift_report(reference, current, tmp_path / "drift.html")
    html = (tmp_path / "drift.html").read_text()
    assert "user_activity" in html and len(html) > 10_000
    assert summary["columns"] == ["user_activity", "session_length"]
    assert (tmp_path / "drift.json").is_file()
