"""``make loadtest``: three locust phases, one JSON, one README table.

1. **target** — the service at a fixed offered load (``loadtest.target_rps``, spread over
   ``loadtest.users`` users with ``constant_throughput``): p50/p95/p99, rps, error rate.
2. **service max** — the same mix with no wait: the service's saturation throughput.
3. **bare max** — bare FastAPI JSON endpoints (:mod:`.bare`) with the same request mix.
``throughput_ratio_vs_bare_endpoint`` = (2) / (3), both measured in this run on this machine.
Locust and the servers share the machine's cores, so numbers are only comparable within a run.
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from level3_recsys.bundle import UserHistories, default_serving_dir
from level3_recsys.deploy import SERVICE_APP, start_uvicorn
from level3_recsys.settings import Level3Settings
from ml_common.atomic import write_json, write_text
from ml_common.logs import get_logger
from ml_common.paths import PROJECT_ROOT, level_dir
from ml_common.report import replace_section
from ml_common.services import free_port, wait_healthy

log = get_logger(__name__)
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
README = PROJECT_ROOT / "level3_recsys" / "README.md"


@contextmanager
def uvicorn_server(app: str, env: dict[str, str] | None = None, factory: bool = True):
    """Run ``app`` with uvicorn on a free 127.0.0.1 port; yield its base URL; stop it after."""
    port = free_port()
    process = start_uvicorn(app, port, env, factory)
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_healthy(f"{base}/health", 60):
            raise RuntimeError(f"{app} did not start on {base}")
        yield base
    finally:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(10)
        if process.poll() is None:
            process.kill()


def run_locust(
    base: str,
    users: int,
    spawn_rate: float,
    duration_s: int,
    rate: float,
    mode: str,
    users_file: Path | None,
    workdir: Path,
) -> dict[str, float]:
    """One headless locust run; the aggregated row of its CSV stats as numbers."""
    prefix = workdir / f"{mode}-{int(rate)}-{users}"
    env = {
        **os.environ,
        "LOADTEST_RATE": str(rate),
    }
    if users_file:
        env["LOADTEST_USERS_FILE"] = str(users_file)
    locust = shutil.which("locust", path=str(Path(sys.executable).parent)) or "locust"
    command = [
        locust,
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        base,
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "-t",
        f"{duration_s}s",
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "2",
    ]
    subprocess.run(command, env=env, check=False, capture_output=True, timeout=duration_s + 60)
    stats_path = Path(f"{prefix}_stats.csv")
    if not stats_path.is_file():
        raise RuntimeError(f"locust wrote no stats ({stats_path})")
    with stats_path.open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]

    def number(field: str) -> float:
        # locust writes N/A when no request completed (a starved warm-up on busy cores)
        value = total[field]
        return float("nan") if value in ("N/A", "") else float(value)

    requests = float(total["Request Count"])
    failures = float(total["Failure Count"])
    return {
        "requests": requests,
        "failures": failures,
        "error_rate": failures / requests if requests else 1.0,
        "rps": number("Requests/s"),
        "p50_ms": number("50%"),
        "p95_ms": number("95%"),
        "p99_ms": number("99%"),
        "max_ms": number("Max Response Time"),
    }


def in_process_latency(settings: Level3Settings, serving_dir: Path, n: int = 400) -> dict:
    """Per-request cost inside the app (ASGI, no network, no locust): what the service adds."""
    import asyncio
    import random

    import httpx
    import numpy as np

    from level3_recsys.serve import create_app

    app = create_app(with_random_admin_token(settings), serving_dir)
    app.state.service.load()  # what the lifespan does (ASGITransport does not run it)
    users = [int(u) for u in app.state.service.histories.user_ids]

    async def measure() -> list[float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            timings = []
            for i in range(n + 50):
                start = time.perf_counter()
                await client.get(f"/recommendations/{random.choice(users)}?k=10")
                if i >= 50:  # the first 50 warm up
                    timings.append((time.perf_counter() - start) * 1000)
            return timings

    timings = np.asarray(asyncio.run(measure()))
    app.state.service.close()
    return {
        "requests": n,
        "p50_ms": float(np.percentile(timings, 50)),
        "p95_ms": float(np.percentile(timings, 95)),
        "p99_ms": float(np.percentile(timings, 99)),
    }


def known_users_file(serving_dir: Path, workdir: Path) -> Path | None:
    users = serving_dir / "champion" / "users.npz"
    if not users.is_file():
        return None
    path = workdir / "users.txt"
    path.write_text("\n".join(str(u) for u in UserHistories.load(users).user_ids))
    return path


@contextmanager
def service_url(settings: Level3Settings, url: str | None, serving_dir: Path):
    """The given URL, the deployed service if it answers, else a uvicorn started for the test."""
    deployed = f"http://127.0.0.1:{settings.deploy.port}"
    if url:
        yield url, "given URL"
    elif wait_healthy(f"{deployed}/health", 1):
        yield deployed, "make level3 service"
    else:
        with local_service(serving_dir) as base:
            yield base, "uvicorn started by the load test"


def with_random_admin_token(settings: Level3Settings) -> Level3Settings:
    """``settings`` with a fresh random admin token (the load test never calls the admin API)."""
    serve = settings.serve.model_copy(update={"admin_token": secrets.token_urlsafe(24)})
    return settings.model_copy(update={"serve": serve})


def local_service(serving_dir: Path):
    """The service under one local uvicorn, serving the bundle in ``serving_dir``."""
    env = {
        "LEVEL3_SERVE__BUNDLE_DIR": str(serving_dir),
        "LEVEL3_SERVE__ADMIN_TOKEN": secrets.token_urlsafe(24),
    }
    return uvicorn_server(SERVICE_APP, env)


def run_loadtest(
    settings: Level3Settings, url: str | None = None, duration_s: int | None = None
) -> dict[str, Any]:
    """All three phases; writes ``artifacts/level3/loadtest.json`` and the README table."""
    cfg = settings.loadtest
    duration = duration_s or cfg.duration_s
    serving_dir = default_serving_dir()
    with tempfile.TemporaryDirectory(prefix="level3-locust-") as tmp:
        workdir = Path(tmp)
        users_file = known_users_file(serving_dir, workdir)
        with service_url(settings, url, serving_dir) as (base, where):
            log.info("warm-up: 3 s, not measured")
            run_locust(base, 8, 8, 3, 0, "warmup", users_file, workdir)
            log.info("phase 1/3: %s at %.0f rps offered for %ds", base, cfg.target_rps, duration)
            target = run_locust(
                base,
                cfg.users,
                cfg.spawn_rate,
                duration,
                cfg.target_rps / cfg.users,
                "service",
                users_file,
                workdir,
            )
        # The ratio compares like with like: both apps under the same launcher (one uvicorn
        # process on this machine), whatever served phase 1 (container or not).
        with local_service(serving_dir) as local:
            run_locust(local, 8, 8, 3, 0, "warmup", users_file, workdir)
            log.info("phase 2/3: service saturation (%s)", local)
            service_max = run_locust(local, 16, 16, duration, 0, "service", users_file, workdir)
        with uvicorn_server("level3_recsys.loadtest.bare:app", factory=False) as bare_base:
            run_locust(bare_base, 8, 8, 3, 0, "bare-warmup", users_file, workdir)
            log.info("phase 3/3: bare endpoint saturation (%s)", bare_base)
            bare_max = run_locust(bare_base, 16, 16, duration, 0, "bare", users_file, workdir)
    inside = in_process_latency(settings, serving_dir)
    result = {
        "target": where,
        "offered_rps": cfg.target_rps,
        "duration_s": duration,
        "cpu_count": os.cpu_count(),
        "loadtest_rps": target["rps"],
        "loadtest_p50_ms": target["p50_ms"],
        "loadtest_p95_ms": target["p95_ms"],
        "loadtest_p99_ms": target["p99_ms"],
        "loadtest_error_rate": target["error_rate"],
        "service_max_rps": service_max["rps"],
        "bare_max_rps": bare_max["rps"],
        "throughput_ratio_vs_bare_endpoint": (
            service_max["rps"] / bare_max["rps"] if bare_max["rps"] else 0.0
        ),
        "phases": {"target": target, "service_max": service_max, "bare_max": bare_max},
        "in_process": inside,
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    write_json(level_dir(3) / "loadtest.json", result)
    table = markdown_table(result)
    write_text(level_dir(3) / "loadtest.md", table)
    update_readme(table)
    return result


def markdown_table(result: dict[str, Any]) -> str:
    phases = result["phases"]
    lines = [
        f"Measured {result['measured_at']} on {result['cpu_count']} cores (locust on the same "
        f"cores), {result['duration_s']} s per phase, `make loadtest`.",
        "",
        "| phase | rps | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {
        "target": f"service ({result['target']}), {result['offered_rps']:.0f} rps offered",
        "service_max": "service (local uvicorn), saturated",
        "bare_max": "bare FastAPI (local uvicorn), saturated",
    }
    for key, label in names.items():
        p = phases[key]
        lines.append(
            f"| {label} | {p['rps']:.0f} | {p['p50_ms']:.0f} | {p['p95_ms']:.0f} | "
            f"{p['p99_ms']:.0f} | {p['error_rate']:.2%} |"
        )
    inside = result["in_process"]
    lines.append(
        f"| in-process (ASGI, no network, no locust), {inside['requests']} sequential GETs | – | "
        f"{inside['p50_ms']:.2f} | {inside['p95_ms']:.2f} | {inside['p99_ms']:.2f} | – |"
    )
    lines += [
        "",
        f"Throughput ratio service / bare endpoint: "
        f"**{result['throughput_ratio_vs_bare_endpoint']:.2f}**",
        "",
    ]
    return "\n".join(lines)


def update_readme(table: str, section: str = "loadtest") -> None:
    """Replace the text between the level README's ``<!-- section:start/end -->`` markers (if the
    markers exist): the load-test table here, the offline table from :mod:`level3_recsys.bench`."""
    if README.is_file():
        with suppress(ValueError):  # a README without the markers is left as it is
            replace_section(README, section, table)
