"""The review page's API: a real session (small world) decided over HTTP, and hostile input.

The session is the real loop (``run_session`` on a 5-gene world, z3 designer) with the
:class:`WebReviewer` in a worker thread; only the language model and the browser are left out
(the browser test, ``test_review_page.py``, drives the whole CLI).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from level5_discovery.agent import SymbolicDesigner
from level5_discovery.human import DecisionLog, Proposal
from level5_discovery.loop import SessionConfig, SessionResult, run_session
from level5_discovery.review import (
    MAX_BODY_BYTES,
    MAX_LINE_CHARS,
    MAX_LOG_ENTRIES,
    MAX_STORY_LINES,
    STATIC_DIR,
    DecisionRequest,
    ReviewState,
    WebReviewer,
    create_app,
)
from level5_discovery.world import WorldSpec, draw_world


def wait_for(client: TestClient, predicate, timeout: float = 60.0) -> dict:  # noqa: ANN001
    """Poll the state until ``predicate(state)`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get("/api/state").json()
        if predicate(state):
            return state
        time.sleep(0.05)
    raise AssertionError(f"state never matched; last: {state['phase']} {state['message']}")


def waiting(state: dict) -> bool:
    return state["proposal"] is not None


@pytest.fixture
def live(tmp_path):  # noqa: ANN001, ANN201
    """A running session on a 5-gene world whose reviewer is the API; yields (client, box)."""
    world = draw_world(4, WorldSpec(n_genes=5))
    state = ReviewState(seed=4)
    box: dict[str, SessionResult] = {}
    log = DecisionLog(tmp_path / "decisions.jsonl")

    def session() -> None:
        config = SessionConfig(max_experiments=5)
        box["result"] = run_session(
            world,
            SymbolicDesigner(),
            lab_seed=4,
            config=config,
            reviewer=WebReviewer(state),
            log=log,
            echo=state.say,
        )
        state.finish({"experiments": box["result"].experiments}, {})

    worker = threading.Thread(target=session, daemon=True)
    worker.start()
    with TestClient(create_app(state), raise_server_exceptions=False) as client:
        yield client, box, log, world
    state.close()
    worker.join(timeout=30)


def test_page_is_self_contained_and_guarded() -> None:
    client = TestClient(create_app(ReviewState(seed=1)))
    page = client.get("/")
    assert page.status_code == 200 and "/static/review.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for name in ("index.html", "review.js", "review.css"):
        text = (STATIC_DIR / name).read_text()
        assert "http://" not in text and "https://" not in text, f"{name} loads something remote"
        assert client.get(f"/static/{name}").status_code == 200
    assert "innerHTML" not in (STATIC_DIR / "review.js").read_text()  # text only, never markup


def test_session_advances_as_the_reviewer_decides(live) -> None:  # noqa: ANN001
    client, box, log, world = live
    assert client.post("/api/decision", json={"proposal_id": 99, "action": "approve"}
                       ).status_code == 409  # fmt: skip
    first = wait_for(client, waiting)["proposal"]
    assert first["step"] == 1 and first["gene"] in world.genes
    # A stale or unknown proposal id, an unknown gene: refused, the session still waits.
    assert client.post("/api/decision", json={"proposal_id": first["id"] + 1,
                                              "action": "approve"}).status_code == 409  # fmt: skip
    bad_gene = {"proposal_id": first["id"], "action": "edit", "gene": "NOPE1",
                "kind": "knockout"}  # fmt: skip
    assert client.post("/api/decision", json=bad_gene).status_code == 422
    answer = client.post("/api/decision", json={"proposal_id": first["id"], "action": "reject",
                                                "note": "too costly"})  # fmt: skip
    assert answer.status_code == 200
    # The same proposal cannot be decided twice.
    again = client.post("/api/decision", json={"proposal_id": first["id"], "action": "approve"})
    assert again.status_code == 409
    second = wait_for(client, lambda s: waiting(s) and s["proposal"]["id"] > first["id"])
    proposal = second["proposal"]
    assert proposal["gene"] != first["gene"], "a rejected experiment came back without new data"
    client.post("/api/decision", json={"proposal_id": proposal["id"], "action": "approve"})
    third = wait_for(client, lambda s: waiting(s) and s["proposal"]["id"] > proposal["id"])
    other = next(g for g in world.genes if g != third["proposal"]["gene"])
    edit = {"proposal_id": third["proposal"]["id"], "action": "edit", "gene": other,
            "kind": "overexpress"}  # fmt: skip
    assert client.post("/api/decision", json=edit).status_code == 200
    # Either the next proposal (stopped from the page) or the session stopped by its own rule.
    after = wait_for(client, lambda s: s["phase"] == "finished"
                     or (waiting(s) and s["proposal"]["id"] > edit["proposal_id"]))  # fmt: skip
    expected = [
        ("reject", "nothing"),
        ("approve", f"knockout {proposal['gene']}"),
        ("edit", f"overexpress {other}"),
    ]
    if after["phase"] != "finished":
        stop = {"proposal_id": after["proposal"]["id"], "action": "stop"}
        assert client.post("/api/decision", json=stop).status_code == 200
        expected.append(("stop", "nothing"))
    final = wait_for(client, lambda s: s["phase"] == "finished")
    actions = [(d["action"], d["experiment"]) for d in final["decisions"]]
    assert actions == expected
    result = box["result"]
    assert result.experiments == 2
    assert [(s.kind, s.gene) for s in result.steps] == [
        ("knockout", proposal["gene"]), ("overexpress", other)]  # fmt: skip
    logged = [json.loads(line)["decision"] for line in log.path.read_text().splitlines()]
    assert [d["action"] for d in logged] == [action for action, _ in expected]
    assert logged[0]["note"] == "too costly"
    assert any("reviewer rejected it (too costly)" in line for line in final["story"])


def test_request_model_is_strict(live) -> None:  # noqa: ANN001
    client, *_ = live
    pid = wait_for(client, waiting)["proposal"]["id"]
    refused = [
        {"proposal_id": pid, "action": "approve", "extra": 1},  # unknown field
        {"proposal_id": str(pid), "action": "approve"},  # a string for an int
        {"proposal_id": float(pid), "action": "approve"},  # a float for an int
        {"proposal_id": pid, "action": "launch"},  # unknown action
        {"proposal_id": pid, "action": "edit"},  # edit without the experiment
        {"proposal_id": pid, "action": "approve", "gene": "SOX2"},  # gene outside an edit
        {"proposal_id": pid, "action": "reject", "note": "x" * 201},  # note too long
        {"proposal_id": pid, "action": "reject", "note": "a\x00b"},  # control characters
        {"proposal_id": -1, "action": "approve"},
        {"proposal_id": 10**30, "action": "approve"},
        [],
        "approve",
    ]
    for body in refused:
        response = client.post("/api/decision", json=body)
        assert response.status_code == 422, (body, response.status_code, response.text)
    for raw in (b"{", b"\xff\xfe", b"", b"null"):
        response = client.post("/api/decision", content=raw,
                               headers={"content-type": "application/json"})  # fmt: skip
        assert response.status_code == 422, (raw, response.status_code)
    # None of that decided anything: the same proposal still waits.
    assert client.get("/api/state").json()["proposal"]["id"] == pid


def test_body_size_limit(live) -> None:  # noqa: ANN001
    client, *_ = live
    big = {"proposal_id": 1, "action": "reject", "note": "x" * (MAX_BODY_BYTES + 10)}
    assert client.post("/api/decision", json=big).status_code == 413

    def chunks():  # noqa: ANN202 (no Content-Length: the limit counts the bytes as they come)
        for _ in range(8):
            yield b"x" * 512

    as_json = {"content-type": "application/json"}
    assert client.post("/api/decision", content=chunks(), headers=as_json).status_code == 413
    assert client.get("/api/state").status_code == 200


def test_malformed_content_length_is_a_400_not_a_crash() -> None:
    app = create_app(ReviewState(seed=1))
    sent: list[dict] = []

    async def call() -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "path": "/api/decision", "raw_path": b"/api/decision",
                 "query_string": b"", "root_path": "", "scheme": "http",
                 "headers": [(b"content-length", b"12abc")], "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 2)}  # fmt: skip

        async def receive() -> dict:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)

    asyncio.run(call())
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400


def test_only_json_is_accepted() -> None:
    client = TestClient(create_app(ReviewState(seed=1)), raise_server_exceptions=False)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = client.post("/api/decision", content=b"\x80",
                               headers={"content-type": content_type})  # fmt: skip
        assert response.status_code == 415, content_type


def test_json_that_is_not_utf8_is_a_422_as_the_readme_says() -> None:
    client = TestClient(create_app(ReviewState(seed=1)), raise_server_exceptions=False)
    for body in (b'{"action": "\xe9"}', b"\xff\xfe{}"):
        response = client.post("/api/decision", content=body,
                               headers={"content-type": "application/json"})  # fmt: skip
        assert response.status_code == 422
        assert "\\xe9" not in response.text and "\\xff" not in response.text  # no echo
    assert client.get("/static/nothing-here.js").status_code == 404  # other errors unchanged


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),  # fmt: skip
    max_leaves=12,
)
decision_like = st.fixed_dictionaries(
    {"proposal_id": st.integers(-5, 5) | st.text(max_size=5),
     "action": st.sampled_from(["approve", "reject", "edit", "stop", "x", ""])},
    optional={"gene": st.text(max_size=20) | st.none(),
              "kind": st.sampled_from(["knockout", "overexpress", "", "KNOCKOUT"]),
              "note": st.text(max_size=300), "junk": json_values},
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=json_values | decision_like, raw=st.binary(max_size=64))
def test_no_input_gives_a_server_error(body, raw) -> None:  # noqa: ANN001
    """Any JSON value, any decision-shaped body, any bytes: a 2xx or 4xx, never a 5xx."""
    state = ReviewState(seed=1)
    client = TestClient(create_app(state), raise_server_exceptions=False)
    # (json=None sends no body at all: 415, not JSON)
    assert client.post("/api/decision", json=body).status_code in (409, 413, 415, 422)
    assert client.post("/api/decision", content=raw).status_code == 415
    as_json = {"content-type": "application/json"}
    # (bytes FastAPI cannot parse as JSON at all answer 400)
    assert client.post("/api/decision", content=raw, headers=as_json).status_code in (400, 409, 422)
    assert client.get("/api/state").status_code == 200


def test_state_stays_bounded() -> None:
    """Many decisions and long story lines: the state keeps the last ones, each line cut."""
    state = ReviewState(seed=1)
    for k in range(MAX_LOG_ENTRIES + 50):
        state.say("x" * 10_000)
        proposal = Proposal(k + 1, "SOX2", "knockout", 8, 1.0, "why", [], 3)
        asker = threading.Thread(target=state.ask, args=(proposal, ["SOX2"]))
        asker.start()
        while state.snapshot()["proposal"] is None:
            time.sleep(0.001)
        assert state.decide(DecisionRequest(proposal_id=k + 1, action="approve"))[0] == 200
        asker.join()
    snap = state.snapshot()
    assert len(snap["decisions"]) == MAX_LOG_ENTRIES
    assert snap["decisions"][-1]["step"] == MAX_LOG_ENTRIES + 50
    assert len(snap["story"]) <= MAX_STORY_LINES
    assert max(len(line) for line in snap["story"]) <= MAX_LINE_CHARS


def test_review_command_refuses_a_bad_or_busy_port(capsys) -> None:  # noqa: ANN001
    from level5_discovery.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["review", "--port", "70000"])
    assert exc.value.code == 2 and "not a TCP port" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["review", "--port", str(busy.getsockname()[1])]) == 2
    assert "cannot serve the review page on 127.0.0.1" in capsys.readouterr().err
