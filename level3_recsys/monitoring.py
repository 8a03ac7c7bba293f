"""Stage 7 — monitor: Prometheus metrics, the circuit breaker, shadow scoring, feature drift.

Everything here is used by the service (:mod:`level3_recsys.serve`) and needs only NumPy and
``prometheus_client``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ml_common.drift import psi
from ml_common.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class Metrics:
    """Every metric the service exports, in its own registry (one per app instance)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.latency = Histogram(
            "recsys_request_latency_seconds",
            "Request latency",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "recsys_requests_total",
            "Requests by endpoint and status code",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.recommendations = Counter(
            "recsys_recommendations_total",
            "Lists served, by where they came from",
            ["source"],
            registry=r,
        )
        self.fallbacks = Counter(
            "recsys_fallback_total", "Popularity fallbacks, by reason", ["reason"], registry=r
        )
        self.breaker_state = Gauge(
            "recsys_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            ["dependency"],
            registry=r,
        )
        self.impressions = Counter(
            "recsys_impressions_total", "Items shown (feedback)", ["model_version"], registry=r
        )
        self.clicks = Counter(
            "recsys_clicks_total", "Items clicked (feedback)", ["model_version"], registry=r
        )
        self.ctr = Gauge(
            "recsys_ctr", "Clicks / impressions per model version", ["model_version"], registry=r
        )
        self.shadow_latency = Histogram(
            "recsys_shadow_latency_seconds",
            "Challenger scoring latency (shadow)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.shadow_overlap = Histogram(
            "recsys_shadow_overlap",
            "|champion ∩ challenger| / k for the same request",
            buckets=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )
        self.shadow_skipped = Counter(
            "recsys_shadow_skipped_total",
            "Shadow requests dropped because the queue was full",
            registry=r,
        )
        self.shadow_sample_rate = Gauge(
            "recsys_shadow_sample_rate",
            "Share of requests the challenger scores in shadow",
            registry=r,
        )
        self.drift_score = Gauge(
            "recsys_drift_score", "Largest PSI of the live features vs training", registry=r
        )
        self.feature_psi = Gauge(
            "recsys_feature_psi", "PSI of one live feature vs training", ["feature"], registry=r
        )
        self.impression_memory = Gauge(
            "recsys_impression_memory_bytes",
            "Bytes held by the impression log (bounded by serve.impression_budget_bytes)",
            registry=r,
        )
        self.model_info = Gauge(
            "recsys_model_info", "Loaded models (value 1)", ["alias", "name", "version"], registry=r
        )
        for source in ("precomputed", "live", "fallback", "cold_start", "session"):
            self.recommendations.labels(source)
        for reason in ("store", "model", "breaker_open"):
            self.fallbacks.labels(reason)


class BreakerOpen(RuntimeError):
    """Raised instead of calling a dependency whose breaker is open."""


class CircuitBreaker:
    """Closed → (``failures`` consecutive failures or slow calls) → open → (after
    ``reset_seconds``) half-open: one trial call → closed on success, open again on failure.

    A call slower than ``slow_seconds`` counts as a failure even though its result is used.
    Every change of state writes one log line with its reason (the last failure when it opens).
    Hand-written for teaching (a dozen lines); ``pybreaker`` is the library equivalent.
    """

    CLOSED, HALF_OPEN, OPEN = 0, 1, 2

    def __init__(
        self,
        name: str,
        failures: int,
        reset_seconds: float,
        slow_seconds: float,
        on_change: Callable[[str, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.max_failures, self.reset_seconds = name, failures, reset_seconds
        self.slow_seconds, self.on_change, self.clock = slow_seconds, on_change, clock
        self.state, self.failures, self.opened_at = self.CLOSED, 0, 0.0
        self._lock = threading.Lock()
        self._set(self.CLOSED, None)

    def _set(self, state: int, reason: str | None) -> None:
        self.state = state
        if reason is not None:
            log.warning("%s breaker %s: %s", self.name, self.state_name, reason)
        if self.on_change:
            self.on_change(self.name, state)

    def allow(self) -> bool:
        with self._lock:
            if self.state == self.OPEN and self.clock() - self.opened_at >= self.reset_seconds:
                self._set(
                    self.HALF_OPEN, f"{self.reset_seconds:g} s since it opened, one trial call"
                )
                return True
            return self.state != self.OPEN

    def record(self, ok: bool, why: str = "failed") -> None:
        """Count one call's outcome; ``why`` says what went wrong (logged when it opens)."""
        with self._lock:
            if ok:
                self.failures = 0
                if self.state != self.CLOSED:
                    self._set(self.CLOSED, "a trial call succeeded")
                return
            self.failures += 1
            if self.state == self.HALF_OPEN or self.failures >= self.max_failures:
                self.opened_at = self.clock()
                if self.state != self.OPEN:
                    trial = self.state == self.HALF_OPEN
                    count = "the trial call" if trial else f"{self.failures} calls in a row"
                    self._set(
                        self.OPEN,
                        f"{count} failed (last: {why}); calls skipped for {self.reset_seconds:g} s",
                    )

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` through the breaker; raise :class:`BreakerOpen` without calling it if open."""
        if not self.allow():
            raise BreakerOpen(f"{self.name} circuit is open")
        start = self.clock()
        try:
            result = fn()
        except Exception as exc:
            self.record(False, f"{type(exc).__name__}: {str(exc)[:200]}")
            raise
        took = self.clock() - start
        self.record(
            took <= self.slow_seconds,
            f"slow: {took * 1000:.0f} ms > {self.slow_seconds * 1000:.0f} ms",
        )
        return result

    @property
    def state_name(self) -> str:
        return {0: "closed", 1: "half_open", 2: "open"}[self.state]


class Shadow:
    """Scores the challenger on the same request in a background thread; users never see it.

    Only a random ``sample_rate`` share of requests is scored (each request independently, so
    the sample is unbiased across users and endpoints). Scoring every request would double the
    service's CPU per request (the challenger's scoring costs as much as the champion's whole
    answer) and, sharing the GIL with the event loop, lengthen the latency tail users see; a
    10% sample at 200 requests/s still records ~20 latencies and overlaps per second.
    """

    def __init__(
        self,
        metrics: Metrics,
        max_pending: int = 64,
        sample_rate: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"shadow sample_rate must lie in [0, 1], got {sample_rate}")
        self.metrics, self.max_pending, self.sample_rate = metrics, max_pending, sample_rate
        self.rng = rng or random.Random()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self.pending = 0
        self.completed = 0
        self.overlaps: deque[float] = deque(maxlen=1000)
        self._lock = threading.Lock()
        metrics.shadow_sample_rate.set(sample_rate)

    def sampled(self) -> bool:
        """Whether this request is in the shadow sample (draw once per request)."""
        return self.sample_rate >= 1.0 or self.rng.random() < self.sample_rate

    def submit(self, challenger_fn: Callable[[], list[int]], champion_items: list[int]) -> bool:
        """Queue one shadow scoring; False (and counted) when the queue is full."""
        with self._lock:
            if self.pending >= self.max_pending:
                self.metrics.shadow_skipped.inc()
                return False
            self.pending += 1
        self.executor.submit(self._run, challenger_fn, champion_items)
        return True

    def _run(self, challenger_fn: Callable[[], list[int]], champion_items: list[int]) -> None:
        try:
            start = time.perf_counter()
            challenger_items = challenger_fn()
            self.metrics.shadow_latency.observe(time.perf_counter() - start)
            k = max(len(champion_items), 1)
            overlap = len(set(champion_items) & set(challenger_items)) / k
            self.metrics.shadow_overlap.observe(overlap)
            self.overlaps.append(overlap)
        finally:
            with self._lock:
                self.pending -= 1
                self.completed += 1

    def wait(self, timeout: float = 5.0) -> None:
        """Block until the queue is empty (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class DriftMonitor:
    """Windows of live feature values, compared with the training reference by PSI.

    Thread-safe: request handlers run in the thread pool and append while ``/metrics`` reads.
    """

    def __init__(self, reference: dict[str, list[float]], window: int) -> None:
        self.reference = {name: np.asarray(v, dtype=float) for name, v in reference.items()}
        self.live: dict[str, deque[float]] = {n: deque(maxlen=window) for n in self.reference}
        self.min_samples = 30
        self._lock = threading.Lock()

    def observe(self, feature: str, value: float) -> None:
        with self._lock:
            self.live[feature].append(float(value))

    def scores(self) -> dict[str, float]:
        """PSI per feature with enough live values (``min_samples``)."""
        return {
            name: psi(self.reference[name], np.asarray(values, dtype=float))
            for name, values in self.snapshot().items()
            if len(values) >= self.min_samples
        }

    def snapshot(self) -> dict[str, list[float]]:
        """A copy of each live window."""
        with self._lock:
            return {name: list(values) for name, values in self.live.items()}
