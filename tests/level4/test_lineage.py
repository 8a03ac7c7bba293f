"""What is deployed is what was evaluated: ONNX exported from the registry, and a service that
follows the champion alias without a restart and without a failed request."""

from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import onnx
import pytest

from level4_fraud.config import load_config
from level4_fraud.data.features import FEATURES, as_matrix
from level4_fraud.serving.export import export_from_registry, onnx_scores
from level4_fraud.serving.onnx_service import create_app
from level4_fraud.serving.service import BackgroundServer
from level4_fraud.training.registry import log_model
from level4_fraud.training.train import fit_ensemble
from ml_common.tracking import CHAMPION, set_alias


@pytest.fixture(scope="module")
def registered(tiny_features):
    """Two registered versions of a tiny ensemble (different weights), v1 the champion."""
    settings = load_config(
        None,
        model_name="level4-fraud-test-lineage",
        torch={"epochs": 2, "num_threads": 1},
        lightgbm={"n_estimators": 40},
        ensemble={"isolation_trees": 20},
    )
    days = tiny_features["tx_time_days"]
    train = tiny_features[days.between(30, 44)]
    first = fit_ensemble(train, settings, {"lightgbm": 0.5, "fraudnet": 0.5})
    second = fit_ensemble(train, settings, {"lightgbm": 0.8, "fraudnet": 0.2})
    v1 = log_model(first, settings, {"ap": 0.5}, run_name="lineage-v1")
    v2 = log_model(second, settings, {"ap": 0.6}, run_name="lineage-v2")
    set_alias(settings.model_name, CHAMPION, v1)
    batch = as_matrix(tiny_features[days.between(50, 59)].head(2000))
    return settings, {v1: first, v2: second}, batch


def test_export_from_registry_round_trips(registered, tmp_path) -> None:
    settings, ensembles, batch = registered
    meta = export_from_registry(settings, tmp_path / "bundle")
    version = int(meta["champion"]["version"])
    data = (tmp_path / "bundle" / "champion.onnx").read_bytes()
    # The registered champion's scores, on real feature rows (not the export's own check batch).
    expected = ensembles[version].predict_proba(batch)
    np.testing.assert_allclose(onnx_scores(data, batch), expected, atol=1e-5, rtol=0)
    assert expected.std() > 0.01  # the scores vary: the comparison is not between constants
    # Lineage inside the ONNX file and in model.json: the version and the run that produced it.
    props = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    assert props["version"] == meta["champion"]["version"] == str(version)
    assert props["run_id"] == meta["champion"]["run_id"] and len(props["run_id"]) == 32
    assert json.loads((tmp_path / "bundle" / "model.json").read_text())["features"] == FEATURES
    assert meta["champion"]["check"]["max_abs_diff"] <= 1e-5


def test_export_refuses_a_scoring_path_it_cannot_compile(registered, tmp_path) -> None:
    settings, ensembles, _ = registered
    forest_weighted = next(iter(ensembles.values()))
    forest_weighted = type(forest_weighted)(
        forest_weighted.members, {"lightgbm": 0.5, "fraudnet": 0.4, "isolation_forest": 0.1}
    )
    version = log_model(forest_weighted, settings, {"ap": 0.5}, run_name="lineage-forest")
    other = settings.model_copy(update={"model_name": settings.model_name})
    set_alias(other.model_name, "forest", version)
    with pytest.raises(ValueError, match="isolation_forest"):
        export_from_registry(other, tmp_path / "never", alias="forest")
    assert not (tmp_path / "never").exists()  # nothing half-written


def _score_payload(row: np.ndarray, customer: int) -> dict:
    return {"customer_id": customer, "features": dict(zip(FEATURES, map(float, row), strict=True))}


