"""The scoring service: a transaction in, a fraud score and a decision out.

``POST /score`` takes one transaction, reads the customer's and the terminal's snapshot from the
Feast online store, adds the intraday part from the service's own running counters (the
customer's payments earlier today), scores the feature row with the champion ensemble and answers
``{"score", "decision", ...}``. Every score is logged (``artifacts/level4/serve/scores.jsonl``)
for the monitor, and counted in the Prometheus metrics at ``GET /metrics``.

Every public input is treated as hostile (the validation is the only way in, so no payment is
ever let through unscored): ids are strict integers in ``0 … 2³¹−1`` (``"12"`` and ``true`` are
refused, and Feast never sees an id it cannot hold); the amount is a finite number between 0 and
``MAX_AMOUNT`` (``NaN``, ``Infinity``, ``1e309`` and ``1e39`` are refused, so the customer's
intraday counters stay finite); the timestamp is an ISO-8601 string between 2000 and 2100,
converted to UTC (a naive one is taken as UTC); unknown fields are refused; a body over
``MAX_BODY_BYTES`` gets a 413 before it is read further. Errors are 4xx with one line naming
the field and the rule, never echoing the input; every accepted request gets a finite score.

:func:`load_test` starts the service on a free 127.0.0.1 port, sends a bounded number of requests
and reports p50/p99 latency as seen by the client.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator

from level4_fraud.config import Level4Settings
from level4_fraud.data.feature_store import online_snapshot
from level4_fraud.data.features import (
    CUSTOMER_SNAPSHOT,
    FEATURES,
    NIGHT_END_SECONDS,
    TERMINAL_SNAPSHOT,
    WINDOWS,
)
from level4_fraud.lifecycle.metrics import FraudMetrics
from level4_fraud.models.ensemble import FraudEnsemble
from level4_fraud.serving.errors import validation_detail
from ml_common.atomic import write_json
from ml_common.body_limit import BodySizeLimit
from ml_common.config import dump_settings
from ml_common.paths import level_dir
from ml_common.services import free_port

log = logging.getLogger(__name__)

MAX_ID = 2**31 - 1
MAX_AMOUNT = 1_000_000.0  # far above any simulated payment; a bound keeps the counters finite
EARLIEST, LATEST = datetime(2000, 1, 1), datetime(2100, 1, 1)


class Transaction(BaseModel):
    """One card payment to score (strict: see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    tx_id: StrictInt | None = Field(None, ge=0, le=2**63 - 1, description="caller's id, echoed")
    customer_id: StrictInt = Field(..., ge=0, le=MAX_ID)
    terminal_id: StrictInt = Field(..., ge=0, le=MAX_ID)
    tx_amount: StrictFloat = Field(..., ge=0, le=MAX_AMOUNT, allow_inf_nan=False)
    tx_datetime: datetime

    @field_validator("tx_datetime", mode="before")
    @classmethod
    def _iso_string_only(cls, value: object) -> object:
        # Pydantic would also take a number as seconds since 1970; a payment time is a string
        # (or a datetime, from Python callers).
        if not isinstance(value, (str, datetime)):
            raise ValueError("must be an ISO-8601 date-time string")
        return value

    @field_validator("tx_datetime")
    @classmethod
    def _utc_and_plausible(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:  # the features use UTC wall-clock time
            value = value.astimezone(UTC).replace(tzinfo=None)
        if not EARLIEST <= value < LATEST:
            raise ValueError(f"must lie between {EARLIEST:%Y} and {LATEST:%Y}")
        return value


class Score(BaseModel):
    """The service's answer."""

    tx_id: int | None
    score: float
    decision: str
    threshold: float
    model_version: int | None
    run_id: str | None = None


class IntradayCounters:
    """Each customer's payments so far today (count, amount), this payment included.

    With one worker the counters live in this process's memory. With several uvicorn workers
    each process would count only the payments it happened to serve, so the counters live in
    one sqlite file that every worker updates in a single atomic statement (sqlite serialises
    the writers across processes).

    Args:
        path: the shared sqlite file; ``None`` keeps the counters in memory.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.lock = threading.Lock()
        self.memory: dict[int, tuple[object, float, float]] = {}
        self.db: sqlite3.Connection | None = None
        if path is not None:
            self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS intraday (customer_id INTEGER PRIMARY KEY, "
                "day TEXT NOT NULL, count REAL NOT NULL, total REAL NOT NULL)"
            )
            self.db.commit()

    def add(self, customer_id: int, day: date, amount: float) -> tuple[float, float]:
        """Count one payment; return the customer's ``(count, total)`` today including it."""
        with self.lock:
            if self.db is None:
                prev_day, count, total = self.memory.get(customer_id, (day, 0.0, 0.0))
                if prev_day != day:
                    count, total = 0.0, 0.0
                count, total = count + 1, total + amount
                self.memory[customer_id] = (day, count, total)
                return count, total
            # SET's right-hand sides see the row before the update (sqlite's rule).
            row = self.db.execute(
                "INSERT INTO intraday VALUES (?, ?, 1, ?) ON CONFLICT(customer_id) DO UPDATE SET "
                "count = CASE WHEN day = excluded.day THEN count + 1 ELSE 1 END, "
                "total = CASE WHEN day = excluded.day THEN total + excluded.total "
                "ELSE excluded.total END, day = excluded.day RETURNING count, total",
                (customer_id, day.isoformat(), amount),
            ).fetchone()
            self.db.commit()
            return float(row[0]), float(row[1])

    def close(self) -> None:
        """Close the shared file (if any)."""
        if self.db is not None:
            self.db.close()


class ScoringState:
    """What the service holds: store, champion, intraday counters, score log."""

    def __init__(
        self,
        settings: Level4Settings,
        store: Any,
        champion: FraudEnsemble,
        version: int | None,
        log_path: Path | None = None,
        run_id: str | None = None,
        counters_path: Path | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.champion = champion
        self.version = version
        self.run_id = run_id
        self.metrics = FraudMetrics()
        self.counters = IntradayCounters(counters_path)
        self.log_path = log_path or level_dir(4) / "serve" / "scores.jsonl"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Line-buffered: several workers append to one file, and each write is one whole line.
        self._log = self.log_path.open("a", buffering=1)

    def features(self, tx: Transaction) -> np.ndarray:
        """The model's feature row for ``tx`` (online snapshot + intraday counters)."""
        snap = online_snapshot(self.store, tx.customer_id, tx.terminal_id)
        missing_customer = any(snap[c] is None for c in CUSTOMER_SNAPSHOT)
        missing_terminal = any(snap[c] is None for c in TERMINAL_SNAPSHOT)
        if missing_customer or missing_terminal:
            what = "customer_id" if missing_customer else "terminal_id"
            raise HTTPException(422, f"{what}: unknown, the feature store has no features for it")
        count, total = self.counters.add(tx.customer_id, tx.tx_datetime.date(), tx.tx_amount)
        return self.feature_row(tx, snap, count, total)

    @staticmethod
    def feature_row(
        tx: Transaction, snap: dict[str, float | None], count: float, total: float
    ) -> np.ndarray:
        """The ``FEATURES`` row, computed without pandas (this is the latency-critical path).

        ``count``/``total``: the customer's payments today up to and including this one — the
        same definitions as :func:`level4_fraud.data.features.combine` (a test checks they agree).
        """
        when = tx.tx_datetime
        values = {
            "tx_amount": tx.tx_amount,
            "tx_during_weekend": float(when.weekday() >= 5),
            "tx_during_night": float(
                when.hour * 3600 + when.minute * 60 + when.second < NIGHT_END_SECONDS
            ),
        }
        for w in WINDOWS:
            n, amount = count, total
            if w > 1:
                n += float(snap[f"customer_nb_tx_prev_{w - 1}d"] or 0.0)
                amount += float(snap[f"customer_amount_prev_{w - 1}d"] or 0.0)
            values[f"customer_nb_tx_{w}d"] = n
            values[f"customer_avg_amount_{w}d"] = amount / n
        for name in TERMINAL_SNAPSHOT:
            values[name] = float(snap[name] or 0.0)
        return np.array([[values[f] for f in FEATURES]], dtype=np.float32)

    def log(self, tx: Transaction, score: float, decision: str) -> None:
        """Append the score to the score log (for monitoring and delayed-label evaluation)."""
        self._log.write(
            json.dumps(
                {
                    "tx_id": tx.tx_id,
                    "customer_id": tx.customer_id,
                    "terminal_id": tx.terminal_id,
                    "tx_datetime": tx.tx_datetime.isoformat(),
                    "score": score,
                    "decision": decision,
                    "model_version": self.version,
                }
            )
            + "\n"
        )

    def close(self) -> None:
        """Flush and close the score log and the counters."""
        self._log.close()
        self.counters.close()


def create_app(state_factory: Any) -> FastAPI:
    """The FastAPI app; ``state_factory()`` builds the :class:`ScoringState` at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.scoring = state_factory()
        yield
        app.state.scoring.close()

    app = FastAPI(title="level 4 fraud scoring", lifespan=lifespan)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # One line naming the field by its schema path and the rule; never the client's input.
        return JSONResponse({"detail": validation_detail(exc.errors(), Transaction)}, 422)

    @app.get("/health")
    def health(request: Request) -> dict[str, Any]:
        state: ScoringState = request.app.state.scoring
        # The worker's pid: with several uvicorn workers, which process answered.
        return {"status": "ok", "model_version": state.version, "worker_pid": os.getpid()}

    @app.get("/model")
    def model(request: Request) -> dict[str, Any]:
        state: ScoringState = request.app.state.scoring
        return {
            "registered_model": state.settings.model_name,
            "version": state.version,
            "run_id": state.run_id,
            "weights": dict(state.champion.weights),
        }

    @app.post("/score", response_model=Score)
    def score(tx: Transaction, request: Request) -> Score:
        state: ScoringState = request.app.state.scoring
        started = time.perf_counter()
        row = state.features(tx)
        value = float(state.champion.predict_proba(row)[0])
        if not np.isfinite(value):  # never "allow" a payment the model could not score
            raise HTTPException(503, "the model returned no score for this payment")
        threshold = state.settings.serve.decision_threshold
        decision = "block" if value >= threshold else "allow"
        state.log(tx, value, decision)
        version = str(state.version)
        state.metrics.requests.labels(decision=decision, model_version=version).inc()
        state.metrics.latency.labels(model_version=version).observe(time.perf_counter() - started)
        return Score(
            tx_id=tx.tx_id,
            score=value,
            decision=decision,
            threshold=threshold,
            model_version=state.version,
            run_id=state.run_id,
        )

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics(request: Request) -> str:
        from prometheus_client import generate_latest

        state: ScoringState = request.app.state.scoring
        return generate_latest(state.metrics.registry).decode()

    return app


MAX_BODY_BYTES = 4096  # a transaction is ~150 bytes


def default_state(settings: Level4Settings, counters_path: Path | None = None) -> ScoringState:
    """The champion from the registry and the Feast store under ``artifacts/level4/feast``."""
    from level4_fraud.data.feature_store import feast_dir, open_store
    from level4_fraud.training.registry import load_model
    from ml_common.tracking import CHAMPION

    if not (feast_dir() / "online.db").is_file():
        raise FileNotFoundError(
            f"no online store at {feast_dir()}: run `python -m level4_fraud train` first"
        )
    champion = load_model(settings, CHAMPION)
    if champion is None:
        raise FileNotFoundError(
            f"no '{CHAMPION}' alias on model {settings.model_name}: "
            "run `python -m level4_fraud train` first"
        )
    from level4_fraud.serving.export import registered_lineage

    lineage = registered_lineage(settings, CHAMPION)
    store = open_store(apply=False)
    return ScoringState(
        settings,
        store,
        champion,
        int(lineage["version"]),
        run_id=lineage["run_id"],
        counters_path=counters_path,
    )


class BackgroundServer:
    """uvicorn in a thread on 127.0.0.1 (tests and the load test); stop() shuts it down."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        import uvicorn

        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the scoring service did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"


def load_test(
    app: FastAPI, transactions: pd.DataFrame, n_requests: int, warmup: int = 50
) -> dict[str, float]:
    """Score ``n_requests`` transactions one by one over loopback; client-side latency in ms."""
    import httpx

    payloads = payloads_of(transactions.head(n_requests + warmup))
    latencies = []
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for i, payload in enumerate(payloads):
            started = time.perf_counter()
            response = client.post("/score", json=payload)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if i >= warmup:
                latencies.append(elapsed)
    arr = np.array(latencies)
    return {
        "requests": len(arr),
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
    }


def payloads_of(transactions: pd.DataFrame) -> list[dict[str, Any]]:
    """``/score`` request bodies of simulated transactions."""
    return [
        {
            "tx_id": int(r.tx_id),
            "customer_id": int(r.customer_id),
            "terminal_id": int(r.terminal_id),
            "tx_amount": float(r.tx_amount),
            "tx_datetime": pd.Timestamp(r.tx_datetime).isoformat(),
        }
        for r in transactions.itertuples()
    ]


def concurrent_load_test(url: str, payloads: list[dict[str, Any]]) -> dict[str, float]:
    """Send every payload at once (one connection each) and time each answer, client-side.

    The burst the issue asks about: ``len(payloads)`` requests in flight together, so p99 is
    what the slowest of them waits, queueing included.
    """
    import asyncio

    import httpx

    async def one(client: httpx.AsyncClient, payload: dict[str, Any]) -> float:
        started = time.perf_counter()
        response = await client.post("/score", json=payload)
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000

    async def burst() -> list[float]:
        limits = httpx.Limits(max_connections=len(payloads), max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
            await client.get("/health")
            return await asyncio.gather(*(one(client, p) for p in payloads))

    started = time.perf_counter()
    latencies = np.array(asyncio.run(burst()))
    return {
        "requests": len(latencies),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "max_ms": float(latencies.max()),
        "wall_s": time.perf_counter() - started,
    }


class ServiceProcess:
    """``python -m level4_fraud serve`` as a child process on a free 127.0.0.1 port (the bench's
    concurrent test: the service exactly as ``serve`` runs it, workers included)."""

    def __init__(self, settings: Level4Settings, config_path: Path) -> None:
        self.port = free_port()
        self.settings = settings
        self.config_path = config_path
        self.process: Any = None

    def __enter__(self) -> ServiceProcess:
        import subprocess
        import sys

        import httpx

        write_json(self.config_path, dump_settings(self.settings))
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "level4_fraud",
                "--config",
                str(self.config_path),
                "serve",
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the scoring service exited before it answered")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError("the scoring service did not answer within 180 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # uvicorn's supervisor stops its workers on SIGTERM
            try:
                self.process.wait(timeout=30)
            except Exception:  # noqa: BLE001 - a stuck child must not outlive the bench
                self.process.kill()
                self.process.wait()

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"


# What a worker process of ``main`` reads to build its app (uvicorn imports the factory by name).
SETTINGS_ENV, COUNTERS_ENV = "LEVEL4_SERVE_SETTINGS_FILE", "LEVEL4_SERVE_COUNTERS_FILE"


def app_from_env() -> FastAPI:
    """The app of one uvicorn worker: settings and the shared counters file from the environment
    (written by :func:`main`)."""
    from level4_fraud.config import load_config

    settings = load_config(os.environ[SETTINGS_ENV])
    counters = Path(os.environ[COUNTERS_ENV])
    return create_app(lambda: default_state(settings, counters))


def main(settings: Level4Settings, port: int = 8004) -> int:
    """Serve until interrupted (127.0.0.1 only) with ``serve.workers`` uvicorn processes."""
    import uvicorn

    workers = settings.serve.workers
    log.info("scoring service on %s:%d with %d worker(s)", settings.serve.host, port, workers)
    if workers == 1:
        app = create_app(lambda: default_state(settings))
        uvicorn.run(app, host=settings.serve.host, port=port, log_level="info")
        return 0
    # Several processes: each builds its own app from the same resolved settings, and they share
    # the customers' intraday counters through one sqlite file, new for this run.
    run_dir = level_dir(4) / "serve"
    run_dir.mkdir(parents=True, exist_ok=True)
    settings_file = run_dir / f"settings-{port}.json"
    write_json(settings_file, dump_settings(settings))
    counters = run_dir / f"intraday-{port}.db"
    for leftover in (counters, Path(f"{counters}-wal"), Path(f"{counters}-shm")):
        leftover.unlink(missing_ok=True)
    os.environ[SETTINGS_ENV], os.environ[COUNTERS_ENV] = str(settings_file), str(counters)
    uvicorn.run(
        "level4_fraud.serving.service:app_from_env",
        factory=True,
        host=settings.serve.host,
        port=port,
        workers=workers,
        log_level="info",
    )
    return 0
