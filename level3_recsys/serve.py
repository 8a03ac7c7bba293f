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

import asyncio
import hmac
import json
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.convertors import Convertor, register_url_convertor

from level3_recsys.bundle import BundleError, ItemScorer, UserHistories, default_serving_dir
from level3_recsys.impressions import ClickNotShown, ImpressionLog, UnknownImpression
from level3_recsys.monitoring import BreakerOpen, CircuitBreaker, DriftMonitor, Metrics, Shadow
from level3_recsys.schemas import (
    MAX_ID,
    AdminResponse,
    ErrorResponse,
    FeaturesResponse,
    FeedbackRequest,
    FeedbackResponse,
    HealthResponse,
    HistoryResponse,
    ModelInfo,
    ModelsResponse,
    ReadyResponse,
    RecommendationResponse,
    RecommendedItem,
    SessionRequest,
    Source,
    SwitchRequest,
    UsersResponse,
    ValidationProblem,
)
from level3_recsys.settings import DEFAULT_ADMIN_TOKEN, Level3Settings
from level3_recsys.store import RecommendationStore, open_store
from ml_common.config import ConfigError
from ml_common.logs import get_logger

log = get_logger(__name__)
WEB_DIR = Path(__file__).with_name("web")


class BoundedIdConvertor(Convertor):
    """Path convertor ``{name:id}``: digits only, their count bounded before ``int()``.

    Python refuses ``int()`` of more than 4,300 digits (a ``ValueError`` inside Starlette's own
    ``int`` convertor: a 500). An id with more significant digits than ``MAX_ID`` is out of range
    whatever they are, so it converts to ``MAX_ID + 1``, which the parameter's ``le=MAX_ID``
    bound answers with a 422; nothing longer than 10 digits is ever parsed.
    """

    regex = "[0-9]+"
    max_digits = len(str(MAX_ID))

    def convert(self, value: str) -> int:
        digits = value.lstrip("0") or "0"
        return MAX_ID + 1 if len(digits) > self.max_digits else int(digits)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", BoundedIdConvertor())