def test_service_follows_a_promotion_without_restart_or_failed_request(
    registered, tmp_path
) -> None:
    settings, ensembles, batch = registered
    (v1, first), (v2, second) = sorted(ensembles.items())
    set_alias(settings.model_name, CHAMPION, v1)
    bundle = tmp_path / "bundle"
    export_from_registry(settings, bundle)
    app = create_app(bundle, reload_seconds=0.2, admin_token="s3cret")
    answers: list[tuple[int, str | None, float, int]] = []
    stop = threading.Event()

    def traffic(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            i = 0
            while not stop.is_set():
                row = batch[i % len(batch)]
                response = client.post("/score", json=_score_payload(row, i))
                body = response.json()
                answers.append(
                    (
                        response.status_code,
                        body.get("model_version"),
                        body.get("fraud_probability"),
                        i,
                    )
                )
                i += 1

    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/model").json()["champion"]["version"] == str(v1)
        sender = threading.Thread(target=traffic, args=(server.url,))
        sender.start()
        try:
            while len(answers) < 20:
                time.sleep(0.05)
            set_alias(settings.model_name, CHAMPION, v2)  # the retrain's promotion
            export_from_registry(settings, bundle)  # what the CronJob does after it
            deadline = time.monotonic() + 60
            while client.get("/model").json()["champion"]["version"] != str(v2):
                assert time.monotonic() < deadline, "the service never loaded the new champion"
                time.sleep(0.1)
            seen = len(answers)
            while len(answers) < seen + 20:
                time.sleep(0.05)
        finally:
            stop.set()
            sender.join(timeout=30)
        model = client.get("/model").json()
        metrics = client.get("/metrics").text
        # A bundle that fails to load leaves the old version serving.
        (bundle / "champion.onnx").write_bytes(b"not an onnx model")
        (bundle / "model.json").write_text((bundle / "model.json").read_text() + " ")
        refused = client.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
        assert refused.status_code == 409 and "kept the old model" in refused.json()["detail"]
        assert (
            client.post("/admin/reload", headers={"Authorization": "Bearer nope"}).status_code
            == 401
        )
        still = client.post("/score", json=_score_payload(batch[0], 1))
        assert still.status_code == 200 and still.json()["model_version"] == str(v2)
        failures = client.get("/metrics").text

    statuses = {status for status, *_ in answers}
    assert statuses == {200}, f"failed requests during the swap: {statuses}"
    versions = [version for _, version, _, _ in answers]
    assert versions[0] == str(v1) and versions[-1] == str(v2)
    switch = versions.index(str(v2))
    assert set(versions[switch:]) == {str(v2)}  # no flapping back once swapped
    # Every answer is the score of the version it names.
    for _, version, probability, i in answers[:: max(1, len(answers) // 50)]:
        ensemble = first if version == str(v1) else second
        expected = ensemble.predict_proba(batch[i % len(batch)][None, :])[0]
        assert abs(probability - expected) <= 1e-5
    assert model["champion"]["run_id"] and model["champion"]["version"] == str(v2)
    assert f'model_version="{v2}"' in metrics and f'model_version="{v1}"' in metrics
    assert 'fraud_model_reloads_total{outcome="failure"} 1.0' in failures


def test_export_onnx_command(registered, tmp_path, monkeypatch, capsys) -> None:
    from level4_fraud.__main__ import main

    settings, _, _ = registered
    monkeypatch.setenv("LEVEL4_MODEL_NAME", "level4-fraud-no-such-model")
    assert main(["export-onnx", "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no 'champion' alias" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "none").exists()
    monkeypatch.setenv("LEVEL4_MODEL_NAME", settings.model_name)
    assert main(["export-onnx", "--out", str(tmp_path / "bundle")]) == 0
    assert "max |diff|" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "bundle").iterdir()} == {"champion.onnx", "model.json"}


def test_bench_deployed_matches_champion(registered) -> None:
    from level4_fraud.bench import deployed_matches_champion

    settings, ensembles, _ = registered
    result = deployed_matches_champion(settings, rows=64)
    assert result["matches"] is True and result["max_abs_diff"] <= 1e-5
    assert int(result["version"]) in ensembles and len(result["run_id"]) == 32


def test_the_deployed_tier_refuses_hostile_input_and_scores_every_accepted_request(
    registered, tmp_path
) -> None:
    """The ONNX tier is what k8s and compose deploy: no input may skip the model or cause a 500,
    and no 422 echoes what it was sent."""
    from fastapi.testclient import TestClient

    settings, _, batch = registered
    bundle = tmp_path / "bundle"
    export_from_registry(settings, bundle)
    good = _score_payload(batch[0], 7)
    marker = "x" * 300  # a hostile field name: it must not come back in the answer
    hostile: list[tuple[object, int]] = [
        ({**good, "features": {**good["features"], "tx_amount": float("inf")}}, 422),
        ({**good, "features": {**good["features"], "tx_amount": float("nan")}}, 422),
        ({**good, "features": {**good["features"], "tx_amount": 1e39}}, 422),
        ({**good, "features": {**good["features"], "tx_amount": True}}, 422),
        ({**good, "features": {**good["features"], "tx_amount": "12"}}, 422),
        ({**good, "features": {**good["features"], "tx_amount": -1.0}}, 422),
        ({**good, "customer_id": 2**63}, 422),
        ({**good, "customer_id": "12"}, 422),
        ({**good, "customer_id": True}, 422),
        ({**good, "features": {**good["features"], marker: 1.0}}, 422),
        ({**good, marker: 1}, 422),
        ({"customer_id": 1}, 422),
        ([1, 2, 3], 422),
    ]
    with TestClient(create_app(bundle), raise_server_exceptions=False) as client:
        for body, status in hostile:
            raw = json.dumps(body, allow_nan=True)  # NaN/Infinity as a hostile client sends them
            answer = client.post(
                "/score", content=raw, headers={"content-type": "application/json"}
            )
            assert answer.status_code == status, (raw[:200], answer.status_code, answer.text)
            assert marker not in answer.text and "Infinity" not in answer.text
            assert set(answer.json()) == {"detail"}
        huge = client.post(
            "/score", content=b"{" + b" " * 50_000 + b"}",
            headers={"content-type": "application/json"},
        )  # fmt: skip
        assert huge.status_code == 413
        for i, row in enumerate(batch[:50]):  # every accepted request gets a score
            answer = client.post("/score", json=_score_payload(row, i))
            assert answer.status_code == 200
            assert 0.0 <= answer.json()["fraud_probability"] <= 1.0
