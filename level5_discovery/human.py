"""The human in the loop: every proposed experiment is shown, then approved, rejected or edited.

A :class:`Proposal` carries the agent's hypotheses about the proposed gene (with the retrieved
passages that support or contradict each, and what the data say) and the experiment it wants to
run, with the reason. A reviewer answers with a :class:`Decision`. :class:`TerminalReviewer` asks
a person at the terminal, the review page (:mod:`level5_discovery.review`) asks one in a browser,
and :class:`ScriptedReviewer` stands in for one in tests and benchmarks. Every decision is
appended to a JSONL log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from level5_discovery.world import INTERVENTION_KINDS, Measurement

SPLIT_SCORE_HELP = (
    "z3 split score: how many of the still-open questions 'is there a direct edge A->B?' this "
    "experiment is expected to settle (each counted by how likely that edge is), worked out over "
    "every network the z3 solver still finds consistent with the data; the agent adds 2 for each "
    "literature claim about the gene that the experiment would test. Higher means more "
    "informative; 'best' is the highest score of any experiment it could propose."
)


@dataclass
class HypothesisView:
    """One hypothesis as shown to the reviewer, with the retrieved passages behind it.

    ``passages`` are the passages whose reading agrees with the hypothesis (its sign),
    ``contradicting`` those that state the same pair with the opposite sign.
    """

    text: str
    confidence: float
    status: (
        str  # "untested", "consistent with evidence", "confirmed by data", "rejected by evidence"
    )
    passages: list[str] = field(default_factory=list)
    contradicting: list[str] = field(default_factory=list)


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

    def render(self, explain: bool = False) -> str:
        """Human-readable text of the proposal: the experiment, why, and the literature on the
        gene; ``explain`` adds what the z3 split score means."""
        lines = [f"--- proposal {self.step}: {self.kind} {self.gene} x{self.replicates} "
                 f"(cost {self.cost:.2f}) ---", f"why: {self.reason}"]  # fmt: skip
        if explain and "split score" in self.reason:
            lines.append(f"  ({SPLIT_SCORE_HELP})")
        lines.append(f"open edge questions: {self.open_questions}")
        if not self.hypotheses:
            lines.append(f"literature about {self.gene}: nothing retrieved")
        else:
            lines.append(f"literature about {self.gene} (retrieved passages):")
        for h in self.hypotheses:
            lines.append(f"  [{h.status}] {h.text}  (confidence {h.confidence:.2f})")
            for passage in h.passages[:2]:
                lines.append(f'      supports:    "{passage[:110]}"')
            for passage in h.contradicting[:2]:
                lines.append(f'      contradicts: "{passage[:110]}"')
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
    """Asks a person at the terminal.

    End of input (Ctrl-D, a closed pipe) or Ctrl-C at the prompt stops the session like ``s``:
    the session then ends normally and saves what ran; ``ended_by`` says why it stopped.
    """

    ask: Callable[[str], str] = input
    show: Callable[[str], None] = print
    ended_by: str | None = None
    explained: bool = False

    def review(self, proposal: Proposal, genes: list[str]) -> Decision:  # noqa: D102
        self.show(proposal.render(explain=not self.explained))
        self.explained = self.explained or "split score" in proposal.reason
        while True:
            try:
                answer = self.ask(
                    "[a]pprove, [r]eject, [e]dit GENE [knockout|overexpress], [s]top > "
                ).strip()
            except (EOFError, KeyboardInterrupt) as exc:
                self.ended_by = "end of input" if isinstance(exc, EOFError) else "interrupted"
                self.show("")  # finish the prompt's line
                return Decision("stop", proposal.gene, proposal.kind, self.ended_by)
            parts = answer.split()
            if not parts or parts[0] in ("a", "approve"):
                return Decision("approve", proposal.gene, proposal.kind)
            if parts[0] in ("r", "reject"):
                return Decision("reject", proposal.gene, proposal.kind, " ".join(parts[1:]))
            if parts[0] in ("s", "stop"):
                return Decision("stop", proposal.gene, proposal.kind)
            if parts[0] in ("e", "edit") and len(parts) >= 2:
                # Symbols are matched case-insensitively (any naming scheme: SOX2, Sox2, Rgn1).
                gene = {g.lower(): g for g in genes}.get(parts[1].lower(), parts[1])
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
                {k: v for k, v in asdict(h).items() if k not in ("passages", "contradicting")}
                for h in proposal.hypotheses
            ],
            "decision": asdict(decision),
        }
        with self.path.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")