# ---- the service ------------------------------------------------------------------------------
class RecommenderService:
    """State of one running service: models, store, breakers, shadow, drift, impressions, metrics.

    ``champion``/``challenger`` are the bundle's models under their registry aliases; ``serving``
    says whose lists users see (``/admin/switch``), the other one is scored in shadow.
    """

    def __init__(
        self,
        settings: Level3Settings,
        bundle_dir: Path,
        store: RecommendationStore | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings, self.bundle_dir = settings, bundle_dir
        self.metrics = metrics or Metrics()
        s = settings.serve
        self.store_breaker = CircuitBreaker(
            "store",
            s.breaker_failures,
            s.breaker_reset_seconds,
            s.store_timeout_ms / 1000,
            self._breaker_changed,
        )
        self.model_breaker = CircuitBreaker(
            "model",
            s.breaker_failures,
            s.breaker_reset_seconds,
            s.model_timeout_ms / 1000,
            self._breaker_changed,
        )
        self.store = store or open_store(
            settings.store,
            bundle_dir / "store.sqlite",
            read_only=True,
            timeout_s=s.store_timeout_ms / 1000,
        )
        self.shadow = Shadow(self.metrics, sample_rate=s.shadow_sample_rate)
        self.impressions = ImpressionLog(
            s.impression_budget_bytes, s.impression_ttl_s, s.impression_client_quota_bytes
        )
        # items shown / clicked per served model version: keys come only from served versions
        self.totals: dict[str, list[int]] = {}
        self._totals_lock = threading.Lock()
        self.champion: ItemScorer | None = None
        self.challenger: ItemScorer | None = None
        self.serving: Literal["champion", "challenger"] = "champion"
        self.load_error: str | None = "the bundle has not been loaded yet"
        self.store_down_since: float | None = None
        self._store_state_lock = threading.Lock()

    def note_store(self, problem: str | None) -> None:
        """Log the store's transitions only: one line when it goes down (with the reason) and
        one when it answers again (with how long it was down); nothing per request."""
        with self._store_state_lock:
            now = time.monotonic()
            if problem is not None and self.store_down_since is None:
                self.store_down_since = now
                log.warning("store down: %s", problem)
            elif problem is None and self.store_down_since is not None:
                log.warning("store up again after %.1f s down", now - self.store_down_since)
                self.store_down_since = None

    def _breaker_changed(self, name: str, state: int) -> None:
        self.metrics.breaker_state.labels(name).set(state)

    def load(self) -> None:
        """(Re)load champion, challenger, histories and drift reference from the bundle.

        On failure the models already loaded (if any) stay and the error is raised.
        """
        champion = ItemScorer.load(self.bundle_dir / "champion")
        challenger = None
        if (self.bundle_dir / "challenger" / "model.json").is_file():
            challenger = ItemScorer.load(self.bundle_dir / "challenger")
        histories = UserHistories.load(self.bundle_dir / "champion" / "users.npz")
        reference = json.loads((self.bundle_dir / "champion" / "reference.json").read_text())
        self.champion, self.challenger, self.histories = champion, challenger, histories
        self.serving = "champion"
        self.drift = DriftMonitor(reference, self.settings.serve.drift_window)
        self.load_error = None
        self._publish_models()

    def try_load(self) -> None:
        """Load at start-up; a broken bundle leaves the service up but not ready (``/ready``)."""
        try:
            self.load()
        except (BundleError, OSError, ValueError, KeyError) as exc:
            self.load_error = f"champion cannot be loaded: {exc}"

    @property
    def served(self) -> ItemScorer:
        model = self.challenger if self.serving == "challenger" else self.champion
        assert model is not None  # guarded by the ready dependency
        return model

    @property
    def shadowed(self) -> ItemScorer | None:
        return self.champion if self.serving == "challenger" else self.challenger

    def _publish_models(self) -> None:
        self.metrics.model_info.clear()
        for model in (self.champion, self.challenger):
            if model is not None:
                self.metrics.model_info.labels(model.alias, model.name, model.version).set(1)
                for version in (model.version, popularity_version(model)):
                    self.metrics.impressions.labels(version)
                    self.metrics.clicks.labels(version)
                    self.metrics.ctr.labels(version)

    def switch(self, serve: Literal["champion", "challenger"]) -> tuple[bool, str]:
        """Serve the bundle's ``serve`` model to users (idempotent); (changed, what happened)."""
        if serve == "challenger" and self.challenger is None:
            raise HTTPException(409, "no challenger loaded: nothing to switch to")
        if serve == self.serving:
            return False, f"already serving the {serve} (v{self.served.version}): nothing changed"
        self.serving = serve
        shadow = self.shadowed
        shadow_note = f"; v{shadow.version} scored in shadow" if shadow else ""
        return True, f"now serving the {serve} (v{self.served.version}){shadow_note}"

    # -- recommendation paths --
    def _response(
        self,
        user_id: int | None,
        items: list[int],
        k: int,
        version: str,
        source: Source,
        reason: str | None = None,
        client: str = "anonymous",
    ) -> RecommendationResponse:
        titles = self.served.titles or {}
        impression_id = self.impressions.issue(version, items, client)
        with self._totals_lock:
            shown = self.totals.setdefault(version, [0, 0])
            shown[0] += len(items)
            ctr = shown[1] / shown[0] if shown[0] else 0.0
        self.metrics.impressions.labels(version).inc(len(items))
        self.metrics.ctr.labels(version).set(ctr)
        return RecommendationResponse(
            user_id=user_id,
            items=[RecommendedItem(item_id=i, title=titles.get(i)) for i in items],
            k=k,
            model_version=version,
            impression_id=impression_id,
            source=source,
            fallback=source == "fallback",
            fallback_reason=reason,
            cold_start=source == "cold_start",
        )

    def _fallback(
        self,
        reason: str,
        k: int,
        history: np.ndarray | None,
        user_id: int | None,
        source: Source = "fallback",
        client: str = "anonymous",
    ) -> RecommendationResponse:
        if source == "fallback":
            self.metrics.fallbacks.labels(reason).inc()
        self.metrics.recommendations.labels(source).inc()
        model = self.served
        items = model.to_ids(model.popular(k, history))
        return self._response(
            user_id,
            items,
            k,
            popularity_version(model),
            source,
            reason if source == "fallback" else None,
            client,
        )

    def _live(self, model: ItemScorer, history: np.ndarray, k: int) -> np.ndarray:
        return self.model_breaker.call(lambda: model.score_items(history, k))

    def recommend_user(
        self, user_id: int, k: int, client: str = "anonymous"
    ) -> RecommendationResponse:
        """A user's list; ``client`` (the caller's address) owns the impression it issues."""
        model = self.served
        history = self.histories.get(user_id)
        if history is None:
            return self._fallback(
                "unknown_user", k, None, user_id, source="cold_start", client=client
            )
        self.drift.observe("user_activity", len(history))
        try:
            stored = self.store_breaker.call(lambda: self.store.get(user_id))
        except BreakerOpen:
            return self._fallback("breaker_open", k, history, user_id, client=client)
        except Exception as exc:
            self.note_store(f"{type(exc).__name__}: {str(exc)[:200]}")
            return self._fallback("store", k, history, user_id, client=client)
        if self.store_down_since is not None:
            self.note_store(None)
        fresh = (
            stored is not None
            and stored.model_version == model.version
            and stored.age_hours() <= self.settings.store.max_age_hours
            and len(stored.items) >= k
        )
        if fresh:
            source: Source = "precomputed"
            items = stored.items[:k]
        else:
            try:
                columns = self._live(model, history, k)
            except BreakerOpen:
                return self._fallback("breaker_open", k, history, user_id, client=client)
            except Exception:
                return self._fallback("model", k, history, user_id, client=client)
            source, items = "live", model.to_ids(columns)
        self.metrics.recommendations.labels(source).inc()
        self._shadow(history, items, k)
        return self._response(user_id, items, k, model.version, source, client=client)

    def recommend_session(
        self, item_ids: list[int], k: int, client: str = "anonymous"
    ) -> RecommendationResponse:
        """An anonymous session's list from its recent item ids (latest last)."""
        model = self.served
        self.drift.observe("session_length", len(item_ids))
        known = model.columns(item_ids)
        for popularity in model.popularity[known]:
            self.drift.observe("item_popularity", popularity)
        history = known[::-1]  # latest first
        if len(history) == 0:
            return self._fallback(
                "unknown_items", k, None, None, source="cold_start", client=client
            )
        try:
            columns = self._live(model, history, k)
        except BreakerOpen:
            return self._fallback("breaker_open", k, history, None, client=client)
        except Exception:
            return self._fallback("model", k, history, None, client=client)
        self.metrics.recommendations.labels("session").inc()
        items = model.to_ids(columns)
        self._shadow(history, items, k)
        return self._response(None, items, k, model.version, "session", client=client)

    def _shadow(self, history: np.ndarray, served_items: list[int], k: int) -> None:
        shadow = self.shadowed
        if shadow is None or not self.settings.serve.shadow or not self.shadow.sampled():
            return
        self.shadow.submit(lambda: shadow.to_ids(shadow.score_items(history, k)), served_items)

    def record_feedback(self, request: FeedbackRequest) -> FeedbackResponse:
        """Clicks on one impression: 404 unknown/expired, 409 item not shown; each item once."""
        try:
            result = self.impressions.click(request.impression_id, request.clicks)
        except UnknownImpression as exc:
            raise HTTPException(404, str(exc)) from exc
        except ClickNotShown as exc:
            raise HTTPException(409, str(exc)) from exc
        version = result.model_version
        with self._totals_lock:
            counts = self.totals.setdefault(version, [0, 0])
            counts[1] += len(result.accepted)
            shown, clicked = counts
        ctr = clicked / shown if shown else 0.0
        self.metrics.clicks.labels(version).inc(len(result.accepted))
        self.metrics.ctr.labels(version).set(ctr)
        model = self.served
        for popularity in model.popularity[model.columns(result.accepted)]:
            self.drift.observe("item_popularity", popularity)
        return FeedbackResponse(
            impression_id=request.impression_id,
            model_version=version,
            accepted=len(result.accepted),
            duplicates=result.duplicates,
            impressions=shown,
            clicks=clicked,
            ctr=ctr,
        )

    def totals_snapshot(self) -> dict[str, tuple[int, int]]:
        """(items shown, clicks) per served version, copied under the lock."""
        with self._totals_lock:
            return {version: (c[0], c[1]) for version, c in self.totals.items()}

    def update_drift_metrics(self) -> dict[str, float]:
        scores = self.drift.scores()
        for name, value in scores.items():
            self.metrics.feature_psi.labels(name).set(value)
        self.metrics.drift_score.set(max(scores.values(), default=0.0))
        return scores

    def store_state(self) -> str | None:
        """None when the store answers a read, else why not (blocking: run it in a thread)."""
        try:
            self.store.ping()
        except Exception as exc:
            self.note_store(f"{type(exc).__name__}: {str(exc)[:200]}")
            return f"store down: {type(exc).__name__}: {exc}"
        if self.store_down_since is not None:
            self.note_store(None)
        return None

    def close(self) -> None:
        self.shadow.close()
        self.store.close()


def popularity_version(model: ItemScorer) -> str:
    """The version label of the popularity fallback built from ``model``'s catalogue."""
    return f"popularity-{model.version}"


# ---- ASGI middleware (pure ASGI: cheaper than BaseHTTPMiddleware) -----------------------------
class MetricsMiddleware:
    """Latency and status per route template (a bounded label set: unmatched paths share one)."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path_format", None) or "unmatched"
            method = scope.get("method", "GET")
            if method not in ("GET", "POST", "HEAD"):
                method = "other"
            self.metrics.latency.labels(endpoint, method).observe(time.perf_counter() - start)
            self.metrics.requests.labels(endpoint, method, str(status["code"])).inc()


class BodyLimitMiddleware:
    """413 for a body above ``max_bytes``: at once from ``Content-Length``, else while reading
    (chunked bodies), so a large body is never buffered whole nor parsed."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _detail(self) -> str:
        return f"request body larger than {self.max_bytes} bytes"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = False
                if too_large:
                    await JSONResponse({"detail": self._detail()}, status_code=413)(
                        scope, receive, send
                    )
                    return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException passes FastAPI's body reading unchanged (→ 413 answer).
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited_receive, send)


