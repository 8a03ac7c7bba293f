"""Kubernetes manifests: valid against the API schemas offline, and they say what the issue asks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
VALIDATE = Path(sys.executable).parent / "kubernetes-validate"


def _resources() -> dict[str, dict]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def _validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    if not VALIDATE.exists():
        pytest.fail(f"{VALIDATE} missing: install the dev extra (kubernetes-validate)")
    return subprocess.run(
        [str(VALIDATE), "--strict", *map(str, paths)], capture_output=True, text=True, timeout=120
    )


def test_manifests_pass_strict_schema_validation() -> None:
    result = _validate(*sorted(K8S.glob("*.yaml")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def test_validator_rejects_a_broken_manifest(tmp_path: Path) -> None:
    doc = _resources()["Deployment/fraud-scoring"]
    doc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/x"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    assert _validate(broken).returncode != 0


def test_scoring_service_has_probes_limits_service_and_autoscaler() -> None:
    resources = _resources()
    deployment = resources["Deployment/fraud-scoring"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True

    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = resources["Service/fraud-scoring"]
    assert service["spec"]["selector"].items() <= labels.items()
    hpa = resources["HorizontalPodAutoscaler/fraud-scoring"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "fraud-scoring"
    assert hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_retraining_cronjob_and_distributed_job() -> None:
    resources = _resources()
    cron = resources["CronJob/fraud-retrain"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    command = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["python", "-m", "level4_fraud"]

    job = resources["Job/fraud-train"]
    trainer = job["spec"]["template"]["spec"]["containers"][0]
    assert trainer["command"][0] == "torchrun"
    args = " ".join(trainer["command"])
    assert "--rdzv-backend=c10d" in args and "level4_fraud.training.distributed" in args
    nnodes = int(next(a for a in trainer["command"] if a.startswith("--nnodes=")).split("=")[1])
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == nnodes
    # The rendezvous host is pod 0 behind the headless service the job's pods join.
    headless = resources["Service/fraud-train"]
    assert headless["spec"]["clusterIP"] == "None"
    assert job["spec"]["template"]["spec"]["subdomain"] == headless["metadata"]["name"]
