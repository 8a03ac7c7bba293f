"""The reviewer: scripted rules, terminal answers, and the decision log."""

from __future__ import annotations

import json

from level5_discovery.agent import SymbolicDesigner
from level5_discovery.human import (
    DecisionLog,
    HypothesisView,
    Proposal,
    ScriptedReviewer,
    TerminalReviewer,
)
from level5_discovery.loop import SessionConfig, run_session
from level5_discovery.world import WorldSpec, draw_world

GENES = ["SOX2", "PAX6", "GATA3"]


def proposal(gene: str = "SOX2", cost: float = 1.0) -> Proposal:
    views = [HypothesisView("SOX2 activates PAX6", 0.8, "untested", ["a passage"])]
    return Proposal(1, gene, "knockout", 8, cost, "because", views, 6)


def test_scripted_reviewer_rules() -> None:
    reviewer = ScriptedReviewer(essential={"PAX6"}, budget=2.0)
    assert reviewer.review(proposal("SOX2"), GENES).action == "approve"
    edited = reviewer.review(proposal("PAX6"), GENES)
    assert (edited.action, edited.kind) == ("edit", "overexpress")
    assert reviewer.review(proposal("SOX2", cost=5.0), GENES).action == "reject"


def test_terminal_reviewer_parses_answers() -> None:
    answers = iter(["huh", "e gata3 overexpress"])
    shown: list[str] = []
    reviewer = TerminalReviewer(ask=lambda _: next(answers), show=shown.append)
    decision = reviewer.review(proposal(), GENES)
    assert (decision.action, decision.gene, decision.kind) == ("edit", "GATA3", "overexpress")
    assert "SOX2 activates PAX6" in shown[0] and "not understood" in shown[1]
    assert TerminalReviewer(ask=lambda _: "r too costly", show=shown.append).review(
        proposal(), GENES).action == "reject"  # fmt: skip


def test_every_decision_is_logged_and_obeyed(tmp_path) -> None:  # noqa: ANN001
    world = draw_world(4, WorldSpec(n_genes=5))
    essential = {world.genes[0], world.genes[1]}
    log = DecisionLog(tmp_path / "decisions.jsonl")
    reviewer = ScriptedReviewer(essential=essential)
    result = run_session(world, SymbolicDesigner(), lab_seed=4, reviewer=reviewer,
                         config=SessionConfig(max_experiments=5), log=log)  # fmt: skip
    entries = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert len(entries) == len(result.steps) >= 1
    for entry, step in zip(entries, result.steps, strict=True):
        assert entry["decision"]["kind"] == step.kind
        if entry["proposed"]["gene"] in essential:
            assert step.kind == "overexpress" and entry["decision"]["action"] == "edit"
    # The reviewer keeps the bill of what ran: 8 replicates, 0.125 per knock-out, 0.1875 over.
    assert reviewer.spent == sum(1.5 if s.kind == "overexpress" else 1.0 for s in result.steps)