# ---- dependencies -----------------------------------------------------------------------------
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


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses, all with the :class:`ErrorResponse` body."""
    what = {
        400: "the body is not decodable (not UTF-8)",
        401: "missing or wrong admin token",
        404: "not found (unknown impression, or a path segment that is no id)",
        405: "method not allowed",
        409: "conflicts with the service's state",
        413: "request body too large",
        422: "invalid request",
        503: "not ready: no model loaded",
    }
    return {code: {"model": ErrorResponse, "description": what[code]} for code in codes}


# ---- routers ----------------------------------------------------------------------------------
recommendations = APIRouter(prefix="/recommendations", tags=["recommendations"])


# ``{user_id:id}`` only matches digits, so ``GET /recommendations/session`` reaches the session
# route (405, Allow: POST) instead of being read as a user id.
@recommendations.post(
    "/session", response_model=RecommendationResponse, responses=errors(400, 413, 422, 503)
)
def recommend_session(
    body: SessionRequest, service: ReadyService, request: Request
) -> RecommendationResponse:
    """A list for an anonymous session from its recent items."""
    max_k = service.settings.serve.max_k
    if body.k > max_k:
        raise HTTPException(422, f"k must be <= {max_k}")
    return service.recommend_session(body.item_ids, body.k, client_key(request))


# The OpenAPI link tells a stateful client (schemathesis's stateful phase) how to send feedback
# on a list it was served: the response's impression id and one of its items.
FEEDBACK_LINK = {
    "links": {
        "ClickFirstItem": {
            "operationId": "post_feedback",
            "requestBody": {
                "impression_id": "$response.body#/impression_id",
                "clicks": ["$response.body#/items/0/item_id"],
            },
        }
    }
}


@recommendations.get(
    "/{user_id:id}",
    response_model=RecommendationResponse,
    responses={200: FEEDBACK_LINK, **errors(404, 422, 503)},
)
def recommend_user(
    user_id: Annotated[int, PathParam(ge=0, le=MAX_ID)],
    service: ReadyService,
    request: Request,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> RecommendationResponse:
    """A known user's list (precomputed or live), or popular items for an unknown one."""
    max_k = service.settings.serve.max_k
    if k > max_k:
        raise HTTPException(422, f"k must be <= {max_k}")
    return service.recommend_user(user_id, k, client_key(request))


