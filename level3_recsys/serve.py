"""Stage 6 — serve: the real-time FastAPI service.

Endpoints (routers by resource):

- ``GET  /recommendations/{user_id}?k=`` a user's list: the nightly batch's list when fresh and made
  by the serving champion, else computed live; unknown user → popular items, ``cold_start: true``.
- ``POST /recommendations/session`` an anonymous session's list from its recent item ids.
- ``POST /feedback`` impressions and clicks → CTR per model version.
- ``GET  /health`` (alive), ``GET /ready`` (model loaded), ``GET /model`` (what is served),
  ``GET /metrics`` (Prometheus).
- ``POST /admin/reload``, ``POST /admin/switch``, ``GET /admin/features`` need ``X-Admin-Token``.

Degradation: the store and the model each sit behind a :class:`CircuitBreaker`. When the store
fails (or is slow) the answer is the popularity fallback rather than a live computation for
everyone — the store exists to shield the model from the full request load. When the live model
fails or is slow, the answer is the popularity fallback too. Fallbacks are flagged in the response
and counted in ``recsys_fallback_total``. The challenger scores the same requests in shadow (a
random ``serve.shadow_sample_rate`` share of them, 10% by default).
"""

import hmac
import json
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from level3_recsys.bundle import BundleError, ItemScorer, UserHistories, default_serving_dir
from level3_recsys.monitoring import BreakerOpen, CircuitBreaker, DriftMonitor, Metrics, Shadow
from level3_recsys.settings import Level3Settings
from level3_recsys.store import RecommendationStore, open_store

MAX_ID = 2**31 - 1
Source = Literal["precomputed", "live", "fallback", "cold_start", "session"]


# ---- request and response models ------------------------------------------------------------
class RecommendedItem(BaseModel):
    item_id: int
    title: str | None = None


class RecommendationResponse(BaseModel):
    user_id: int | None = Field(None, description="None for an anonymous session")
    items: list[RecommendedItem]
    k: int
    model_version: str = Field(description="version of the model that ranked the list")
    source: Source
    fallback: bool = Field(description="True when the popularity fallback answered")
    fallback_reason: str | None = None
    cold_start: bool = Field(description="True when nothing was known about the requester")


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_ids: list[Annotated[int, Field(ge=0, le=MAX_ID)]] = Field(
        ..., max_length=200, description="the session's recent item ids, oldest first"
    )
    k: int = Field(10, ge=1, le=100)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int | None = Field(None, ge=0, le=MAX_ID)
    model_version: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    impressions: list[Annotated[int, Field(ge=0, le=MAX_ID)]] = Field(
        default_factory=list, max_length=200
    )
    clicks: list[Annotated[int, Field(ge=0, le=MAX_ID)]] = Field(
        default_factory=list, max_length=200
    )


class FeedbackResponse(BaseModel):
    model_version: str
    impressions: int
    clicks: int
    ctr: float


class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    ready: bool
    champion_version: str | None
    store: str
    breakers: dict[str, str]


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    half_life: float
    items: int


class ModelsResponse(BaseModel):
    champion: ModelInfo
    challenger: ModelInfo | None
    users: int
    store_backend: str
    shadow: bool
    ctr_by_version: dict[str, float]
    shadow_mean_overlap: float | None


class SwitchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    serve: Literal["champion", "challenger"] = Field(
        description="which alias's model users should see from now on"
    )


class AdminResponse(BaseModel):
    champion_version: str
    challenger_version: str | None
    detail: str


class FeaturesResponse(BaseModel):
    features: dict[str, list[float]]
    psi: dict[str, float]


