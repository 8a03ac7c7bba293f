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


def test_retrain_cronjob_writes_what_the_scoring_pods_read() -> None:
    resources = _resources()
    cron = resources["CronJob/fraud-retrain"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    deployment = resources["Deployment/fraud-scoring"]["spec"]["template"]["spec"]
    command = cron["containers"][0]["command"]
    export_dir = command[command.index("--export-onnx") + 1]
    scorer = deployment["containers"][0]
    env = {e["name"]: e.get("value") for e in scorer["env"]}
    assert env["FRAUD_MODEL_DIR"] == export_dir  # the folder the retrain replaces
    assert float(env["FRAUD_RELOAD_SECONDS"]) > 0  # ...and the pods poll it

    def claim_at(pod: dict, container: dict, path: str) -> str:
        mount = next(m for m in container["volumeMounts"] if path.startswith(m["mountPath"]))
        assert "subPath" not in mount  # a subPath would pin the folder of the pod's start
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        return volume["persistentVolumeClaim"]["claimName"]

    assert claim_at(cron, cron["containers"][0], export_dir) == claim_at(
        deployment, scorer, env["FRAUD_MODEL_DIR"]
    )
    cron_env = {e["name"]: e.get("value") for e in cron["containers"][0]["env"]}
    assert export_dir.startswith(cron_env["ML_ARTIFACTS_DIR"])  # registry on the same claim
    annotations = resources["Deployment/fraud-scoring"]["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert annotations["prometheus.io/scrape"] == "true"
    port = scorer["ports"][0]["containerPort"]
    assert annotations["prometheus.io/port"] == str(port)


def test_gpu_job_uses_the_cuda_build_of_the_training_image() -> None:
    import re

    job = _resources()["Job/fraud-train"]["spec"]["template"]["spec"]["containers"][0]
    assert job["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "--nproc-per-node=gpu" in job["command"]
    dockerfile = (ROOT / "docker" / "fraud-train.Dockerfile").read_text()
    default = re.search(r'^ARG TORCH_SPEC="([^"]+)"', dockerfile, flags=re.M).group(1)
    assert default == "torch==2.13.0"  # PyPI's Linux wheel of it is the CUDA build
    assert "download.pytorch.org" not in dockerfile  # no PyTorch index needed
    assert job["image"].split(":")[0] == "ml-levels/fraud-train"