feedback = APIRouter(tags=["feedback"])


@feedback.post(
    "/feedback",
    operation_id="post_feedback",
    response_model=FeedbackResponse,
    responses=errors(400, 404, 409, 413, 422, 503),
)
def post_feedback(body: FeedbackRequest, service: ReadyService) -> FeedbackResponse:
    """Clicks on items of one served list (its ``impression_id``); CTR of the version that
    served it."""
    return service.record_feedback(body)


users = APIRouter(prefix="/users", tags=["users"])


@users.get("", response_model=UsersResponse, responses=errors(422, 503))
def list_users(
    service: ReadyService, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> UsersResponse:
    """The first ``limit`` known user ids (for the try-it page's picker)."""
    ids = service.histories.user_ids
    return UsersResponse(users=[int(u) for u in ids[:limit]], total=len(ids))


@users.get("/{user_id:id}/history", response_model=HistoryResponse, responses=errors(404, 422, 503))
def user_history(
    user_id: Annotated[int, PathParam(ge=0, le=MAX_ID)],
    service: ReadyService,
    n: Annotated[int, Query(ge=1, le=50)] = 10,
) -> HistoryResponse:
    """A user's latest training items with titles (empty for an unknown user)."""
    model = service.served
    history = service.histories.get(user_id)
    titles = model.titles or {}
    ids = [] if history is None else model.to_ids(history[:n])
    return HistoryResponse(
        user_id=user_id,
        known=history is not None,
        items=[RecommendedItem(item_id=i, title=titles.get(i)) for i in ids],
    )


ops = APIRouter(tags=["operations"])


@ops.get("/health", response_model=HealthResponse)
async def health() -> HealthResponse:
    """Alive: answers from the event loop, touching neither store nor model."""
    return HealthResponse(status="ok")


@ops.get("/ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
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


@ops.get("/model", response_model=ModelsResponse, responses=errors(503))
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


@ops.get("/metrics", include_in_schema=False)
def metrics(service: Service) -> Response:
    if service.champion is not None:
        service.update_drift_metrics()
    service.metrics.impression_memory.set(service.impressions.nbytes)
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


def admin_state(service: RecommenderService, changed: bool, detail: str) -> AdminResponse:
    return AdminResponse(
        champion_version=service.champion.version,
        challenger_version=service.challenger.version if service.challenger else None,
        serving=service.serving,
        served_version=service.served.version,
        changed=changed,
        detail=detail,
    )


@admin.post("/reload", response_model=AdminResponse, responses=errors(401, 409, 422))
def reload(service: Service) -> AdminResponse:
    """Load the serving bundle again (after a batch or a promotion); users see its champion."""
    try:
        service.load()
    except (BundleError, OSError, ValueError, KeyError) as exc:
        raise HTTPException(409, f"reload failed, previous models kept: {exc}") from exc
    return admin_state(service, True, "reloaded from the serving bundle; serving the champion")


@admin.post("/switch", response_model=AdminResponse, responses=errors(400, 401, 409, 413, 422, 503))
def switch(body: SwitchRequest, service: ReadyService) -> AdminResponse:
    """Users see the bundle's champion or challenger (idempotent); the other runs in shadow.

    This changes what this process serves, not the registry aliases (``promote`` does that).
    """
    changed, detail = service.switch(body.serve)
    return admin_state(service, changed, detail)


@admin.get("/features", response_model=FeaturesResponse, responses=errors(401, 422, 503))
def features(service: ReadyService) -> FeaturesResponse:
    """The live feature windows and their PSI against the training reference."""
    return FeaturesResponse(features=service.drift.snapshot(), psi=service.update_drift_metrics())


page = APIRouter(include_in_schema=False)


@page.get("/")
async def index() -> FileResponse:
    """The try-it page (plain HTML + JS shipped in the package; no build step, no CDN)."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html")


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable line plus the field errors (the :class:`ErrorResponse` shape)."""
    problems = [
        ValidationProblem(
            loc=[p if isinstance(p, int) else str(p) for p in err.get("loc", ())],
            msg=str(err.get("msg")),
            type=str(err.get("type")),
        )
        for err in exc.errors()
    ]
    line = "; ".join(f"{'.'.join(str(p) for p in e.loc)}: {e.msg}" for e in problems)
    body = ErrorResponse(detail=f"invalid request: {line}", errors=problems)
    return JSONResponse(status_code=422, content=body.model_dump())


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
    for router in (recommendations, feedback, users, ops, admin, page):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.serve.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory level3_recsys.serve:app_from_env`` (reads config + env)."""
    from level3_recsys.settings import load

    config = os.environ.get("LEVEL3_CONFIG")
    return create_app(load(config))
