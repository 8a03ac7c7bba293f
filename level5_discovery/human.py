"""The human in the loop: every proposed experiment is shown, then approved, rejected or edited.

A :class:`Proposal` carries the agent's current hypotheses (with the passages and the evidence
behind each) and the experiment it wants to run, with the reason. A reviewer answers with a
:class:`Decision`. :class:`TerminalReviewer` asks a person; :class:`ScriptedReviewer` stands in for
one in tests and benchmarks. Every decision is appended to a JSONL log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from level5_discovery.world import INTERVENTION_KINDS, Measurement


@dataclass
class HypothesisView:
    """One hypothesis as shown to the reviewer."""

    text: str
    confidence: float
    status: (
        str  # "untested", "consistent with evidence", "confirmed by data", "rejected by evidence"
    )
    passages: list[str] = field(default_factory=list)


@dataclass
class Proposal:
    """What the agent wants to do next, and why."""

    step: int
    gene: str
    kind: str
    replicates: int
    cost: float
    reason: str
    hypotheses: list[HypothesisView]
    open_questions: int

    def render(self) -> str:
        """Human-readable text of the proposal."""
        lines = [f"--- proposal {self.step}: {self.kind} {self.gene} x{self.replicates} "
                 f"(cost {self.cost:.2f}) ---", f"why: {self.reason}",
                 f"open edge questions: {self.open_questions}", "hypotheses:"]  # fmt: skip
        for h in self.hypotheses:
            lines.append(f"  [{h.status}] {h.text}  (confidence {h.confidence:.2f})")
            for passage in h.passages[:1]:
                lines.append(f'      "{passage[:110]}"')
        return "\n".join(lines)


@dataclass
class Decision:
    """A reviewer's answer: ``approve``, ``reject`` or ``edit`` (with the edited experiment)."""

    action: str
    gene: str
    kind: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.action not in ("approve", "reject", "edit", "stop"):
            raise ValueError(f"unknown decision {self.action!r}")
        if self.kind not in INTERVENTION_KINDS:
            raise ValueError(f"unknown intervention kind {self.kind!r}")


class Reviewer:
    """Answers proposals."""

    def review(self, proposal: Proposal, genes: list[str]) -> Decision:
        """Approve, reject or edit a proposal."""
        raise NotImplementedError

    def ran(self, measurement: Measurement) -> None:
        """Told when an approved (or edited) experiment has run; nothing to do by default."""


@dataclass
class ScriptedReviewer(Reviewer):
    """A rule-following stand-in for a person.

    - an essential gene cannot be knocked out (the cells die): the proposal is edited to an
      over-expression of the same gene;
    - a proposal that would exceed the budget is rejected;
    - everything else is approved.
    """

    essential: set[str] = field(default_factory=set)
    budget: float = float("inf")
    spent: float = 0.0

    def review(self, proposal: Proposal, genes: list[str]) -> Decision:  # noqa: D102
        if self.spent + proposal.cost > self.budget:
            return Decision("reject", proposal.gene, proposal.kind, "over budget")
        if proposal.kind == "knockout" and proposal.gene in self.essential:
            return Decision(
                "edit", proposal.gene, "overexpress", "essential gene: over-express instead"
            )
        return Decision("approve", proposal.gene, proposal.kind)

    def ran(self, measurement: Measurement) -> None:  # noqa: D102
        self.spent += measurement.cost


@dataclass
class TerminalReviewer(Reviewer):
    """Asks a person at the terminal."""

    ask: Callable[[str], str] = input
    show: Callable[[str], None] = print

    def review(self, proposal: Proposal, genes: list[str]) -> Decision:  # noqa: D102
        self.show(proposal.render())
        while True:
            answer = self.ask(
                "[a]pprove, [r]eject, [e]dit GENE [knockout|overexpress], [s]top > "
            ).strip()
            parts = answer.split()
            if not parts or parts[0] in ("a", "approve"):
                return Decision("approve", proposal.gene, proposal.kind)
            if parts[0] in ("r", "reject"):
                return Decision("reject", proposal.gene, proposal.kind, " ".join(parts[1:]))
            if parts[0] in ("s", "stop"):
                return Decision("stop", proposal.gene, proposal.kind)
            if parts[0] in ("e", "edit") and len(parts) >= 2:
                gene = parts[1].upper()
                kind = parts[2] if len(parts) > 2 else proposal.kind
                if gene in genes and kind in INTERVENTION_KINDS:
                    return Decision("edit", gene, kind, "edited by reviewer")
            self.show(f"not understood; genes are {', '.join(genes)}")


class DecisionLog:
    """Append-only JSONL log of proposals and decisions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def record(self, proposal: Proposal, decision: Decision) -> None:
        """Append one line: the proposal (without passages' full text) and the decision."""
        entry = {
            "step": proposal.step,
            "proposed": {"gene": proposal.gene, "kind": proposal.kind, "reason": proposal.reason},
            "hypotheses": [
                {k: v for k, v in asdict(h).items() if k != "passages"} for h in proposal.hypotheses
            ],
            "decision": asdict(decision),
        }
        with self.path.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")
