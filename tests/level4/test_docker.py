"""The scoring image: built from docker/fraud.Dockerfile, run, and asked real questions.

The build context is assembled in a temporary folder with the same layout as the repository (only
the files the Dockerfile copies, plus the machine's CA certificates when present), so the test
does not depend on a root .dockerignore and never leaves certificates in the source tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from level4_fraud.lifecycle.alerts import PROMETHEUS_DIR, alert_rules
from level4_fraud.models.fraudnet import FraudNet
from level4_fraud.serving.export import export_bundle
from level4_fraud.serving.traffic import TrafficSplit
from ml_common.services import free_port
from tests.conftest import require_system_tool

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
        "ml_common/__init__.py",
        "ml_common/threads.py",
        "ml_common/tool_defaults.py",
        "ml_common/paths.py",
        "ml_common/body_limit.py",
        "level4_fraud/serving/errors.py",
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
            assert "fraud_scoring_requests_total" in response.read().decode()
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


def _run_scoring_container(image: str, bundle_root: Path) -> tuple[str, str]:
    """Start the scoring image on a free port with a two-arm bundle; (container name, base URL)."""
    bundle = export_bundle(
        bundle_root / "model",
        _model(0),
        FEATURES,
        challenger=_model(1),
        versions={"champion": "v1", "challenger": "v2"},
    )
    bundle.chmod(0o755)
    for file in bundle.iterdir():
        file.chmod(0o644)
    port = free_port()
    name = f"fraud-test-{uuid.uuid4().hex[:8]}"
    _docker(
        "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080",
        "-e", "FRAUD_CHALLENGER_SHARE=0.5", "-v", f"{bundle}:/srv/model:ro", image,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if _request(f"{base}/health")[0] == 200:
                return name, base
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() > deadline:
            logs = _docker("logs", name, check=False)
            _docker("rm", "-f", name, check=False)
            raise AssertionError(f"service never became healthy:\n{logs.stdout}{logs.stderr}")
        time.sleep(1)


def _comparison_free(expr: str) -> str:
    """A rule's expression without its final threshold (``... > 0.05``): the measured series."""
    return re.sub(r"\s*(>|<|==|!=|>=|<=)\s*[0-9.]+\s*$", "", " ".join(expr.split()))


def test_prometheus_scrapes_the_container_and_every_rule_has_a_series(
    image: str, tmp_path: Path
) -> None:
    """A real Prometheus scrapes the running container with the service's alert rules loaded;
    every rule's expression (without its threshold) returns a series."""
    prometheus_bin = require_system_tool("prometheus")
    name, base = _run_scoring_container(image, tmp_path)
    prometheus = None
    try:
        prom_port = free_port()
        target = base.removeprefix("http://")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(PROMETHEUS_DIR / "fraud-rules.yml")],
            "scrape_configs": [{"job_name": "fraud", "static_configs": [{"targets": [target]}]}],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus = subprocess.Popen(
            [
                str(prometheus_bin),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = f"http://127.0.0.1:{prom_port}/api/v1"
        row = {n: 1.0 for n in FEATURES}
        deadline = time.monotonic() + 120
        pending = {
            rule["alert"]: rule["expr"] for rule in alert_rules(PROMETHEUS_DIR / "fraud-rules.yml")
        }
        i = 0
        while pending and time.monotonic() < deadline:
            for _ in range(10):  # traffic between scrapes, both arms
                _request(f"{base}/score", {"customer_id": i, "features": row})
                i += 1
            time.sleep(1)
            for alert, expr in list(pending.items()):
                query = urllib.parse.urlencode({"query": _comparison_free(expr)})
                try:
                    status, answer = _request(f"{api}/query?{query}")
                except (urllib.error.URLError, ConnectionError, OSError):
                    break  # Prometheus still starting
                if status == 200 and answer["data"]["result"]:
                    del pending[alert]
        assert not pending, f"rules whose expression returned no series: {sorted(pending)}"
        status, rules = _request(f"{api}/rules")
        loaded = [r for g in rules["data"]["groups"] for r in g["rules"]]
        assert len(loaded) == 4 and all(r["health"] == "ok" for r in loaded)
        status, targets = _request(f"{api}/targets")
        assert [t["health"] for t in targets["data"]["activeTargets"]] == ["up"]
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=30)
        _docker("rm", "-f", name, check=False)


# Installs the level4 extra (~2 GB): measured 21 min on a busy 2-core machine.
@pytest.mark.timeout(3600)
def test_training_image_builds_with_torch_from_a_build_argument(tmp_path: Path) -> None:
    """The training image, built as CI can: TORCH_SPEC names the machine's CPU wheel (the
    default, torch==2.13.0 from PyPI, is the CUDA build for the GPU Job)."""
    wheels = sorted(Path("/opt/wheels").glob("torch-2.13.0+cpu-*.whl"))
    if not wheels:
        pytest.fail("no /opt/wheels/torch-2.13.0+cpu-*.whl on this machine to build with")
    context = tmp_path / "train-context"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "docs")
    for folder in ("ml_common", "level4_fraud"):
        shutil.copytree(ROOT / folder, context / folder, ignore=ignore)
    for relative in ("pyproject.toml", "constraints.txt", "docker/fraud-train.Dockerfile"):
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, context / relative)
    (context / "docker/wheels").mkdir()
    shutil.copy(wheels[0], context / "docker/wheels" / wheels[0].name)
    certificates = sorted(CA_DIR.glob("*.crt")) if CA_DIR.is_dir() else []
    if certificates:
        (context / "docker/ca-certificates").mkdir(parents=True)
        for cert in certificates:
            shutil.copy(cert, context / "docker/ca-certificates" / cert.name)
    tag = f"ml-levels/fraud-train:test-{uuid.uuid4().hex[:8]}"
    build = ["build", "-f", "docker/fraud-train.Dockerfile", "-t", tag]
    build += ["--build-arg", "TORCH_SPEC=torch==2.13.0+cpu"]
    if os.environ.get("DOCKER_BASE_IMAGE"):
        build += ["--build-arg", f"BASE={os.environ['DOCKER_BASE_IMAGE']}"]
    _docker(*build, str(context), timeout=3300)
    try:
        check = (
            "import torch, level4_fraud.training.distributed, level4_fraud.serving.export;"
            "print(torch.__version__)"
        )
        version = _docker("run", "--rm", "--entrypoint", "python", tag, "-c", check)
        assert version.stdout.strip() == "2.13.0+cpu"
        assert "export-onnx" in _docker("run", "--rm", tag, "--help").stdout
        assert _docker("run", "--rm", "--entrypoint", "id", tag, "-u").stdout.strip() == "10001"
    finally:
        _docker("rmi", "-f", tag, check=False)
