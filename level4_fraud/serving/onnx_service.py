"""The slim scoring tier that ships in the Docker image: ONNX models, onnxruntime, no torch.

It serves the bundle in one folder (``FRAUD_MODEL_DIR``, default ``/srv/model``), written by
``python -m level4_fraud export-onnx`` **from the registry**: ``champion.onnx`` (the registered
ensemble's scoring path, output ``score``), optional ``challenger.onnx`` and ``model.json``
(feature order, threshold, and the registered model's name, version and run id). Bundles of bare
nets (output ``logit``, :func:`~level4_fraud.serving.export.export_bundle`) are served too.

What is served is said everywhere: ``GET /model`` (name, version, run id per arm), every
``/score`` answer (``model_version``, ``run_id``), the metric labels (``model_version``) and
``fraud_model_info``.

**Following the alias.** When a retrain promotes a new champion, the exporter rewrites the folder
(atomically); the service notices (it polls ``model.json`` every ``FRAUD_RELOAD_SECONDS``, 0 = off)
or is told (``POST /admin/reload`` with ``Authorization: Bearer $FRAUD_ADMIN_TOKEN``; without a
token set, the endpoint is off) and loads the new bundle beside the old one. Only a bundle that
loads and scores a probe row replaces the old one, by swapping one reference: a request in flight
keeps the deployment it started with, and a bundle that fails to load leaves the old version
serving (``fraud_model_reloads_total{outcome="failure"}`` counts it; an alert watches it).

A request carries the customer and the transaction's feature row (in the full system part 1's
service reads those features from the Feast online store); the customer's stable hash decides
which model answers (:class:`~level4_fraud.serving.traffic.TrafficSplit`).

Endpoints: ``POST /score``, ``GET /model``, ``GET /health``, ``GET /metrics``,
``POST /admin/reload``. Environment: ``FRAUD_MODEL_DIR``, ``FRAUD_CHALLENGER_SHARE``,
``FRAUD_AB_SALT``, ``FRAUD_RELOAD_SECONDS``, ``FRAUD_ADMIN_TOKEN``.
Run: ``uvicorn --factory level4_fraud.serving.onnx_service:app_from_env --port 8080``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Header, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from level4_fraud.serving.errors import validation_detail
from level4_fraud.serving.traffic import TrafficSplit
from ml_common.body_limit import BodySizeLimit

log = logging.getLogger(__name__)


MAX_BODY_BYTES = 4096  # a feature row is ~500 bytes


# Every feature is a count, a share, a flag or an amount: finite, and well inside float32.
FeatureValue = Annotated[StrictFloat, Field(allow_inf_nan=False, ge=-1e9, le=1e9)]


class ScoreRequest(BaseModel):
    """One transaction: who pays, and its feature row by name. Strict: no booleans or strings for
    numbers, no NaN/Infinity, ids that fit a signed 64-bit integer, no unknown fields."""

    model_config = ConfigDict(extra="forbid")

    customer_id: StrictInt = Field(ge=0, lt=2**63)
    features: dict[str, FeatureValue] = Field(max_length=64)


class ScoreResponse(BaseModel):
    """The fraud probability, the decision, which arm answered and which registered version."""

    customer_id: int
    fraud_probability: float
    decision: str
    arm: str
    model_version: str
    run_id: str | None


@dataclass
class LoadedModel:
    """An onnxruntime session and the registered version it was exported from."""

    session: Any
    version: str
    run_id: str | None = None
    registered_model: str | None = None
    output: str = "score"

    def score(self, row: np.ndarray) -> float:
        """The fraud probability of one feature row (``(1, n_features)`` float32)."""
        value = float(self.session.run([self.output], {"features": row})[0].reshape(-1)[0])
        if self.output == "logit":
            return float(1.0 / (1.0 + np.exp(-value)))
        return value

    def lineage(self) -> dict[str, str | None]:
        """Name, version and run id of what this arm serves."""
        return {
            "registered_model": self.registered_model,
            "version": self.version,
            "run_id": self.run_id,
        }


@dataclass(frozen=True)
class Deployment:
    """Everything one bundle holds; replaced as a whole, never changed in place."""

    models: dict[str, LoadedModel]
    meta: dict[str, Any]
    fingerprint: str
    loaded_at: float = field(default_factory=time.time)


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def bundle_fingerprint(model_dir: Path) -> str:
    """A hash of the bundle's ``model.json`` (it names the versions; it changes with them)."""
    return hashlib.sha256((model_dir / "model.json").read_bytes()).hexdigest()