# ---- the service ------------------------------------------------------------------------------
class RecommenderService:
    """State of one running service: models, store, breakers, shadow, drift, metrics."""

    def __init__(
        self,
        settings: Level3Settings,
        bundle_dir: Path,
        store: RecommendationStore | None = None,
    ) -> None:
        self.settings, self.bundle_dir = settings, bundle_dir
        self.metrics = Metrics()
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
            settings.store, bundle_dir / "store.sqlite", read_only=True
        )
        self.shadow = Shadow(self.metrics, sample_rate=s.shadow_sample_rate)
        self.feedback: dict[str, list[int]] = {}
        self.load()

    def _breaker_changed(self, name: str, state: int) -> None:
        self.metrics.breaker_state.labels(name).set(state)

    def load(self) -> None:
        """(Re)load champion, challenger, histories and drift reference from the bundle."""
        champion = ItemScorer.load(self.bundle_dir / "champion")
        challenger = None
        if (self.bundle_dir / "challenger" / "model.json").is_file():
            challenger = ItemScorer.load(self.bundle_dir / "challenger")
        histories = UserHistories.load(self.bundle_dir / "champion" / "users.npz")
        reference = json.loads((self.bundle_dir / "champion" / "reference.json").read_text())
        self.champion, self.challenger, self.histories = champion, challenger, histories
        self.drift = DriftMonitor(reference, self.settings.serve.drift_window)
        self._publish_models()

    def _publish_models(self) -> None:
        self.metrics.model_info.clear()
        for model in (self.champion, self.challenger):
            if model is not None:
                self.metrics.model_info.labels(model.alias, model.name, model.version).set(1)
                self.metrics.impressions.labels(model.version)
                self.metrics.clicks.labels(model.version)
                self.metrics.ctr.labels(model.version)

    def switch(self, serve: str) -> None:
        """Serve the challenger to users (and shadow the former champion), or swap back."""
        if serve == "challenger":
            if self.challenger is None:
                raise HTTPException(409, "no challenger loaded: nothing to switch to")
            self.champion, self.challenger = self.challenger, self.champion
            self.champion.alias, self.challenger.alias = "champion", "challenger"
            self._publish_models()

    # -- recommendation paths --
    def _items(self, item_ids: list[int]) -> list[RecommendedItem]:
        titles = self.champion.titles or {}
        return [RecommendedItem(item_id=i, title=titles.get(i)) for i in item_ids]

    def _fallback(
        self,
        reason: str,
        k: int,
        history: np.ndarray | None,
        user_id: int | None,
        source: Source = "fallback",
    ) -> RecommendationResponse:
        if source == "fallback":
            self.metrics.fallbacks.labels(reason).inc()
        self.metrics.recommendations.labels(source).inc()
        columns = self.champion.popular(k, history)
        return RecommendationResponse(
            user_id=user_id,
            items=self._items(self.champion.to_ids(columns)),
            k=k,
            model_version=f"popularity-{self.champion.version}",
            source=source,
            fallback=source == "fallback",
            fallback_reason=reason if source == "fallback" else None,
            cold_start=source == "cold_start",
        )

    def _live(self, history: np.ndarray, k: int) -> np.ndarray:
        return self.model_breaker.call(lambda: self.champion.score_items(history, k))

    def recommend_user(self, user_id: int, k: int) -> RecommendationResponse:
        history = self.histories.get(user_id)
        if history is None:
            return self._fallback("unknown_user", k, None, user_id, source="cold_start")
        self.drift.observe("user_activity", len(history))
        try:
            stored = self.store_breaker.call(lambda: self.store.get(user_id))
        except BreakerOpen:
            return self._fallback("breaker_open", k, history, user_id)
        except Exception:
            return self._fallback("store", k, history, user_id)
        fresh = (
            stored is not None
            and stored.model_version == self.champion.version
            and stored.age_hours() <= self.settings.store.max_age_hours
            and len(stored.items) >= k
        )
        if fresh:
            source: Source = "precomputed"
            items = stored.items[:k]
        else:
            try:
                columns = self._live(history, k)
            except BreakerOpen:
                return self._fallback("breaker_open", k, history, user_id)
            except Exception:
                return self._fallback("model", k, history, user_id)
            source, items = "live", self.champion.to_ids(columns)
        self.metrics.recommendations.labels(source).inc()
        self._shadow(history, items, k)
        return RecommendationResponse(
            user_id=user_id,
            items=self._items(items),
            k=k,
            model_version=self.champion.version,
            source=source,
            fallback=False,
            cold_start=False,
        )

    def recommend_session(self, item_ids: list[int], k: int) -> RecommendationResponse:
        self.drift.observe("session_length", len(item_ids))
        known = self.champion.columns(item_ids)
        for popularity in self.champion.popularity[known]:
            self.drift.observe("item_popularity", popularity)
        history = known[::-1]  # latest first
        if len(history) == 0:
            return self._fallback("unknown_items", k, None, None, source="cold_start")
        try:
            columns = self._live(history, k)
        except BreakerOpen:
            return self._fallback("breaker_open", k, history, None)
        except Exception:
            return self._fallback("model", k, history, None)
        self.metrics.recommendations.labels("session").inc()
        items = self.champion.to_ids(columns)
        self._shadow(history, items, k)
        return RecommendationResponse(
            user_id=None,
            items=self._items(items),
            k=k,
            model_version=self.champion.version,
            source="session",
            fallback=False,
            cold_start=False,
        )

    def _shadow(self, history: np.ndarray, champion_items: list[int], k: int) -> None:
        challenger = self.challenger
        if challenger is None or not self.settings.serve.shadow or not self.shadow.sampled():
            return
        self.shadow.submit(
            lambda: challenger.to_ids(challenger.score_items(history, k)), champion_items
        )

    def record_feedback(self, request: FeedbackRequest) -> FeedbackResponse:
        counts = self.feedback.setdefault(request.model_version, [0, 0])
        counts[0] += len(request.impressions)
        counts[1] += len(request.clicks)
        version = request.model_version
        self.metrics.impressions.labels(version).inc(len(request.impressions))
        self.metrics.clicks.labels(version).inc(len(request.clicks))
        ctr = counts[1] / counts[0] if counts[0] else 0.0
        self.metrics.ctr.labels(version).set(ctr)
        for popularity in self.champion.popularity[self.champion.columns(request.clicks)]:
            self.drift.observe("item_popularity", popularity)
        return FeedbackResponse(
            model_version=version, impressions=counts[0], clicks=counts[1], ctr=ctr
        )

    def update_drift_metrics(self) -> dict[str, float]:
        scores = self.drift.scores()
        for name, value in scores.items():
            self.metrics.feature_psi.labels(name).set(value)
        self.metrics.drift_score.set(max(scores.values(), default=0.0))
        return scores

    def close(self) -> None:
        self.shadow.close()
        self.store.close()


