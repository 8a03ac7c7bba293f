"""Pure ASGI middleware (cheaper than ``BaseHTTPMiddleware``): latency and status metrics per
route template. The request body limit is the project's one, ``ml_common.body_limit``."""

from __future__ import annotations

import time

from level3_recsys.monitoring import Metrics


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
