"""The scoring image: built from docker/fraud.Dockerfile, run, and asked real questions.

The build context is assembled in a temporary folder with the same layout as the repository (only
the files the Dockerfile copies, plus the machine's CA certificates when present), so the test
does not depend on a root .dockerignore and never leaves certificates in the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from level4_fraud.models.fraudnet import FraudNet
from level4_fraud.serving.export import export_bundle
from level4_fraud.serving.traffic import TrafficSplit
from ml_common.services import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FEATURES = [f"f{i}" for i in range(6)] + ["tx_amount"]
CA_DIR = Path("/usr/local/share/ca-certificates")


def _docker(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _request(url: str, payload: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _model(seed: int) -> FraudNet:
    torch.manual_seed(seed)
    model = FraudNet(len(FEATURES), hidden=(8,), dropout=0.0)
    model.set_scaler(np.zeros(len(FEATURES)), np.ones(len(FEATURES)))
    return model.eval()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    context = tmp_path_factory.mktemp("fraud-context")
    for relative in [
        "docker/fraud.Dockerfile",
        "level4_fraud/__init__.py",
        "level4_fraud/serving/__init__.py",
        "level4_fraud/serving/traffic.py",
        "level4_fraud/serving/onnx_service.py",
        "level4_fraud/requirements-serve.txt",
    ]:
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, context / relative)
    certificates = sorted(CA_DIR.glob("*.crt")) if CA_DIR.is_dir() else []
    if certificates:
        (context / "docker/ca-certificates").mkdir(parents=True)
        for cert in certificates:
            shutil.copy(cert, context / "docker/ca-certificates" / cert.name)
    tag = f"ml-levels/fraud-scoring:test-{uuid.uuid4().hex[:8]}"
    build = ["build", "-f", "docker/fraud.Dockerfile", "-t", tag]
    if os.environ.get("DOCKER_BASE_IMAGE"):
        build += ["--build-arg", f"BASE={os.environ['DOCKER_BASE_IMAGE']}"]
    _docker(*build, str(context), timeout=1500)
    yield tag
    _docker("rmi", "-f", tag, check=False)


def test_image_serves_champion_and_challenger(image: str, tmp_path: Path) -> None:
    champion, challenger = _model(0), _model(1)
    bundle = export_bundle(
        tmp_path / "model",
        champion,
        FEATURES,
        threshold=0.5,
        challenger=challenger,
        versions={"champion": "v1", "challenger": "v2"},
    )
    bundle.chmod(0o755)
    for file in bundle.iterdir():
        file.chmod(0o644)
    port = free_port()
    name = f"fraud-test-{uuid.uuid4().hex[:8]}"
    _docker(
        "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080",
        "-e", "FRAUD_CHALLENGER_SHARE=0.5", "-e", "FRAUD_AB_SALT=docker-test",
        "-v", f"{bundle}:/srv/model:ro", image,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                status, health = _request(f"{base}/health")
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                logs = _docker("logs", name, check=False)
                raise AssertionError(f"service never became healthy:\n{logs.stdout}{logs.stderr}")
            time.sleep(1)
        assert health["models"] == {"champion": "v1", "challenger": "v2"}
        # Non-root, and no torch inside the image.
        assert _docker("exec", name, "id", "-u").stdout.strip() == "10001"
        no_torch = _docker("exec", name, "python3", "-c", "import torch", check=False)
        assert no_torch.returncode != 0

        rng = np.random.default_rng(0)
        split = TrafficSplit(0.5, "docker-test")
        arms = set()
        for customer in range(30):
            row = rng.normal(size=len(FEATURES)).astype(np.float32)
            row[-1] = abs(row[-1])
            features = dict(zip(FEATURES, map(float, row), strict=True))
            payload = {"customer_id": customer, "features": features}
            status, answer = _request(f"{base}/score", payload)
            assert status == 200, answer
            arm = split.arm(customer)
            assert answer["arm"] == arm  # the same stable split as the library
            expected_model = champion if arm == "champion" else challenger
            with torch.no_grad():
                expected = float(torch.sigmoid(expected_model(torch.from_numpy(row[None]))))
            assert answer["fraud_probability"] == pytest.approx(expected, abs=1e-5)
            assert answer["decision"] == ("block" if expected >= 0.5 else "allow")
            arms.add(arm)
        assert arms == {"champion", "challenger"}

        bad = {"customer_id": 1, "features": {"f0": 1.0}}
        status, answer = _request(f"{base}/score", bad)
        assert status == 422 and "missing" in answer["detail"]
        negative = {"customer_id": 1, "features": {n: 1.0 for n in FEATURES} | {"tx_amount": -5}}
        assert _request(f"{base}/score", negative)[0] == 422

        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            assert "fraud_scores_total" in response.read().decode()
        # Docker's own HEALTHCHECK turns healthy.
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            state = _docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip()
            if state == "healthy":
                break
            time.sleep(2)
        assert state == "healthy"
    finally:
        _docker("rm", "-f", name, check=False)
