"""``/admin/*`` (``X-Admin-Token``): reload the bundle, switch whose lists users see, features."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from level3_recsys.api.dependencies import ReadyService, Service, require_admin
from level3_recsys.api.errors import errors
from level3_recsys.bundle import BundleError
from level3_recsys.schemas import AdminResponse, FeaturesResponse, SwitchRequest
from level3_recsys.service import RecommenderService

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


def admin_state(service: RecommenderService, changed: bool, detail: str) -> AdminResponse:
    return AdminResponse(
        champion_version=service.champion.version,
        challenger_version=service.challenger.version if service.challenger else None,
        serving=service.serving,
        served_version=service.served.version,
        changed=changed,
        detail=detail,
    )


@router.post("/reload", response_model=AdminResponse, responses=errors(401, 409, 422))
def reload(service: Service) -> AdminResponse:
    """Load the serving bundle again (after a batch or a promotion); users see its champion."""
    try:
        service.load()
    except (BundleError, OSError, ValueError, KeyError) as exc:
        raise HTTPException(409, f"reload failed, previous models kept: {exc}") from exc
    return admin_state(service, True, "reloaded from the serving bundle; serving the champion")


@router.post(
    "/switch", response_model=AdminResponse, responses=errors(400, 401, 409, 413, 422, 503)
)
def switch(body: SwitchRequest, service: ReadyService) -> AdminResponse:
    """Users see the bundle's champion or challenger (idempotent); the other runs in shadow.

    This changes what this process serves, not the registry aliases (``promote`` does that).
    """
    changed, detail = service.switch(body.serve)
    return admin_state(service, changed, detail)


@router.get("/features", response_model=FeaturesResponse, responses=errors(401, 422, 503))
def features(service: ReadyService) -> FeaturesResponse:
    """The live feature windows and their PSI against the training reference."""
    return FeaturesResponse(features=service.drift.snapshot(), psi=service.update_drift_metrics())
