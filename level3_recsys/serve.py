"""Stage 6 — serve: the real-time FastAPI service.

Endpoints (one router per resource, the service reached through a FastAPI dependency):

- ``GET  /recommendations/{user_id}?k=`` a user's list: the nightly batch's list when fresh and made
  by the served model, else computed live; unknown user → popular items, ``cold_start: true``.
- ``POST /recommendations/session`` an anonymous session's list from its recent item ids.
- ``POST /feedback`` clicks on the items of one impression (each response's ``impression_id``).
- ``GET  /users``, ``GET /users/{user_id}/history`` what the try-it page (``GET /``) shows.
- ``GET  /health`` (alive), ``GET /ready`` (503 with the reason unless the champion is loaded and
  the store answers), ``GET /model`` (what is served), ``GET /metrics`` (Prometheus).
- ``POST /admin/reload``, ``POST /admin/switch``, ``GET /admin/features`` need ``X-Admin-Token``.

Files, in the order a request flows: :mod:`level3_recsys.api.middleware` → the router in
:mod:`level3_recsys.api` (path ids bounded by :mod:`level3_recsys.api.ids`, bodies by
:mod:`level3_recsys.schemas`, dependencies in :mod:`level3_recsys.api.dependencies`) →
:mod:`level3_recsys.service` (store, model, breakers, shadow, impressions). This module is the
app factory and its lifespan only.

Nothing blocks the event loop: handlers that touch the store or the model are sync functions,
which FastAPI runs in its thread pool; the store's own timeouts (sqlite busy timeout, Redis socket
timeout) equal ``serve.store_timeout_ms``, well under the latency budget. Request bodies above
``serve.max_body_bytes`` get 413 before anything parses them.

Degradation: the store and the model each sit behind a :class:`CircuitBreaker`. When the store
fails (or is slow) the answer is the popularity fallback rather than a live computation for
everyone — the store exists to shield the model from the full request load. When the live model
fails or is slow, the answer is the popularity fallback too. Fallbacks are flagged in the response
and counted in ``recsys_fallback_total``. The model not served scores the same requests in shadow
(a random ``serve.shadow_sample_rate`` share of them, 10% by default).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles

from level3_recsys.api import admin, feedback, ops, page, recommendations, users
from level3_recsys.api.errors import validation_error
from level3_recsys.api.middleware import MetricsMiddleware
from level3_recsys.api.page import WEB_DIR
from level3_recsys.bundle import default_serving_dir
from level3_recsys.service import RecommenderService
from level3_recsys.settings import DEFAULT_ADMIN_TOKEN, Level3Settings
from level3_recsys.store import RecommendationStore
from ml_common.body_limit import BodySizeLimit
from ml_common.config import ConfigError


def check_admin_token(settings: Level3Settings) -> None:
    """Refuse the public default (or an empty) token unless the dev setting allows it."""
    token = settings.serve.admin_token
    if not token.strip():
        raise ConfigError("serve.admin_token is empty: set LEVEL3_SERVE__ADMIN_TOKEN")
    if token == DEFAULT_ADMIN_TOKEN and not settings.serve.allow_default_admin_token:
        raise ConfigError(
            "serve.admin_token is the public default from config.yaml: set "
            "LEVEL3_SERVE__ADMIN_TOKEN to a secret (make level3 writes one to "
            "artifacts/level3/admin_token), or LEVEL3_SERVE__ALLOW_DEFAULT_ADMIN_TOKEN=true "
            "for a local dev run"
        )


def create_app(
    settings: Level3Settings,
    bundle_dir: Path | None = None,
    store: RecommendationStore | None = None,
) -> FastAPI:
    """Build the app. The bundle is loaded by the lifespan (start-up) and on ``/admin/reload``.

    Raises :class:`ConfigError` for the public default admin token (see :func:`check_admin_token`).
    """
    check_admin_token(settings)
    if bundle_dir is None:
        configured = settings.serve.bundle_dir
        bundle_dir = Path(configured) if configured else default_serving_dir()
    service = RecommenderService(settings, bundle_dir, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.try_load)
        yield
        service.close()

    app = FastAPI(
        title="Level 3 recommender",
        version="1.0",
        lifespan=lifespan,
        description="MovieLens recommendations: precomputed, live, shadowed, monitored.",
    )
    app.state.settings, app.state.service = settings, service
    app.add_exception_handler(RequestValidationError, validation_error)
    for module in (recommendations, feedback, users, ops, admin, page):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=settings.serve.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory level3_recsys.serve:app_from_env`` (reads config + env)."""
    from level3_recsys.settings import load

    config = os.environ.get("LEVEL3_CONFIG")
    return create_app(load(config))
