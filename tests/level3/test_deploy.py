"""``make level3`` without Docker (uvicorn in the background), load test, drift job, down."""

import json
import urllib.request

import pytest

from level3_recsys.batch import drift_report_flow
from level3_recsys.deploy import deploy, deployed_admin_token, down, pid_file
from level3_recsys.loadtest.run import run_loadtest
from level3_recsys.settings import load
from level3_recsys.train import default_dirs
from ml_common.services import free_port


@pytest.mark.slow
def test_deploy_without_docker_then_loadtest_then_down(tmp_path):
    port = free_port()
    settings = load(
        None,
        deploy={"port": port, "container": f"level3-test-{port}"},
        loadtest={"users": 10, "spawn_rate": 10, "duration_s": 4, "target_rps": 50},
        train={"bpr_iterations": 20},
    )
    try:
        urls = deploy(settings, use_docker=False)  # trains and registers first if needed
        assert urls["api"] == f"http://127.0.0.1:{port}" and pid_file().is_file()
        with urllib.request.urlopen(urls["example"], timeout=10) as response:
            body = json.loads(response.read())
        assert body["source"] == "precomputed" and len(body["items"]) == 10

        result = run_loadtest(settings, url=urls["api"], duration_s=4)
        assert result["loadtest_error_rate"] == 0.0
        assert result["loadtest_rps"] > 10 and result["loadtest_p99_ms"] > 0
        assert result["service_max_rps"] > 0 and result["bare_max_rps"] > 0
        assert 0 < result["throughput_ratio_vs_bare_endpoint"] < 5

        # the drift batch job reads the live features the load test produced
        token = deployed_admin_token(settings)
        report = drift_report_flow(
            settings, urls["api"], default_dirs()[2], tmp_path / "drift.html", token
        )
        assert "session_length" in report["columns"]
        assert (tmp_path / "drift.html").stat().st_size > 10_000
    finally:
        stopped = down(settings)
    assert "uvicorn" in stopped and not pid_file().exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
