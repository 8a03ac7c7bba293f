"""FastAPI dependencies: the service, readiness, the admin token, who the caller is."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from level3_recsys.service import RecommenderService


def get_service(request: Request) -> RecommenderService:
    """The app's service (created by :func:`create_app`, loaded by the lifespan)."""
    return request.app.state.service


def ready_service(
    service: Annotated[RecommenderService, Depends(get_service)],
) -> RecommenderService:
    """The service, or 503 when no champion is loaded (nothing to recommend with)."""
    if service.champion is None:
        raise HTTPException(503, service.load_error or "no model loaded")
    return service


def require_admin(request: Request, x_admin_token: Annotated[str | None, Header()] = None) -> None:
    """401 unless ``X-Admin-Token`` equals the configured token (constant-time comparison)."""
    expected = request.app.state.settings.serve.admin_token
    if not x_admin_token or not hmac.compare_digest(x_admin_token.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong X-Admin-Token header")


def client_key(request: Request) -> str:
    """Who owns the impressions a request creates: the peer address (quota per address)."""
    return request.client.host if request.client else "anonymous"


Service = Annotated[RecommenderService, Depends(get_service)]
ReadyService = Annotated[RecommenderService, Depends(ready_service)]
