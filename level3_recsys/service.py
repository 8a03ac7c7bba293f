"""The service's state and degradation logic (the routers in :mod:`level3_recsys.api` call it).

A user's list: the nightly batch's list when fresh and made by the served model, else computed
live; unknown user → popular items (``cold_start``). The store and the model each sit behind a
:class:`CircuitBreaker`. When the store fails (or is slow) the answer is the popularity fallback
rather than a live computation for everyone — the store exists to shield the model from the full
request load. When the live model fails or is slow, the answer is the popularity fallback too.
Fallbacks are flagged in the response and counted in ``recsys_fallback_total``; the store going
down and coming back, and each breaker's change of state, write one log line each with the
reason. The model not served scores the same requests in shadow (a random
``serve.shadow_sample_rate`` share of them, 10% by default). Every list gets an impression
(:mod:`impressions`) owned by the caller's address.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import HTTPException

from level3_recsys.bundle import BundleError, ItemScorer, UserHistories
from level3_recsys.impressions import ClickNotShown, ImpressionLog, UnknownImpression
from level3_recsys.monitoring import BreakerOpen, CircuitBreaker, DriftMonitor, Metrics, Shadow
from level3_recsys.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    RecommendationResponse,
    RecommendedItem,
    Source,
)
from level3_recsys.settings import Level3Settings
from level3_recsys.store import RecommendationStore, open_store
from ml_common.logs import get_logger

log = get_logger(__name__)


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
