"""The one body-size middleware, driven directly with raw ASGI messages: declared, chunked,
malformed and missing Content-Length give the same answers, and nothing of the input comes back."""

from __future__ import annotations

import asyncio
import json

import pytest

from ml_common.body_limit import MALFORMED_LENGTH, BodySizeLimit

LIMIT = 100
SECRET = b"<script>secret-input</script>"


async def echo_length(scope, receive, send) -> None:  # noqa: ANN001
    """The application behind the limit: answers how many body bytes it received."""
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    payload = json.dumps({"received": len(body)}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload})


def call(chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, dict, int]:
    """(status, JSON answer, chunks the middleware read) for a POST sent as ``chunks``."""
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        if read < len(messages):
            read += 1
            return messages[read - 1]
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(BodySizeLimit(echo_length, LIMIT)(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert SECRET not in body  # never echoes input
    return sent[0]["status"], json.loads(body), read


def length(n: int | str) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(n).encode())]


def test_a_declared_body_within_the_limit_reaches_the_app() -> None:
    assert call([b"x" * LIMIT], length(LIMIT)) == (200, {"received": LIMIT}, 1)


def test_a_declared_length_over_the_limit_is_413_before_reading() -> None:
    status, answer, read = call([SECRET * 10], length(LIMIT + 1))
    assert (status, read) == (413, 0)
    assert answer == {"detail": f"request body over {LIMIT} bytes"}


def test_a_chunked_body_over_the_limit_is_413_and_stops_reading() -> None:
    chunks = [SECRET, SECRET, SECRET, SECRET, SECRET, SECRET]  # 29 bytes each, no length
    headers = [(b"transfer-encoding", b"chunked")]
    status, answer, read = call(chunks, headers)
    assert (status, read) == (413, 4)  # 4 x 29 = 116 > 100: the last two are never read
    assert answer["detail"] == f"request body over {LIMIT} bytes"


def test_a_body_without_length_within_the_limit_reaches_the_app() -> None:
    assert call([b"ab", b"cd", b""], []) == (200, {"received": 4}, 3)


def test_a_body_longer_than_its_declared_length_is_still_capped() -> None:
    status, _, _ = call([b"x" * 60, b"x" * 60], length(10))
    assert status == 413


@pytest.mark.parametrize(
    "headers",
    [
        length("12abc"),
        length("-1"),
        length("+5"),
        length("1e3"),
        length(""),
        length("٣"),  # a non-ASCII digit
        [(b"content-length", b"5"), (b"Content-Length", b"6")],  # two that disagree
    ],
)
def test_a_malformed_length_is_400_with_the_reason(headers: list) -> None:
    status, answer, read = call([SECRET], headers)
    assert (status, answer, read) == (400, {"detail": MALFORMED_LENGTH}, 0)


def test_an_absurdly_long_length_is_413_not_a_crash() -> None:
    status, _, read = call([SECRET], length("9" * 5000))  # int() refuses > 4,300 digits
    assert (status, read) == (413, 0)


def test_other_scopes_pass_untouched() -> None:
    seen = []

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        seen.append(scope["type"])

    asyncio.run(BodySizeLimit(app, 1)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]
