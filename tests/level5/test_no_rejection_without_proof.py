"""No literature claim is rejected without proof: when z3 cannot make the evidence consistent
within its budget (``unresolved``) every claim answers "unknown", never "impossible"; and an
experiment that moved nothing does not count as a confirmation of the best guess."""

from __future__ import annotations

import numpy as np

from level5_discovery.agent import Designer
from level5_discovery.corpus import make_corpus
from level5_discovery.human import Decision, Proposal
from level5_discovery.logic import Claim, Knowledge
from level5_discovery.loop import SessionConfig, _grade_literature, _status, run_session
from level5_discovery.world import Intervention, Lab, WorldSpec, draw_world


def test_unresolved_evidence_after_an_over_expression_rejects_no_claim() -> None:
    """The issue's case, found here with world seed 2030: a control, a knock-out, an
    over-expression and two more knock-outs leave z3 with conflicting facts it cannot resolve
    within the default budget (36 facts dropped, then out of budget). Before the fix every true
    relation of the world (17 of 17) came back "rejected by evidence"."""
    world = draw_world(2030, WorldSpec(n_genes=12))
    lab = Lab(world, seed=2031)
    knowledge = Knowledge(12)
    knowledge.add(lab.run(Intervention((), replicates=16)))
    order = [int(g) for g in np.random.default_rng(2030).permutation(12)[:4]]
    for step, gene in enumerate(order):
        kind = "overexpress" if step == 1 else "knockout"
        knowledge.add(lab.run(Intervention((gene,), kind, 8)))
    space = knowledge.hypothesis_space()
    assert space.unresolved, "the case no longer runs out of budget: find another one"
    truth = world.adjacency
    true_claims = [Claim(int(i), int(j), int(truth[i, j]))
                   for i, j in zip(*np.nonzero(truth), strict=True)]  # fmt: skip
    assert {space.claim_status(c) for c in true_claims} == {"unknown"}
    assert all(space.is_consistent(c) for c in true_claims)
    assert _status(space, knowledge, true_claims[0]).startswith("unknown")
    # The session's grading of the literature counts no rejection either.
    result = run_session(world, _FirstUntested(), lab_seed=2031, config=SessionConfig(
        max_experiments=0))  # fmt: skip
    result.world = world
    _grade_literature(result, knowledge, make_corpus(world, 2030))
    assert result.true_total > 0 and result.true_rejected == 0


def test_a_resolved_contradiction_still_rejects_with_proof() -> None:
    """Where the evidence is consistent, a claim the data contradict is still rejected: the
    "unknown" answer is for unresolved evidence only."""
    world = draw_world(2032, WorldSpec(n_genes=12))
    lab = Lab(world, seed=2033)
    knowledge = Knowledge(12)
    knowledge.add(lab.run(Intervention((), replicates=16)))
    gene = int(np.flatnonzero(world.adjacency.any(axis=1))[0])
    knowledge.add(lab.run(Intervention((gene,), "knockout", 8)))
    space = knowledge.hypothesis_space()
    assert not space.unresolved
    unmoved = [j for j in range(12) if j != gene and not knowledge.effects[gene].changed[j]]
    assert space.claim_status(Claim(gene, unmoved[0], 1)) == "impossible"


class _FirstUntested(Designer):
    def choose(self, knowledge, prior, rng):  # noqa: ANN001, ANN201, D102
        return self.candidates(knowledge)[0], "first untested"


class _OverexpressSink:
    """A reviewer who replaces the first proposal by an over-expression of a gene with no
    descendants (it moves nothing), then approves everything."""

    def __init__(self, sink: str) -> None:
        self.sink = sink
        self.decisions = 0

    def review(self, proposal: Proposal, genes: list[str]) -> Decision:
        self.decisions += 1
        if self.decisions == 1:
            return Decision("edit", self.sink, "overexpress", "reviewer's choice")
        return Decision("approve", proposal.gene, proposal.kind)

    def ran(self, measurement: object) -> None:
        pass


def test_an_experiment_that_moved_nothing_is_no_confirmation() -> None:
    world = draw_world(4, WorldSpec(n_genes=8))
    # Gene 4 has no descendants, and the best guess after the control predicts none for it:
    # its over-expression moves nothing, exactly as predicted (the case of the review page).
    assert not world.descendants(4)
    reviewer = _OverexpressSink(world.genes[4])
    config = SessionConfig(max_experiments=8, stop_rule="confirmed", confirmations=1)
    result = run_session(world, _FirstUntested(), lab_seed=5, reviewer=reviewer, config=config)
    assert "moved nothing" in result.story[3], result.story[:4]
    # One confirmation would have stopped it right after the over-expression of the sink.
    assert result.self_stop_experiments is None or result.self_stop_experiments > 1
    assert result.experiments > 1
