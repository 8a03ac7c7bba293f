"""The one request-body limit every service uses: a pure ASGI middleware, no dependency.

The same answers everywhere, before the application parses anything:

- a declared ``Content-Length`` over the limit → **413**, nothing read;
- a body without a declared length (chunked, or streamed) that grows over the limit → **413** as
  soon as it does, the rest unread;
- a malformed ``Content-Length`` (not a plain decimal number, or several that disagree) → **400**
  with the reason;
- no ``Content-Length`` and a body within the limit → passed on.

Answers are JSON ``{"detail": "..."}`` and never echo the client's input. The body is buffered
here (at most ``max_bytes``, so memory stays bounded) and replayed to the application, so the
limit holds whatever the application does with its body: a framework that turns an error while
reading the body into its own 400 (FastAPI does) never sees an oversized one.

This module, like ``ml_common/__init__.py`` and what that imports (``threads``,
``tool_defaults``, ``paths``), needs only the standard library: the slim ONNX scoring image
copies just those files (``docker/fraud.Dockerfile``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Longer than this many digits is over any limit (and Python refuses to parse 4,300+ digits).
_MAX_DIGITS = 18

MALFORMED_LENGTH = "malformed Content-Length header: send one plain decimal byte count"


def too_large_detail(max_bytes: int) -> str:
    """The 413 answer's text."""
    return f"request body over {max_bytes} bytes"


class BodySizeLimit:
    """ASGI middleware: 413 for a body over ``max_bytes`` (declared or streamed), 400 for a
    malformed ``Content-Length``; see the module text."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, read the body up to the limit, then run the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        lengths = {value.strip() for name, value in headers if name.lower() == b"content-length"}
        if len(lengths) > 1 or any(not v.isdigit() for v in lengths):
            await self._answer(send, 400, MALFORMED_LENGTH)
            return
        if lengths:
            declared = lengths.pop()
            if len(declared) > _MAX_DIGITS or int(declared) > self.max_bytes:
                await self._answer(send, 413, too_large_detail(self.max_bytes))
                return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._answer(send, 413, too_large_detail(self.max_bytes))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as servers do

        await self.app(scope, replay, send)

    @staticmethod
    async def _answer(send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),  # the unread rest of the body is not drained
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
