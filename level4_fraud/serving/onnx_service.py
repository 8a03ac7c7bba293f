"""The slim scoring tier that ships in the Docker image: ONNX models, onnxruntime, no torch.

It serves the champion and, when present, the challenger exported by
``python -m level4_fraud export-onnx`` into one folder (``FRAUD_MODEL_DIR``, default
``/srv/model``): ``champion.onnx``, optional ``challenger.onnx`` and ``model.json`` (feature order,
decision threshold, versions). A request carries the customer and the transaction's feature row
(in the full system part 1's service reads those features from the Feast online store); the
customer's stable hash decides which model answers
(:class:`~level4_fraud.serving.traffic.TrafficSplit`),
so each customer always meets the same model and the A/B test's arms stay clean.

Endpoints: ``POST /score``, ``GET /health``, ``GET /metrics`` (Prometheus). Settings come from the
environment: ``FRAUD_MODEL_DIR``, ``FRAUD_CHALLENGER_SHARE``, ``FRAUD_AB_SALT``.
Run: ``uvicorn --factory level4_fraud.serving.onnx_service:app_from_env --port 8080``.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field

from level4_fraud.serving.traffic import TrafficSplit


class ScoreRequest(BaseModel):
    """One transaction: who pays, and its feature row by name."""

    customer_id: int = Field(ge=0)
    features: dict[str, float]


class ScoreResponse(BaseModel):
    """The fraud probability, the decision and which arm answered."""

    customer_id: int
    fraud_probability: float
    decision: str
    arm: str
    model_version: str


@dataclass
class LoadedModel:
    """An onnxruntime session and the name of its version."""

    session: Any
    version: str

    def score(self, row: np.ndarray) -> float:
        logit = self.session.run(None, {"features": row})[0].reshape(-1)[0]
        return float(1.0 / (1.0 + np.exp(-logit)))


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


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
    models = {"champion": LoadedModel(_session(champion_path), meta.get("champion", "champion"))}
    if (model_dir / "challenger.onnx").is_file():
        models["challenger"] = LoadedModel(
            _session(model_dir / "challenger.onnx"), meta.get("challenger", "challenger")
        )
    return models, meta


def create_app(model_dir: Path, challenger_share: float = 0.0, salt: str = "ab-1") -> FastAPI:
    """The FastAPI app; models load at start-up (the lifespan), so a bad folder fails fast."""
    registry = CollectorRegistry()
    requests = Counter(
        "fraud_scores", "Transactions scored", ["arm", "decision"], registry=registry
    )
    latency = Histogram(
        "fraud_score_seconds",
        "Time to score one transaction",
        buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.05),
        registry=registry,
    )
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        state["models"], state["meta"] = load_models(model_dir)
        share = challenger_share if "challenger" in state["models"] else 0.0
        state["split"] = TrafficSplit(share, salt)
        yield

    app = FastAPI(title="Level 4 fraud scoring (ONNX)", lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "models": {arm: m.version for arm, m in state["models"].items()},
            "challenger_share": state["split"].challenger_share,
        }

    @app.post("/score", response_model=ScoreResponse)
    def score(request: ScoreRequest) -> ScoreResponse:
        start = time.perf_counter()
        names: list[str] = state["meta"]["features"]
        missing = [n for n in names if n not in request.features]
        unknown = sorted(set(request.features) - set(names))
        if missing or unknown:
            raise HTTPException(
                422,
                f"feature row must have exactly the model's features; missing {missing}, "
                f"unknown {unknown}",
            )
        if request.features.get("tx_amount", 0.0) < 0:
            raise HTTPException(422, "tx_amount must be >= 0")
        row = np.array([[request.features[n] for n in names]], dtype=np.float32)
        arm = state["split"].arm(request.customer_id)
        model = state["models"][arm]
        probability = model.score(row)
        decision = "block" if probability >= state["meta"]["threshold"] else "allow"
        requests.labels(arm, decision).inc()
        latency.observe(time.perf_counter() - start)
        return ScoreResponse(
            customer_id=request.customer_id,
            fraud_probability=probability,
            decision=decision,
            arm=arm,
            model_version=model.version,
        )

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """The app configured by ``FRAUD_MODEL_DIR``, ``FRAUD_CHALLENGER_SHARE``, ``FRAUD_AB_SALT``."""
    return create_app(
        Path(os.environ.get("FRAUD_MODEL_DIR", "/srv/model")),
        float(os.environ.get("FRAUD_CHALLENGER_SHARE", "0")),
        os.environ.get("FRAUD_AB_SALT", "ab-1"),
    )
