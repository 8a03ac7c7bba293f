"""``/health``, ``/ready``, ``/model``, ``/metrics``: what operators and Prometheus read."""

from __future__ import annotations

import asyncio

import numpy as np
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from level3_recsys.api.dependencies import ReadyService, Service
from level3_recsys.api.errors import errors
from level3_recsys.bundle import ItemScorer
from level3_recsys.schemas import HealthResponse, ModelInfo, ModelsResponse, ReadyResponse

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthResponse)
async def health() -> HealthResponse:
    """Alive: answers from the event loop, touching neither store nor model."""
    return HealthResponse(status="ok")


@router.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
async def ready(service: Service) -> JSONResponse:
    """200 when the champion is loaded and the store answers; 503 with the reason otherwise."""
    timeout = max(service.settings.serve.store_timeout_ms / 1000 * 4, 0.2)
    try:
        store_problem = await asyncio.wait_for(run_in_threadpool(service.store_state), timeout)
    except TimeoutError:
        store_problem = f"store down: no answer within {timeout:.2f} s"
    reasons = [r for r in (service.load_error, store_problem) if r]
    body = ReadyResponse(
        ready=not reasons,
        reason="; ".join(reasons) or None,
        champion_version=service.champion.version if service.champion else None,
        store="ok" if store_problem is None else "down",
        breakers={
            "store": service.store_breaker.state_name,
            "model": service.model_breaker.state_name,
        },
    )
    return JSONResponse(body.model_dump(), status_code=503 if reasons else 200)


def model_info(model: ItemScorer) -> ModelInfo:
    return ModelInfo(
        name=model.name,
        version=model.version,
        alias=model.alias,
        half_life=model.half_life,
        items=len(model.item_ids),
    )


@router.get("/model", response_model=ModelsResponse, responses=errors(503))
def describe_models(service: ReadyService) -> ModelsResponse:
    """The loaded models, which one users see, CTR per served version, shadow overlap."""
    overlaps = list(service.shadow.overlaps)
    totals = service.totals_snapshot()
    return ModelsResponse(
        champion=model_info(service.champion),
        challenger=model_info(service.challenger) if service.challenger else None,
        serving=service.serving,
        served_version=service.served.version,
        users=len(service.histories),
        store_backend=service.settings.store.backend,
        shadow=service.settings.serve.shadow and service.shadowed is not None,
        ctr_by_version={v: (c / s if s else 0.0) for v, (s, c) in totals.items()},
        impressions_by_version={v: s for v, (s, _) in totals.items()},
        shadow_mean_overlap=float(np.mean(overlaps)) if overlaps else None,
    )


@router.get("/metrics", include_in_schema=False)
def metrics(service: Service) -> Response:
    if service.champion is not None:
        service.update_drift_metrics()
    service.metrics.impression_memory.set(service.impressions.nbytes)
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