def _load_arm(path: Path, info: Any) -> LoadedModel:
    session = _session(path)
    output = session.get_outputs()[0].name
    embedded = session.get_modelmeta().custom_metadata_map
    if isinstance(info, dict):  # a bundle exported from the registry
        for key in ("version", "run_id"):
            if embedded and embedded.get(key) != str(info.get(key)):
                raise ValueError(
                    f"{path.name} says {key}={embedded.get(key)!r} but model.json says "
                    f"{info.get(key)!r}: the bundle is inconsistent"
                )
        return LoadedModel(
            session, str(info["version"]), info.get("run_id"), info.get("registered_model"), output
        )
    return LoadedModel(session, str(info), output=output)


def load_models(model_dir: Path) -> tuple[dict[str, LoadedModel], dict[str, Any]]:
    """The champion (required), the challenger (optional) and the metadata in ``model_dir``."""
    meta_path = model_dir / "model.json"
    champion_path = model_dir / "champion.onnx"
    if not champion_path.is_file() or not meta_path.is_file():
        raise FileNotFoundError(
            f"{model_dir} needs champion.onnx and model.json: run "
            "`python -m level4_fraud export-onnx --out DIR` and mount DIR there"
        )
    meta = json.loads(meta_path.read_text())
    models = {"champion": _load_arm(champion_path, meta.get("champion", "champion"))}
    if (model_dir / "challenger.onnx").is_file():
        models["challenger"] = _load_arm(
            model_dir / "challenger.onnx", meta.get("challenger", "challenger")
        )
    probe = np.zeros((1, len(meta["features"])), dtype=np.float32)
    for arm, model in models.items():
        value = model.score(probe)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"the {arm} model scores a probe row {value}, not a probability")
    return models, meta


def load_deployment(model_dir: Path) -> Deployment:
    """Load and probe the bundle in ``model_dir``; raises if any part of it is unusable."""
    fingerprint = bundle_fingerprint(model_dir)
    models, meta = load_models(model_dir)
    return Deployment(models, meta, fingerprint)


