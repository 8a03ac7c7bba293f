"""The review page: the human-in-the-loop step as a small web page (FastAPI + uvicorn).

``python -m level5_discovery review`` starts a discovery session whose reviewer is this page.
The session runs in a worker thread; each time the agent proposes an experiment,
:class:`WebReviewer` publishes the proposal in a :class:`ReviewState` and waits until the page
posts a decision (approve, reject, edit = run another experiment instead, or stop). The page
(``static/``: one HTML file, one script, one stylesheet, shipped in the package, no CDN, no build
step) polls ``GET /api/state`` and shows the proposed experiment, the hypotheses about the
proposed gene with the retrieved passages that support or contradict each, the decisions so far
and the session's story.

The endpoint is treated as public, so every input is hostile:

- ``POST /api/decision`` takes a strict pydantic model (unknown fields, wrong types, unknown
  genes → 422); a decision for a proposal that is no longer waiting → 409;
- the project's body-size limit (:data:`MAX_BODY_BYTES`, ``ml_common.body_limit``) is enforced
  before parsing, chunked bodies too → 413, a malformed Content-Length → 400; a body that is not
  ``application/json`` → 415;
- the state is bounded: one proposal at a time, the last :data:`MAX_LOG_ENTRIES` decisions and
  :data:`MAX_STORY_LINES` story lines, notes of at most 200 characters;
- the page renders text with ``textContent`` only, and a Content-Security-Policy allows nothing
  but this server's own files.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, model_validator

from level5_discovery.human import SPLIT_SCORE_HELP, Decision, Proposal, Reviewer
from ml_common.body_limit import BodySizeLimit

STATIC_DIR = Path(__file__).with_name("static")
MAX_BODY_BYTES = 2048
MAX_LOG_ENTRIES = 200
MAX_STORY_LINES = 400
MAX_LINE_CHARS = 500
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
     b"frame-ancestors 'none'; form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]  # fmt: skip


class DecisionRequest(BaseModel):
    """What the page posts: the reviewer's answer to the proposal with id ``proposal_id``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    proposal_id: int = Field(ge=1, le=1_000_000)
    action: Literal["approve", "reject", "edit", "stop"]
    gene: str | None = Field(None, min_length=1, max_length=16, pattern=r"^[A-Z][A-Z0-9]*$")
    kind: Literal["knockout", "overexpress"] | None = None
    note: str = Field("", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")

    @model_validator(mode="after")
    def _edit_names_the_experiment(self) -> DecisionRequest:
        if self.action == "edit" and (self.gene is None or self.kind is None):
            raise ValueError("an edit names the experiment to run instead: gene and kind")
        if self.action != "edit" and (self.gene is not None or self.kind is not None):
            raise ValueError("only an edit names a gene and kind")
        return self


class ReviewState:
    """What the page shows and the one decision it may post; shared by two threads, bounded."""

    def __init__(self, seed: int) -> None:
        self._cond = threading.Condition()
        self.seed = seed
        self.phase = "preparing"  # preparing, waiting, running, finished, failed
        self.message = "loading the models and reading the literature"
        self.genes: list[str] = []
        self._proposal: Proposal | None = None
        self._proposal_id = 0
        self._answer: Decision | None = None
        self._closed = False
        self._log: deque[dict[str, Any]] = deque(maxlen=MAX_LOG_ENTRIES)
        self._story: deque[str] = deque(maxlen=MAX_STORY_LINES)
        self.result: dict[str, Any] | None = None
        self.outputs: dict[str, str] = {}

    def say(self, line: str) -> None:
        """Add a line of the session's story."""
        with self._cond:
            self._story.append(line[:MAX_LINE_CHARS])

    def ask(self, proposal: Proposal, genes: list[str]) -> Decision:
        """Publish ``proposal`` and block until the page decides (or the server closes)."""
        with self._cond:
            if not self._closed:
                self.genes = list(genes)
                self._proposal_id += 1
                self._proposal, self._answer = proposal, None
                self.phase, self.message = "waiting", "waiting for your decision"
                self._cond.notify_all()
            while self._answer is None and not self._closed:
                self._cond.wait(timeout=1.0)
            decision = self._answer or Decision(
                "stop", proposal.gene, proposal.kind, "review page closed"
            )
            self._proposal, self._answer = None, None
            self.phase, self.message = "running", f"running: {_experiment(decision)}"
            self._log.append({
                "step": proposal.step, "proposed": f"{proposal.kind} {proposal.gene}",
                "action": decision.action, "experiment": _experiment(decision),
                "note": decision.note,
            })  # fmt: skip
            return decision

    def decide(self, request: DecisionRequest) -> tuple[int, str]:
        """Hand the page's decision to the waiting session: (HTTP status, message)."""
        with self._cond:
            proposal = self._proposal
            if proposal is None or self._answer is not None:
                return 409, "no proposal is waiting for a decision"
            if request.proposal_id != self._proposal_id:
                return 409, f"proposal {request.proposal_id} is not the one waiting"
            if request.action == "edit" and request.gene not in self.genes:
                return 422, f"unknown gene {request.gene!r}; genes are {', '.join(self.genes)}"
            if request.action == "edit":
                gene, kind = str(request.gene), str(request.kind)
            else:
                gene, kind = proposal.gene, proposal.kind
            note = _CONTROL_CHARS.sub(" ", request.note).strip()
            if request.action == "edit" and not note:
                note = "edited on the review page"
            self._answer = Decision(request.action, gene, kind, note)
            self._cond.notify_all()
            return 200, f"{request.action}: {_experiment(self._answer)}"

    def finish(self, result: dict[str, Any], outputs: dict[str, str]) -> None:
        """The session ended and its outputs are written."""
        with self._cond:
            self.phase, self.message = "finished", "session finished; outputs saved"
            self.result, self.outputs = result, outputs

    def fail(self, message: str) -> None:
        """The session could not run."""
        with self._cond:
            self.phase, self.message = "failed", message[:MAX_LINE_CHARS]

    def close(self) -> None:
        """The server is going away: a waiting proposal is answered with ``stop``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data."""
        with self._cond:
            proposal = None
            if self._proposal is not None and self._answer is None:
                proposal = {"id": self._proposal_id,
                            **{k: v for k, v in asdict(self._proposal).items()}}  # fmt: skip
            return {
                "seed": self.seed, "phase": self.phase, "message": self.message,
                "genes": self.genes, "kinds": ["knockout", "overexpress"],
                "proposal": proposal, "split_score_help": SPLIT_SCORE_HELP,
                "decisions": list(self._log), "story": list(self._story),
                "result": self.result, "outputs": self.outputs,
            }  # fmt: skip


def _experiment(decision: Decision) -> str:
    if decision.action in ("approve", "edit"):
        return f"{decision.kind} {decision.gene}"
    return "nothing"


class WebReviewer(Reviewer):
    """A person answering on the review page."""

    def __init__(self, state: ReviewState) -> None:
        self.state = state
        self.ended_by: str | None = None

    def review(self, proposal: Proposal, genes: list[str]) -> Decision:  # noqa: D102
        decision = self.state.ask(proposal, genes)
        if decision.action == "stop":
            self.ended_by = decision.note or "stopped on the review page"
        return decision


class _Guard:
    """Pure ASGI middleware: the project's body-size limit first (``ml_common.body_limit``: 413
    over the limit, declared or streamed, 400 for a malformed Content-Length), then 415 for a
    POST that is not JSON; security headers on every response, those answers included."""

    def __init__(self, app: Callable[..., Any], max_bytes: int = MAX_BODY_BYTES) -> None:  # noqa: D107
        self.app = app
        self.limited = BodySizeLimit(self._json_only, max_bytes)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.limited(scope, receive, send_with_headers)

    async def _json_only(self, scope: dict, receive: Callable, send: Callable) -> None:
        headers = dict(scope.get("headers", []))
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope["method"] == "POST" and media_type != b"application/json":
            detail = {"detail": "send the decision as application/json"}
            await JSONResponse(detail, status_code=415)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(state: ReviewState) -> FastAPI:
    """The review page's app around ``state`` (the session runs elsewhere)."""
    app = FastAPI(title="level 5 review page", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the offending input back, and crashes (500) when that input
        # is bytes that are not UTF-8; say what is wrong and where, never echo it.
        errors = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
                  for e in exc.errors()]  # fmt: skip
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/state")
    def get_state() -> dict[str, Any]:
        """The session as the page shows it."""
        return state.snapshot()

    @app.post("/api/decision")
    def post_decision(request: DecisionRequest) -> JSONResponse:
        """The reviewer's decision on the waiting proposal."""
        status, message = state.decide(request)
        key = "status" if status == 200 else "detail"
        return JSONResponse({key: message}, status_code=status)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok", "phase": state.phase}

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(_Guard, max_bytes=MAX_BODY_BYTES)
    return app


def result_summary(result: Any, target_f1: float) -> dict[str, Any]:  # noqa: ANN401
    """The graded outcome shown at the end of a reviewed session."""
    s = result.scores
    return {
        "experiments": result.experiments,
        "experiments_to_target": result.experiments_to_target,
        "target_f1": target_f1,
        "precision": s.precision, "recall": s.recall, "f1": s.f1,
        "sign_accuracy": s.sign_accuracy,
    }  # fmt: skip


def serve(app: Any, host: str, port: int) -> None:  # noqa: ANN401
    """Run uvicorn until Ctrl-C or SIGTERM (both end it the same, quiet way)."""
    import signal

    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            limit_concurrency=32, timeout_keep_alive=5)  # fmt: skip
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once it has shut down: make SIGTERM behave
    # like Ctrl-C so both land in the except below instead of killing the process mid-save.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