# ---- latency and status metrics as pure ASGI middleware (cheaper than BaseHTTPMiddleware) ----
class MetricsMiddleware:
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
            endpoint = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            self.metrics.latency.labels(endpoint, method).observe(time.perf_counter() - start)
            self.metrics.requests.labels(endpoint, method, str(status["code"])).inc()


def create_app(
    settings: Level3Settings,
    bundle_dir: Path | None = None,
    store: RecommendationStore | None = None,
) -> FastAPI:
    """Build the app; the bundle is read at start-up (lifespan) and on ``/admin/reload``."""
    if bundle_dir is None:
        configured = settings.serve.bundle_dir
        bundle_dir = Path(configured) if configured else default_serving_dir()
    service = RecommenderService(settings, bundle_dir, store)
    max_k = settings.serve.max_k

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()

    app = FastAPI(
        title="Level 3 recommender",
        version="1.0",
        lifespan=lifespan,
        description="MovieLens recommendations: precomputed, live, shadowed, monitored.",
    )
    app.state.service = service

    def admin(x_admin_token: Annotated[str | None, Header()] = None) -> None:
        expected = settings.serve.admin_token
        if not x_admin_token or not hmac.compare_digest(x_admin_token, expected):
            raise HTTPException(401, "missing or wrong X-Admin-Token header")

    recs = APIRouter(prefix="/recommendations", tags=["recommendations"])

    @recs.get("/{user_id}", response_model=RecommendationResponse)
    async def recommend_user(
        user_id: Annotated[int, PathParam(ge=0, le=MAX_ID)],
        k: Annotated[int, Query(ge=1, le=max_k)] = 10,
    ) -> RecommendationResponse:
        return service.recommend_user(user_id, k)

    @recs.post("/session", response_model=RecommendationResponse)
    async def recommend_session(body: SessionRequest) -> RecommendationResponse:
        if body.k > max_k:
            raise HTTPException(422, f"k must be <= {max_k}")
        return service.recommend_session(body.item_ids, body.k)

    feedback = APIRouter(tags=["feedback"])

    @feedback.post("/feedback", response_model=FeedbackResponse)
    async def post_feedback(body: FeedbackRequest) -> FeedbackResponse:
        return service.record_feedback(body)

    ops = APIRouter(tags=["operations"])

    @ops.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        return HealthResponse(status="ok")

    @ops.get("/ready", response_model=ReadyResponse)
    async def ready() -> ReadyResponse:
        try:
            store_state = "ok" if service.store.ping() else "down"
        except Exception:
            store_state = "down"
        return ReadyResponse(
            ready=service.champion is not None,
            champion_version=service.champion.version if service.champion else None,
            store=store_state,
            breakers={
                "store": service.store_breaker.state_name,
                "model": service.model_breaker.state_name,
            },
        )

    def info(model: ItemScorer) -> ModelInfo:
        return ModelInfo(
            name=model.name,
            version=model.version,
            alias=model.alias,
            half_life=model.half_life,
            items=len(model.item_ids),
        )

    @ops.get("/model", response_model=ModelsResponse)
    async def model_info() -> ModelsResponse:
        overlaps = list(service.shadow.overlaps)
        return ModelsResponse(
            champion=info(service.champion),
            challenger=info(service.challenger) if service.challenger else None,
            users=len(service.histories),
            store_backend=settings.store.backend,
            shadow=settings.serve.shadow and service.challenger is not None,
            ctr_by_version={v: (c[1] / c[0] if c[0] else 0.0) for v, c in service.feedback.items()},
            shadow_mean_overlap=float(np.mean(overlaps)) if overlaps else None,
        )

    @ops.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        service.update_drift_metrics()
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    admin_router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(admin)])

    def admin_state(detail: str) -> AdminResponse:
        return AdminResponse(
            champion_version=service.champion.version,
            challenger_version=service.challenger.version if service.challenger else None,
            detail=detail,
        )

    @admin_router.post("/reload", response_model=AdminResponse)
    async def reload() -> AdminResponse:
        try:
            service.load()
        except (BundleError, OSError, ValueError) as exc:
            raise HTTPException(409, f"reload failed, previous models kept: {exc}") from exc
        return admin_state("reloaded from the serving bundle")

    @admin_router.post("/switch", response_model=AdminResponse)
    async def switch(body: SwitchRequest) -> AdminResponse:
        service.switch(body.serve)
        return admin_state(f"now serving the former {body.serve}")

    @admin_router.get("/features", response_model=FeaturesResponse)
    async def features() -> FeaturesResponse:
        return FeaturesResponse(
            features=service.drift.snapshot(), psi=service.update_drift_metrics()
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
            for err in exc.errors()
        ]
        return JSONResponse(
            status_code=422,
            content={
                "detail": "invalid request: " + "; ".join(problems),
                "errors": [
                    {k: v for k, v in err.items() if k in ("loc", "msg", "type")}
                    for err in exc.errors()
                ],
            },
        )

    for router in (recs, feedback, ops, admin_router):
        app.include_router(router)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory level3_recsys.serve:app_from_env`` (reads config + env)."""
    from level3_recsys.settings import load

    config = os.environ.get("LEVEL3_CONFIG")
    return create_app(load(config))