class ServiceMetrics:
    """The scoring tier's Prometheus metrics (names shared with part 1's service)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "fraud_scoring_requests",
            "scored transactions",
            ["arm", "decision", "model_version"],
            registry=r,
        )
        self.latency = Histogram(
            "fraud_scoring_latency_seconds",
            "time to score one transaction",
            ["model_version"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.info = Gauge(
            "fraud_model_info",
            "1 for each arm's served registered version",
            ["arm", "registered_model", "model_version", "run_id"],
            registry=r,
        )
        self.reloads = Counter(
            "fraud_model_reloads", "bundle reload attempts", ["outcome"], registry=r
        )
        for outcome in ("success", "failure"):
            self.reloads.labels(outcome)  # both series exist from the start (alerts see 0)

    def describe(self, deployment: Deployment) -> None:
        """Point ``fraud_model_info`` at the deployment now serving."""
        self.info.clear()
        for arm, model in deployment.models.items():
            self.info.labels(
                arm, model.registered_model or "", model.version, model.run_id or ""
            ).set(1)
            for decision in ("allow", "block"):  # series exist at 0: rates and ratios are defined
                self.requests.labels(arm, decision, model.version)


class ModelHolder:
    """The current deployment, swapped whole when a newer bundle loads."""

    def __init__(self, model_dir: Path, metrics: ServiceMetrics) -> None:
        self.model_dir = model_dir
        self.metrics = metrics
        self.lock = threading.Lock()  # one reload at a time; requests never wait on it
        self.current = load_deployment(model_dir)
        self.last_error: str | None = None
        self.failed_fingerprint: str | None = None
        metrics.describe(self.current)

    def reload(self) -> bool:
        """Load the folder's bundle if it changed; True when a new one now serves.

        A bundle that fails to load is counted once (``fraud_model_reloads_total{outcome=
        "failure"}``) and not retried until the folder changes again; the error is raised and the
        old deployment keeps serving. A folder caught mid-replacement (no ``model.json``) is not a
        failure: the exporter swaps folders atomically, the next poll sees the new one.
        """
        with self.lock:
            fingerprint = bundle_fingerprint(self.model_dir)
            if fingerprint == self.current.fingerprint:
                return False
            if fingerprint == self.failed_fingerprint:
                raise RuntimeError(self.last_error)
            try:
                fresh = load_deployment(self.model_dir)
            except Exception as exc:
                self.metrics.reloads.labels("failure").inc()
                self.failed_fingerprint = fingerprint
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("bundle reload failed, still serving the old one: %s", exc)
                raise
            self.current = fresh  # one reference swap: in-flight requests keep theirs
            self.last_error = self.failed_fingerprint = None
            self.metrics.reloads.labels("success").inc()
            self.metrics.describe(fresh)
            log.info("now serving %s", {a: m.version for a, m in fresh.models.items()})
            return True

    def poll(self, every_s: float, stop: threading.Event) -> None:
        """Reload whenever the bundle changes, until ``stop`` is set."""
        while not stop.wait(every_s):
            with contextlib.suppress(Exception):  # counted and logged by reload(); keep polling
                self.reload()


def create_app(
    model_dir: Path,
    challenger_share: float = 0.0,
    salt: str = "ab-1",
    reload_seconds: float = 0.0,
    admin_token: str | None = None,
) -> FastAPI:
    """The FastAPI app; the bundle loads at start-up (the lifespan), so a bad folder fails fast."""
    metrics = ServiceMetrics()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        state["holder"] = holder = ModelHolder(model_dir, metrics)
        share = challenger_share if "challenger" in holder.current.models else 0.0
        state["split"] = TrafficSplit(share, salt)
        stop = threading.Event()
        if reload_seconds > 0:
            threading.Thread(target=holder.poll, args=(reload_seconds, stop), daemon=True).start()
        yield
        stop.set()

    app = FastAPI(title="Level 4 fraud scoring (ONNX)", lifespan=lifespan)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # One line naming the field by its schema path and the rule, never the input (it may be
        # huge or hostile).
        return JSONResponse({"detail": validation_detail(exc.errors(), ScoreRequest)}, 422)

    @app.get("/health")
    def health() -> dict[str, Any]:
        deployment: Deployment = state["holder"].current
        return {
            "status": "ok",
            "models": {arm: m.version for arm, m in deployment.models.items()},
            "challenger_share": state["split"].challenger_share,
        }

    @app.get("/model")
    def model() -> dict[str, Any]:
        holder: ModelHolder = state["holder"]
        deployment = holder.current
        return {
            **{arm: m.lineage() for arm, m in deployment.models.items()},
            "threshold": deployment.meta["threshold"],
            "loaded_at": deployment.loaded_at,
            "last_reload_error": holder.last_error,
        }

    @app.post("/admin/reload")
    def admin_reload(authorization: str | None = Header(None)) -> dict[str, Any]:
        if not admin_token:
            raise HTTPException(404, "admin reload is off (FRAUD_ADMIN_TOKEN is not set)")
        given = (authorization or "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(given, admin_token.encode()):
            raise HTTPException(401, "a valid bearer token is required")
        try:
            changed = state["holder"].reload()
        except Exception as exc:
            raise HTTPException(
                409, f"kept the old model: the new bundle failed to load ({exc})"
            ) from None
        current = state["holder"].current
        return {"reloaded": changed, "champion": current.models["champion"].lineage()}

    @app.post("/score", response_model=ScoreResponse)
    def score(request: ScoreRequest) -> ScoreResponse:
        start = time.perf_counter()
        deployment: Deployment = state["holder"].current  # one deployment for the whole request
        names: list[str] = deployment.meta["features"]
        missing = [n for n in names if n not in request.features]
        unknown = sorted(set(request.features) - set(names))
        if missing or unknown:
            raise HTTPException(  # names the model's features, counts the caller's (no echo)
                422,
                f"feature row must have exactly the model's features; missing {missing}, "
                f"{len(unknown)} unknown",
            )
        if request.features.get("tx_amount", 0.0) < 0:
            raise HTTPException(422, "tx_amount must be >= 0")
        row = np.array([[request.features[n] for n in names]], dtype=np.float32)
        arm = state["split"].arm(request.customer_id)
        arm = arm if arm in deployment.models else "champion"  # a bundle without a challenger
        model = deployment.models[arm]
        probability = model.score(row)
        if not np.isfinite(probability):  # never "allow" a payment the model could not score
            raise HTTPException(503, "the model returned no score for this payment")
        decision = "block" if probability >= deployment.meta["threshold"] else "allow"
        metrics.requests.labels(arm, decision, model.version).inc()
        metrics.latency.labels(model.version).observe(time.perf_counter() - start)
        return ScoreResponse(
            customer_id=request.customer_id,
            fraud_probability=probability,
            decision=decision,
            arm=arm,
            model_version=model.version,
            run_id=model.run_id,
        )

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """The app configured by the ``FRAUD_*`` environment variables (see the module docstring)."""
    return create_app(
        Path(os.environ.get("FRAUD_MODEL_DIR", "/srv/model")),
        float(os.environ.get("FRAUD_CHALLENGER_SHARE", "0")),
        os.environ.get("FRAUD_AB_SALT", "ab-1"),
        float(os.environ.get("FRAUD_RELOAD_SECONDS", "10")),
        os.environ.get("FRAUD_ADMIN_TOKEN") or None,
    )
