"""The reviewer: scripted rules, terminal answers (end of input too), what a proposal shows, the
rejection memory, and the decision log."""

from __future__ import annotations

import json

import numpy as np

from level5_discovery.agent import SymbolicDesigner
from level5_discovery.human import (
    Decision,
    DecisionLog,
    HypothesisView,
    Proposal,
    ScriptedReviewer,
    TerminalReviewer,
)
from level5_discovery.lm import Hypothesis
from level5_discovery.logic import Knowledge
from level5_discovery.loop import Literature, SessionConfig, _hypothesis_views, run_session
from level5_discovery.session import tell_result
from level5_discovery.world import Intervention, Lab, WorldSpec, draw_world

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


def test_end_of_input_or_ctrl_c_stops_instead_of_crashing() -> None:
    shown: list[str] = []

    def closed(_: str) -> str:
        raise EOFError

    def interrupted(_: str) -> str:
        raise KeyboardInterrupt

    for ask, why in ((closed, "end of input"), (interrupted, "interrupted")):
        reviewer = TerminalReviewer(ask=ask, show=shown.append)
        decision = reviewer.review(proposal(), GENES)
        assert (decision.action, decision.note, reviewer.ended_by) == ("stop", why, why)


def test_proposal_shows_supporting_and_contradicting_passages_and_explains_once() -> None:
    views = [HypothesisView("SOX2 activates PAX6", 0.4, "untested", ["agrees 1", "agrees 2"],
                            ["disagrees"])]  # fmt: skip
    shown: list[str] = []
    reviewer = TerminalReviewer(ask=lambda _: "a", show=shown.append)
    for step in (1, 2):
        reviewer.review(Proposal(step, "SOX2", "knockout", 8, 1.0, "z3 split score 3.0 (best 3.0)",
                                 views, 6), GENES)  # fmt: skip
    first, second = shown
    assert 'supports:    "agrees 1"' in first and 'contradicts: "disagrees"' in first
    assert "literature about SOX2" in first
    assert "z3 split score: how many" in first and "z3 split score: how many" not in second
    empty = Proposal(3, "GATA3", "knockout", 8, 1.0, "chosen at random", [], 6).render()
    assert "literature about GATA3: nothing retrieved" in empty


class FirstCandidate(SymbolicDesigner):
    """Always the first gene it may choose: makes re-proposals visible."""

    def choose(self, knowledge, prior, rng):  # noqa: ANN001, ANN201, D102
        return self.candidates(knowledge)[0], "first candidate"


class Answers(ScriptedReviewer):
    """Answers from a list, recording the proposed genes."""

    def __init__(self, actions: list[str]) -> None:
        super().__init__()
        self.actions = actions
        self.proposed: list[str] = []

    def review(self, proposal: Proposal, genes: list[str]) -> Decision:  # noqa: D102
        self.proposed.append(proposal.gene)
        return Decision(self.actions.pop(0), proposal.gene, proposal.kind, "no")


def test_rejected_experiment_returns_only_after_new_data() -> None:
    world = draw_world(4, WorldSpec(n_genes=5))
    g = world.genes
    reviewer = Answers(["reject", "reject", "approve", "approve", "stop"])
    result = run_session(world, FirstCandidate(), lab_seed=4, reviewer=reviewer,
                         config=SessionConfig(max_experiments=5))  # fmt: skip
    # g0 and g1 rejected: g2 is proposed; after its result g0 (untested) may come back.
    assert reviewer.proposed[:4] == [g[0], g[1], g[2], g[0]]
    assert [s.gene for s in result.steps] == [g[2], g[0]]
    assert any("not proposed again until new data arrive" in line for line in result.story)


def test_reviewer_who_rejects_everything_left_stops_the_session() -> None:
    world = draw_world(4, WorldSpec(n_genes=2))
    reviewer = Answers(["reject", "reject", "approve"])
    result = run_session(world, FirstCandidate(), lab_seed=4, reviewer=reviewer)
    # Both genes rejected and no new data since: nothing is left to propose.
    assert reviewer.proposed == world.genes and result.experiments == 0
    assert "the reviewer rejected every experiment left" in result.story[-1]


def test_hypotheses_shown_are_about_the_proposed_gene() -> None:
    world = draw_world(4, WorldSpec(n_genes=4))
    genes = world.genes
    knowledge = Knowledge(world.n_genes)
    knowledge.add(Lab(world, seed=1).run(Intervention((), replicates=8)))

    def hyp(i: int, j: int, verb: str) -> Hypothesis:
        return Hypothesis(genes[i], verb, genes[j], 0.9, 0.9)

    support = {
        (0, 1): [(hyp(0, 1, "activates"), "p01 up"), (hyp(0, 1, "inhibits"), "p01 down"),
                 (hyp(0, 1, "activates"), "p01 up again")],
        (2, 0): [(hyp(2, 0, "inhibits"), "p20")],
        (2, 3): [(hyp(2, 3, "activates"), "p23")],
    }  # fmt: skip
    prior = np.zeros((4, 4))
    prior[0, 1], prior[2, 0], prior[2, 3] = 0.3, -0.9, 0.9
    literature = Literature(prior, support)
    views = _hypothesis_views(knowledge, literature, genes, 0)
    # What knocking out gene 0 tests comes first (0→1), then its regulators (2→0); 2→3 is not
    # about gene 0 and is left out even though it is the strongest claim.
    assert [v.text for v in views] == [f"{genes[0]} activates {genes[1]}",
                                       f"{genes[2]} inhibits {genes[0]}"]  # fmt: skip
    assert views[0].passages == ["p01 up", "p01 up again"]
    assert views[0].contradicting == ["p01 down"]
    assert _hypothesis_views(knowledge, literature, genes, 1)[0].text.endswith(genes[1])


def test_result_never_says_none_experiments() -> None:
    world = draw_world(4, WorldSpec(n_genes=5))
    result = run_session(world, FirstCandidate(), lab_seed=4,
                         config=SessionConfig(max_experiments=1))  # fmt: skip
    lines: list[str] = []
    result.experiments_to_target = None
    tell_result(result, lines.append, 0.9)
    assert "experiments: 1; did not reach F1 >= 0.9 within 1 experiment" in lines
    result.experiments_to_target = 1
    lines.clear()
    tell_result(result, lines.append, 0.95)
    assert "experiments: 1; reached F1 >= 0.95 after 1 experiment" in lines
