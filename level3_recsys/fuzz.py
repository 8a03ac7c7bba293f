"""Schema-based fuzzing of a running service with schemathesis (``st run``, every check, every
phase: examples, coverage, fuzzing and the stateful phase that follows the feedback link), plus
integers too long for Python's ``int()`` in every path and query parameter.

Used by the tests (against uvicorn and against the container) and by ``bench`` (keys
``fuzz_requests``, ``fuzz_failures``). The number of requests is not schemathesis's own count: it is
the service's ``recsys_requests_total`` before and after the run, so it counts what reached the app.
schemathesis is a dev dependency (``pip install -e '.[dev]'``), not part of the serving image.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from ml_common.logs import get_logger

log = get_logger(__name__)


def requests_served(base_url: str) -> float:
    """Sum of ``recsys_requests_total`` over all its series (the service's own request count)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("recsys_requests_total{")
    )


def run_schemathesis(
    base_url: str,
    admin_token: str,
    workdir: Path,
    max_examples: int = 60,
    seed: int = 42,
    timeout_s: float = 900,
) -> dict[str, Any]:
    """``st run <base>/openapi.json --checks all`` with the admin token; a summary dict.

    Keys: ``requests`` (reached the app), ``generated`` (schemathesis's test cases),
    ``failures`` (unique failures + errors), ``exit_code``, ``failure_titles``, ``output`` (tail).
    """
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    report = workdir / "schemathesis.json"
    command = [
        st,
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"X-Admin-Token: {admin_token}",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--no-color",
        "--generation-database",
        "none",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    before = requests_served(base_url)
    log.info("schemathesis: --checks all, %d examples per operation, seed %d", max_examples, seed)
    result = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    huge = huge_number_probes(base_url)
    after = requests_served(base_url)
    summary = json.loads(report.read_text()) if report.is_file() else {}
    unique = summary.get("test_cases", {}).get("unique_failures")
    errors = len(summary.get("errors", []))
    return {
        "requests": int(after - before - 1),  # minus the /metrics read before the run
        "generated": summary.get("test_cases", {}).get("generated", 0),
        "failures": (unique if unique is not None else 1) + errors + huge["failures"],
        "huge_number_statuses": huge["statuses"],
        "failure_titles": [f["title"] for f in summary.get("failures", [])],
        "phases": {k: v["status"] for k, v in summary.get("phases", {}).items()},
        "exit_code": result.returncode,
        "output": (result.stdout + result.stderr)[-4000:],
    }


# Numbers schemathesis does not generate: longer than Python's int() accepts (4,300 digits), in
# every path and query parameter that holds an integer. Each must get a 4xx, never a 500.
HUGE_NUMBER = "9" * 5000
HUGE_NUMBER_PATHS = (
    f"/recommendations/{HUGE_NUMBER}",
    f"/recommendations/{'0' * 5000}{HUGE_NUMBER}",
    f"/recommendations/2?k={HUGE_NUMBER}",
    f"/users/{HUGE_NUMBER}/history",
    f"/users/2/history?n=-{HUGE_NUMBER}",
    f"/users?limit={HUGE_NUMBER}",
)


def huge_number_probes(base_url: str) -> dict[str, Any]:
    """GET every :data:`HUGE_NUMBER_PATHS`; ``failures``: answers that are not a 4xx."""
    import urllib.error

    statuses = []
    for path in HUGE_NUMBER_PATHS:
        try:
            with urllib.request.urlopen(f"{base_url}{path}", timeout=10) as response:  # noqa: S310
                statuses.append(response.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
    failures = sum(1 for status in statuses if not 400 <= status < 500)
    return {"requests": len(statuses), "failures": failures, "statuses": statuses}


def metric_series(metrics_text: str) -> int:
    """Number of samples (series) in a Prometheus text exposition."""
    return sum(1 for line in metrics_text.splitlines() if line and not line.startswith("#"))


def feedback_flood(client: Any, n: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Send ``n`` forged ``/feedback`` requests through ``client`` (a ``TestClient`` of the app);
    what grew, what moved.

    The forgeries cycle through: random impression ids (with made-up model versions in the
    body's old shape too), clicks on items an impression did not show, and replays of a click
    already recorded. Before the flood, 40 real sessions fill the drift window (so there is a
    score to move) and one forgery of each kind creates the request series of its status
    (404, 409, 422, 200 with 0 accepted): at most one series per declared status, once.
    """
    import random

    rng = random.Random(seed)
    service = client.app.state.service
    for _ in range(40):
        client.post("/recommendations/session", json={"item_ids": [101, 116], "k": 5})
    served = client.get("/recommendations/2?k=5").json()
    shown = [item["item_id"] for item in served["items"]]
    not_shown = [
        i for i in service.served.to_ids(np.arange(len(service.served.item_ids))) if i not in shown
    ][:5] or [2**31 - 1]
    client.post("/feedback", json={"impression_id": served["impression_id"], "clicks": shown[:1]})

    def forged(i: int) -> dict[str, Any]:
        kind = i % 4
        if kind == 0:
            return {"impression_id": f"{rng.getrandbits(96):x}", "clicks": [rng.randrange(2**31)]}
        if kind == 1:
            version = f"v{rng.getrandbits(64):x}"
            return {"model_version": version, "impressions": [1], "clicks": [1, 2, 3, 4, 5]}
        if kind == 2:
            return {"impression_id": served["impression_id"], "clicks": [rng.choice(not_shown)]}
        return {"impression_id": served["impression_id"], "clicks": shown[:1]}

    for i in range(4):
        client.post("/feedback", json=forged(i))

    def state() -> dict[str, Any]:
        text = client.get("/metrics").text
        model = client.get("/model").json()
        return {
            "series": metric_series(text),
            "metrics_bytes": len(text),
            "model_bytes": len(json.dumps(model)),
            "impressions_held": len(service.impressions),
            "ctr_by_version": model["ctr_by_version"],
            "drift": service.update_drift_metrics(),
        }

    state()  # the first reads of /metrics and /model create their own latency series
    before = state()
    statuses: dict[int, int] = {}
    for i in range(n):
        status = client.post("/feedback", json=forged(i)).status_code
        statuses[status] = statuses.get(status, 0) + 1
    after = state()
    drift_change = max(
        (abs(after["drift"].get(k, 0.0) - v) for k, v in before["drift"].items()), default=0.0
    )
    return {
        "requests": n,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "series_growth": after["series"] - before["series"],
        "metrics_bytes_growth": after["metrics_bytes"] - before["metrics_bytes"],
        "model_bytes_growth": after["model_bytes"] - before["model_bytes"],
        "impressions_held_growth": after["impressions_held"] - before["impressions_held"],
        "ctr_changed": after["ctr_by_version"] != before["ctr_by_version"],
        "drift_score_change": drift_change,
        "drift_features": sorted(before["drift"]),
    }


def service_checks(
    settings: Any, serving_dir: Path, flood_requests: int = 10_000, max_examples: int = 100
) -> dict[str, Any]:
    """The bench's hostile-input figures on the real serving bundle: schemathesis (every check)
    against the service under uvicorn, and a flood of forged feedback through the app."""
    import secrets
    import tempfile

    from fastapi.testclient import TestClient

    from level3_recsys.deploy import SERVICE_APP
    from level3_recsys.loadtest.run import uvicorn_server, with_random_admin_token
    from level3_recsys.serve import create_app

    settings = with_random_admin_token(settings)
    token = settings.serve.admin_token
    env = {"LEVEL3_SERVE__BUNDLE_DIR": str(serving_dir), "LEVEL3_SERVE__ADMIN_TOKEN": token}
    with (
        tempfile.TemporaryDirectory(prefix="level3-fuzz-") as tmp,
        uvicorn_server(SERVICE_APP, env) as base,
    ):
        fuzz = run_schemathesis(base, token, Path(tmp), max_examples=max_examples)
    log.info("schemathesis: %d requests, %d failures", fuzz["requests"], fuzz["failures"])
    log.info("flooding /feedback with %d forged requests (in-process)", flood_requests)
    for name in ("httpx", "httpx2"):  # one INFO line per request otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    with TestClient(create_app(settings, serving_dir)) as client:
        flood = feedback_flood(client, n=flood_requests, seed=secrets.randbelow(2**31))
    log.info("flood: %d series added, statuses %s", flood["series_growth"], flood["statuses"])
    return {"fuzz": {k: v for k, v in fuzz.items() if k != "output"}, "flood": flood}


def impression_bytes_per_item(k: int = 100, n: int = 5_000) -> float:
    """Bytes the impression log holds per item shown, for ``n`` lists of ``k`` items (what
    ``tracemalloc`` sees, the log's own containers included)."""
    import gc
    import tracemalloc

    from level3_recsys.impressions import ImpressionLog

    log_ = ImpressionLog(2**40, ttl_s=1e9)
    items = list(range(10_000, 10_000 + k))
    gc.collect()
    tracemalloc.start()
    for i in range(n):
        log_.issue("v1", items, client=f"10.0.{i % 50}.1")
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held / n / k


def _rss_mb() -> float:
    """Resident memory of this process now (Linux ``/proc/self/statm``)."""
    import os

    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def impression_flood(
    settings: Any, serving_dir: Path, n: int = 100_000, clients: int = 256
) -> dict[str, Any]:
    """``n`` anonymous k=100 lists from ``clients`` addresses through the real service (the
    issue's flood: ~126,700 such requests took the process from 306 to 1,466 MB); how much the
    process's resident memory and the impression log grew, against the configured budget."""
    import gc

    from level3_recsys.service import RecommenderService

    service = RecommenderService(settings, serving_dir)
    service.load()
    for i in range(500):  # warm-up: first series, allocator pools
        service.recommend_user(10**9 + i, 100, client="10.255.0.1")
    gc.collect()
    before = _rss_mb()
    for i in range(n):
        service.recommend_user(10**9 + i, 100, client=f"10.7.{i % clients // 256}.{i % 256}")
        if i % 20_000 == 0:
            log.info(
                "impression flood: %d / %d lists, %.0f MB held",
                i,
                n,
                service.impressions.nbytes / 2**20,
            )
    gc.collect()
    result = {
        "requests": n,
        "rss_growth_mb": round(_rss_mb() - before, 1),
        "impression_mb": round(service.impressions.nbytes / 2**20, 1),
        "budget_mb": settings.serve.impression_budget_bytes / 2**20,
        "impressions_held": len(service.impressions),
        "evicted_by_budget": service.impressions.evicted_by_budget,
        "evicted_by_quota": service.impressions.evicted_by_quota,
    }
    service.close()
    log.info("impression flood: %s", result)
    return result
