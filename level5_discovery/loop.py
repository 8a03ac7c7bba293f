"""The discovery session: literature → hypotheses → designed experiments → a network.

1. Read the literature: for every ordered gene pair ask the retriever "How does A regulate B?",
   let the language model turn each retrieved passage into a hypothesis under the grammar, and
   pool the hypotheses that match the pair into a signed prior in [-1, 1].
2. Run a control experiment, then repeat: the designer (random / symbolic / RL / combined)
   proposes a knock-out, the reviewer approves, rejects or edits it, the lab runs it, the notebook
   updates (descendant tests, closure, regression), and z3 re-checks every literature hypothesis.
3. Stop when the data decide every edge question, the budget is spent, or the step limit is hit.
   The final network is the data's answer where the data decide, the literature's elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from level5_discovery.agent import Designer
from level5_discovery.corpus import Abstract, wrong_relations
from level5_discovery.evidence import EdgeScores, score_edges
from level5_discovery.human import (
    Decision,
    DecisionLog,
    HypothesisView,
    Proposal,
    Reviewer,
    ScriptedReviewer,
)
from level5_discovery.lm import (
    Hypothesis,
    TrainResult,
    generate_constrained,
    keyword_hypotheses,
    lab_mentions,
)
from level5_discovery.logic import Claim, HypothesisSpace, Knowledge, Z3Budget, closure
from level5_discovery.retrieval import Retriever, pair_question
from level5_discovery.world import GeneNetwork, Intervention, Lab
from ml_common.logs import get_logger

log = get_logger(__name__)
# Below this share of readable passages the reader is not reading this literature (another
# naming scheme, a broken endpoint): the session says so and falls back.
MIN_PARSE_RATE = 0.5
# Notes of a "stop" that means the person is gone (Ctrl-C, end of input, the page closed).
INTERRUPTED_NOTES = frozenset({"interrupted", "end of input", "review page closed"})


@dataclass
class Literature:
    """What the agent read: per ordered pair, the hypotheses and the passages behind them."""

    prior: np.ndarray  # signed confidence [i, j] in [-1, 1]
    support: dict[tuple[int, int], list[tuple[Hypothesis, str]]]
    # Share of the retrieved passages about two lab genes that the reader turned into a
    # hypothesis, which reader produced the prior ("lm", "keyword" after a fallback, "none"),
    # and the one line a fallback says (None when the reader did its job).
    parse_rate: float = 1.0
    reader: str = "lm"
    note: str | None = None

    def claims(self, threshold: float = 0.3) -> list[Claim]:
        """Hypotheses strong enough to enter the estimate."""
        n = self.prior.shape[0]
        return [
            Claim(i, j, int(np.sign(self.prior[i, j])))
            for i in range(n)
            for j in range(n)
            if abs(self.prior[i, j]) >= threshold
        ]


def read_literature(
    world: GeneNetwork,
    corpus: list[Abstract],
    retriever: Retriever | None,
    lm: TrainResult,
    k: int = 5,
    hypothesis_fn: Callable[[list[str], list[str]], list[Hypothesis | None]] | None = None,
) -> Literature:
    """Retrieve passages for every ordered pair, generate hypotheses, pool them into a prior.

    ``retriever=None`` reads every abstract for every pair (the no-retrieval ablation). If the
    reader turns fewer than ``MIN_PARSE_RATE`` of the retrieved passages that name two lab genes
    into a hypothesis, one warning line says so and the keyword reader takes over (measured
    better than no literature: README ablation); if that fails too, the prior stays empty.
    """
    genes = world.genes
    index = {g: i for i, g in enumerate(genes)}
    n = len(genes)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    if retriever is None:
        hits = [list(range(len(corpus)))] * len(pairs)
    else:
        hits = retriever.search([pair_question(genes[i], genes[j]) for i, j in pairs], k=k)
    unique = sorted({pid for row in hits for pid in row})
    texts = [corpus[pid].text for pid in unique]
    generate = hypothesis_fn or (lambda p, g: generate_constrained(lm.model, lm.tokenizer, p, g))
    about_lab = [k for k, t in enumerate(texts) if len(lab_mentions(t, genes)) >= 2]
    reader, note = "lm", None
    read = generate(texts, genes)
    rate = _parse_rate(read, about_lab)
    if rate < MIN_PARSE_RATE:
        fallback = keyword_hypotheses(texts, genes)
        fallback_rate = _parse_rate(fallback, about_lab)
        reader = "keyword" if fallback_rate >= MIN_PARSE_RATE else "none"
        read = fallback if reader == "keyword" else [None] * len(texts)
        note = (f"the reader parsed {rate:.0%} of {len(about_lab)} passages about lab genes "
                f"(under {MIN_PARSE_RATE:.0%}): "
                + ("falling back to the keyword reader" if reader == "keyword"
                   else "running without a literature prior"))  # fmt: skip
        log.warning(note)
    hypotheses = dict(zip(unique, read, strict=True))
    prior = np.zeros((n, n))
    support: dict[tuple[int, int], list[tuple[Hypothesis, str]]] = {}
    for (i, j), row in zip(pairs, hits, strict=True):
        matching = [
            (hypotheses[pid], corpus[pid].text)
            for pid in row
            if hypotheses.get(pid) is not None
            and index.get(hypotheses[pid].source) == i
            and index.get(hypotheses[pid].target) == j
        ]
        if matching:
            support[(i, j)] = matching
            prior[i, j] = float(np.mean([h.sign * h.sign_confidence for h, _ in matching]))
    return Literature(prior, support, rate, reader, note)


def _parse_rate(read: list[Hypothesis | None], about_lab: list[int]) -> float:
    """Share of the passages about lab genes that came back as a hypothesis."""
    if not about_lab:
        return 1.0  # nothing to read: not a reader failure
    return sum(read[k] is not None for k in about_lab) / len(about_lab)


@dataclass
class StepRecord:
    """One experiment of a session, as run."""

    step: int
    gene: str
    kind: str
    decision: str
    reason: str
    f1: float
    open_questions: int


@dataclass
class SessionResult:
    """Outcome of one session, graded against the hidden truth."""

    world: GeneNetwork
    estimate: np.ndarray
    scores: EdgeScores
    experiments: int
    experiments_to_target: int | None
    f1_curve: list[float]
    steps: list[StepRecord]
    wrong_rejected: int = 0
    wrong_total: int = 0
    true_rejected: int = 0
    true_total: int = 0
    story: list[str] = field(default_factory=list)
    # The agent's own stopping point (it never sees the truth): experiments and F1 there.
    self_stop_experiments: int | None = None
    self_stop_f1: float | None = None
    self_stopped: bool = False  # the agent's rule fired (else its "stop" is the budget's)
    decision_seconds: list[float] = field(default_factory=list)
    # Posterior probability that the best guess has F1 >= target, after the control and after
    # each experiment (the "posterior" stopping rule reads it; empty under the other rules).
    confidence_curve: list[float] = field(default_factory=list)
    # The literature's estimated reliability when the session ended (invented, missing and
    # wrong-sign rates; posterior means), None without literature.
    reliability: dict[str, float] | None = None


@dataclass
class SessionConfig:
    """Knobs of one session."""

    replicates: int = 8
    control_replicates: int = 16
    max_experiments: int = 12
    target_f1: float = 0.9
    prior_threshold: float = 0.3
    # "posterior": stop once the posterior probability that the best guess has edge F1 >=
    # target reaches ``stop_probability`` (at least one experiment run; networks up to
    # structure.MAX_EXACT_GENES genes, larger ones never stop by themselves);
    # "confirmed": once the best guess predicted the outcome (which genes move) of the last
    # ``confirmations`` experiments; "decided": once the data decide every edge question;
    # "none": only the budget stops it.
    stop_rule: str = "posterior"
    stop_probability: float = 0.95
    posterior_samples: int = 100
    confirmations: int = 2
    # Weigh the literature by its reliability measured on the notebook (every strategy: the
    # estimator is shared, so information stays equal).
    adaptive_prior: bool = True
    # Benchmark mode: run until the grader sees the target F1 (and, unless the rule is "none",
    # until the stopping rule has fired too, so both points are measured on the same run).
    run_to_target: bool = False
    budget: Z3Budget = field(default_factory=Z3Budget)


def open_edge_questions(knowledge: Knowledge) -> int:
    """Ordered pairs the data have not decided yet."""
    return int((~knowledge.decided_edges).sum())


def _status(space: HypothesisSpace, knowledge: Knowledge, claim: Claim) -> str:
    verdict = space.claim_status(claim)
    if verdict == "impossible":
        return "rejected by evidence"
    if verdict == "unknown":
        return "unknown (no proof either way within the solver's budget)"
    edges = knowledge.edges
    if (
        edges is not None
        and edges.determined[claim.source, claim.target]
        and edges.signed[claim.source, claim.target] == claim.sign
    ):
        return "confirmed by data"
    return "consistent with evidence"


def run_session(
    world: GeneNetwork,
    designer: Designer,
    lab_seed: int,
    literature: Literature | None = None,
    corpus: list[Abstract] | None = None,
    reviewer: Reviewer | None = None,
    config: SessionConfig | None = None,
    log: DecisionLog | None = None,
    echo: Callable[[str], None] | None = None,
) -> SessionResult:
    """One discovery session on ``world``; returns the graded result and the story."""
    cfg = config or SessionConfig()
    rng = np.random.default_rng(lab_seed)
    story: list[str] = []

    def say(line: str = "") -> None:
        story.append(line)
        if echo:
            echo(line)

    genes = world.genes
    reviewer = reviewer or ScriptedReviewer()
    lab = Lab(world, seed=lab_seed)
    posterior = cfg.stop_rule == "posterior"
    knowledge = Knowledge(world.n_genes, budget=cfg.budget, adaptive_prior=cfg.adaptive_prior,
                          posterior_samples=cfg.posterior_samples if posterior else 0,
                          target_f1=cfg.target_f1)  # fmt: skip
    prior = literature.prior if literature is not None else None
    knowledge.add(lab.run(Intervention((), replicates=cfg.control_replicates)))
    truth = world.adjacency

    def grade() -> float:
        return score_edges(knowledge.estimate(prior, cfg.prior_threshold), truth).f1

    f1_curve = [grade()]
    confidence_curve: list[float] = []
    if posterior:
        confidence_curve.append(knowledge.confidence(prior, cfg.prior_threshold))
    reached = 0 if f1_curve[0] >= cfg.target_f1 else None
    say(f"control experiment: {cfg.control_replicates} replicates; "
        f"best-guess F1 from the literature and the control {f1_curve[0]:.2f}")  # fmt: skip
    steps: list[StepRecord] = []
    step = 0
    interrupted = False
    rejected_in_a_row = 0
    confirmed = 0  # consecutive experiments whose outcome the best guess predicted
    self_stop: tuple[int, float] | None = None
    decision_seconds: list[float] = []
    # Genes whose proposal the reviewer rejected, with the experiment count at the time: they
    # are not proposed again until a new experiment has run (new evidence).
    rejected_at: dict[int, int] = {}
    while knowledge.experiments < cfg.max_experiments:
        open_q = open_edge_questions(knowledge)
        if self_stop is None and (
            (cfg.stop_rule == "decided" and open_q == 0)
            or (cfg.stop_rule == "confirmed" and confirmed >= cfg.confirmations)
            or (posterior and knowledge.experiments >= 1
                and confidence_curve[-1] >= cfg.stop_probability)
        ):
            self_stop = (knowledge.experiments, f1_curve[-1])
            if not cfg.run_to_target:
                say({"decided": "every edge question is decided by data: stopping",
                     "confirmed": f"the best guess predicted the last {confirmed} experiments: "
                                  "stopping",
                     "posterior": f"P(best guess has F1 >= {cfg.target_f1:g}) = "
                                  f"{confidence_curve[-1]:.2f} >= {cfg.stop_probability:g}: "
                                  "stopping"}[cfg.stop_rule])  # fmt: skip
                break
        if cfg.run_to_target and reached is not None and (
            cfg.stop_rule == "none" or self_stop is not None
        ):
            break
        step += 1
        avoid = {g for g, n in rejected_at.items() if n == knowledge.experiments}
        view = _WithoutRejected(knowledge, avoid) if avoid else knowledge
        started = time.perf_counter()
        gene, reason = designer.choose(view, prior, rng)  # type: ignore[arg-type]
        decision_seconds.append(time.perf_counter() - started)
        if gene in avoid:
            say("the reviewer rejected every experiment left since the last result: stopping")
            break
        views = _hypothesis_views(knowledge, literature, genes, gene) if literature else []
        intervention = Intervention((gene,), "knockout", cfg.replicates)
        proposal = Proposal(step, genes[gene], "knockout", cfg.replicates,
                            lab.cost_of(intervention), reason, views, open_q)  # fmt: skip
        decision: Decision = reviewer.review(proposal, genes)
        if log is not None:
            log.record(proposal, decision)
        say(f"[{step}] proposal: knock out {genes[gene]} — {reason}")
        if decision.action == "stop":
            say("    reviewer stopped the session")
            # Ctrl-C or a closed review page: save what ran at once, without grading the
            # literature (hundreds of z3 checks: it kept the process alive ~50 s after Ctrl-C).
            interrupted = decision.note in INTERRUPTED_NOTES
            break
        if decision.action == "reject":
            say(f"    reviewer rejected it ({decision.note or 'no reason given'}); "
                "not proposed again until new data arrive")  # fmt: skip
            rejected_at[gene] = knowledge.experiments
            rejected_in_a_row += 1
            if rejected_in_a_row >= 3:
                say("    three rejections in a row: stopping")
                break
            continue
        rejected_in_a_row = 0
        if decision.action == "edit":
            say(f"    reviewer edited it: {decision.kind} {decision.gene} ({decision.note})")
        target = genes.index(decision.gene)
        intervention = Intervention((target,), decision.kind, cfg.replicates)
        predicted = closure(knowledge.estimate(prior, cfg.prior_threshold) != 0)[target].copy()
        predicted[target] = False
        measurement = lab.run(intervention)
        reviewer.ran(measurement)
        knowledge.add(measurement)
        effect = knowledge.effects[target]
        if effect.changed.any():
            confirmed = confirmed + 1 if np.array_equal(predicted, effect.changed) else 0
        elif predicted.any():
            confirmed = 0  # it predicted genes would move and none did
        # An experiment that moved nothing, as predicted, confirms nothing about the edges the
        # guess is unsure of (a sink's knock-out fits almost every network): it does not count.
        moved = [f"{genes[j]}{'+' if effect.direction[j] > 0 else '-'}"
                 for j in np.flatnonzero(effect.changed)]  # fmt: skip
        f1_curve.append(grade())
        if posterior:
            confidence_curve.append(knowledge.confidence(prior, cfg.prior_threshold))
        if reached is None and f1_curve[-1] >= cfg.target_f1:
            reached = knowledge.experiments
        open_q = open_edge_questions(knowledge)
        sure = f"; P(F1 >= {cfg.target_f1:g}) {confidence_curve[-1]:.2f}" if posterior else ""
        say(f"    result: {decision.kind} {decision.gene} moved {', '.join(moved) or 'nothing'}"
            f"; open edge questions {open_q}{sure}; F1 vs hidden truth "
            f"{f1_curve[-1]:.2f}")  # fmt: skip
        steps.append(StepRecord(step, decision.gene, decision.kind, decision.action, reason,
                                f1_curve[-1], open_q))  # fmt: skip
    estimate = knowledge.estimate(prior, cfg.prior_threshold)
    fired = self_stop is not None
    self_stop = self_stop or (knowledge.experiments, f1_curve[-1])
    result = SessionResult(world, estimate, score_edges(estimate, truth), knowledge.experiments,
                           reached, f1_curve, steps, story=story,
                           self_stop_experiments=self_stop[0], self_stop_f1=self_stop[1],
                           decision_seconds=decision_seconds,
                           confidence_curve=confidence_curve, self_stopped=fired)  # fmt: skip
    if prior is not None:
        rel = knowledge.reliability(prior, cfg.prior_threshold)
        result.reliability = {"invented_rate": rel.invented_rate,
                              "missing_rate": rel.missing_rate,
                              "wrong_sign_rate": rel.wrong_sign_rate}  # fmt: skip
    if corpus is not None and interrupted:
        say("interrupted: the literature's claims were not graded")
    elif corpus is not None:
        _grade_literature(result, knowledge, corpus)
    return result


class _WithoutRejected:
    """The notebook as the designer sees it after a rejection: the rejected genes count as
    unavailable (like tested ones), so every designer picks among the rest without knowing about
    reviews. Everything else is the notebook itself."""

    def __init__(self, knowledge: Knowledge, unavailable: set[int]) -> None:
        self._knowledge = knowledge
        self._unavailable = np.isin(np.arange(knowledge.n_genes), sorted(unavailable))

    @property
    def tested(self) -> np.ndarray:
        return self._knowledge.tested | self._unavailable

    def __getattr__(self, name: str) -> object:
        return getattr(self._knowledge, name)


def _hypothesis_views(
    knowledge: Knowledge, literature: Literature, genes: list[str], gene: int, limit: int = 6
) -> list[HypothesisView]:
    """The literature's hypotheses about ``gene``: first what a knock-out of it tests (gene→j),
    then its regulators (i→gene), each by pooled confidence; passages split by agreement."""
    space = knowledge.hypothesis_space()
    views = []
    about = [(pair, support) for pair, support in literature.support.items() if gene in pair]
    ranked = sorted(about, key=lambda kv: (kv[0][0] != gene, -abs(literature.prior[kv[0]])))
    for (i, j), support in ranked[:limit]:
        sign = int(np.sign(literature.prior[i, j])) or 1
        verb = "activates" if sign > 0 else "inhibits"
        status = _status(space, knowledge, Claim(i, j, sign))
        views.append(HypothesisView(f"{genes[i]} {verb} {genes[j]}",
                                    abs(float(literature.prior[i, j])), status,
                                    [text for h, text in support if h.sign == sign],
                                    [text for h, text in support if h.sign != sign]))  # fmt: skip
    return views


def _grade_literature(result: SessionResult, knowledge: Knowledge, corpus: list[Abstract]) -> None:
    """How many wrong (and true) relations stated in the corpus the evidence rejects."""
    world = result.world
    space = knowledge.hypothesis_space()
    wrong = wrong_relations(corpus, world)
    result.wrong_total = len(wrong)
    result.wrong_rejected = sum(not space.is_consistent(Claim(*c)) for c in wrong)
    truth = world.adjacency
    true_claims = {(i, j, int(truth[i, j])) for i, j in zip(*np.nonzero(truth), strict=True)}
    stated = set()
    index = {g: k for k, g in enumerate(world.genes)}
    for doc in corpus:
        if doc.is_true:
            a, verb, b = doc.claim
            stated.add((index[a], index[b], 1 if verb == "activates" else -1))
    stated &= true_claims
    result.true_total = len(stated)
    result.true_rejected = sum(not space.is_consistent(Claim(*c)) for c in stated)
