"""Pure ASGI middlewares (cheaper than ``BaseHTTPMiddleware``): latency and status metrics per
route template, and the request body limit (413 before anything parses the body)."""

from __future__ import annotations

import time

from fastapi import HTTPException
from fastapi.responses import JSONResponse

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
