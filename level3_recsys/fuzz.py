"""Schema-based fuzzing of a running service with schemathesis (``st run``, every check).

Used by the tests (against uvicorn and against the container) and by ``bench`` (keys
``fuzz_requests``, ``fuzz_failures``). The number of requests is not schemathesis's own count: it is
the service's ``recsys_requests_total`` before and after the run, so it counts what reached the app.
schemathesis is a dev dependency (``pip install -e '.[dev]'``), not part of the serving image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

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
    after = requests_served(base_url)
    summary = json.loads(report.read_text()) if report.is_file() else {}
    unique = summary.get("test_cases", {}).get("unique_failures")
    errors = len(summary.get("errors", []))
    return {
        "requests": int(after - before - 1),  # minus the /metrics read before the run
        "generated": summary.get("test_cases", {}).get("generated", 0),
        "failures": (unique if unique is not None else 1) + errors,
        "failure_titles": [f["title"] for f in summary.get("failures", [])],
        "phases": {k: v["status"] for k, v in summary.get("phases", {}).items()},
        "exit_code": result.returncode,
        "output": (result.stdout + result.stderr)[-4000:],
    }
