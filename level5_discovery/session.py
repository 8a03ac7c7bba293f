"""Assemble and run one full discovery session (what ``make level5`` does)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from level5_discovery.agent import CombinedDesigner, PolicyNet
from level5_discovery.corpus import Abstract, make_corpus
from level5_discovery.human import DecisionLog, Reviewer, ScriptedReviewer
from level5_discovery.lm import Hypothesis, OpenAICompatibleBackend, TrainResult
from level5_discovery.logic import Z3Budget
from level5_discovery.loop import (
    Literature,
    SessionConfig,
    SessionResult,
    read_literature,
    run_session,
)
from level5_discovery.retrieval import Retriever, pair_question
from level5_discovery.settings import Level5Settings
from level5_discovery.world import GeneNetwork, WorldSpec, draw_world
from ml_common.atomic import write_json, write_text


@dataclass
class Prepared:
    """A world with its corpus, retriever and what the agent read."""

    world: GeneNetwork
    corpus: list[Abstract]
    retriever: Retriever
    literature: Literature


def world_spec(settings: Level5Settings) -> WorldSpec:
    """The lab of these settings (size, density, noise)."""
    return WorldSpec(n_genes=settings.n_genes, gene_pool=tuple(settings.gene_pool),
                     **settings.world.model_dump())  # fmt: skip


def prepare_world(
    seed: int,
    settings: Level5Settings,
    lm: TrainResult,
    hypothesis_fn: Callable[[list[str], list[str]], list[Hypothesis | None]] | None = None,
    read_all: bool = False,
) -> Prepared:
    """Draw the world, write its literature, index it and read it.

    ``hypothesis_fn`` replaces the language model as the reader (ablation); ``read_all`` skips
    retrieval: every abstract is read for every pair (ablation).
    """
    world = draw_world(seed, world_spec(settings))
    corpus = make_corpus(world, seed, **settings.literature.model_dump())
    retriever = Retriever(
        [d.text for d in corpus],
        backend=settings.retrieval.backend,
        symbol_bonus=settings.retrieval.symbol_bonus,
    )
    if hypothesis_fn is None and settings.llm_backend.enabled:
        backend = OpenAICompatibleBackend(
            settings.llm_backend.base_url,
            settings.llm_backend.model,
            os.environ.get(settings.llm_backend.api_key_env),
        )
        hypothesis_fn = backend.generate
    literature = read_literature(world, corpus, None if read_all else retriever, lm,
                                 settings.retrieval.k, hypothesis_fn)  # fmt: skip
    return Prepared(world, corpus, retriever, literature)


def session_config(settings: Level5Settings) -> SessionConfig:
    """Session knobs from the settings."""
    return SessionConfig(
        replicates=settings.replicates,
        control_replicates=settings.control_replicates,
        max_experiments=settings.max_experiments,
        target_f1=settings.target_f1,
        prior_threshold=settings.prior_threshold,
        stop_rule=settings.stopping.rule,
        confirmations=settings.stopping.confirmations,
        stop_probability=settings.stopping.probability,
        posterior_samples=settings.stopping.posterior_samples,
        adaptive_prior=settings.stopping.adaptive_prior,
        budget=z3_budget(settings),
    )


def z3_budget(settings: Level5Settings) -> Z3Budget:
    """The solver's thinking budget of these settings."""
    b = settings.budgets
    return Z3Budget(b.z3_check_rlimit, b.z3_decision_rlimit, b.wall_seconds)


def scripted_reviewer(world: GeneNetwork, settings: Level5Settings, seed: int) -> ScriptedReviewer:
    """The stand-in person: a few genes of the world are essential (no knock-outs)."""
    rng = np.random.default_rng(seed + 17)
    count = min(settings.essential_genes, world.n_genes)
    essential = {str(g) for g in rng.choice(world.genes, size=count, replace=False)}
    return ScriptedReviewer(essential=essential)


def tell_literature(prepared: Prepared, echo: Callable[[str], None], pairs: int = 3) -> None:
    """Print what the agent retrieved and hypothesised."""
    world, lit = prepared.world, prepared.literature
    genes = world.genes
    echo(f"lab genes ({world.n_genes}): {', '.join(genes)}")
    echo(f"literature: {len(prepared.corpus)} abstracts")
    if lit.note:
        echo(f"WARNING: {lit.note}")
    ranked = sorted(lit.support.items(), key=lambda kv: -abs(lit.prior[kv[0]]))
    echo(f"hypotheses from the literature (language model on retrieved passages): {len(ranked)}")
    for (i, j), support in ranked[:pairs]:
        echo(f"  retrieved for '{pair_question(genes[i], genes[j])}':")
        for hyp, text in support[:2]:
            echo(f'    "{text}"')
            echo(f"      -> {hyp.text}  (sign confidence {hyp.sign_confidence:.2f})")
    strong = lit.claims()
    listed = ", ".join(
        f"{genes[c.source]} {'activates' if c.sign > 0 else 'inhibits'} {genes[c.target]}"
        for c in strong
    )
    echo(f"prior network ({len(strong)} edges): {listed}")


def _count(experiments: int) -> str:
    return f"{experiments} experiment{'' if experiments == 1 else 's'}"


def tell_result(result: SessionResult, echo: Callable[[str], None], target_f1: float = 0.9) -> None:
    """Print the final network against the hidden truth."""
    world = result.world
    genes = world.genes
    truth = world.adjacency
    echo("final network vs hidden truth:")
    n = world.n_genes
    for i in range(n):
        for j in range(n):
            est, tru = result.estimate[i, j], truth[i, j]
            if not est and not tru:
                continue
            verb = {1: "activates", -1: "inhibits"}
            if est and tru:
                mark = "found" if est == tru else "found, WRONG SIGN"
                text = f"{genes[i]} {verb[int(est)]} {genes[j]}"
            elif tru:
                mark, text = "MISSED", f"{genes[i]} {verb[int(tru)]} {genes[j]}"
            else:
                mark, text = "FALSE EDGE", f"{genes[i]} {verb[int(est)]} {genes[j]}"
            echo(f"  {mark:18s} {text}")
    s = result.scores
    if result.experiments_to_target is None:
        reached = f"did not reach F1 >= {target_f1:g} within {_count(result.experiments)}"
    else:
        reached = f"reached F1 >= {target_f1:g} after {_count(result.experiments_to_target)}"
    echo(f"experiments: {result.experiments}; {reached}")
    echo(f"edge precision {s.precision:.2f}, recall {s.recall:.2f}, F1 {s.f1:.2f}, "
         f"sign accuracy {s.sign_accuracy:.2f}")  # fmt: skip
    echo(f"wrong literature relations rejected by evidence: {result.wrong_rejected}/"
         f"{result.wrong_total}; true ones wrongly rejected: {result.true_rejected}/"
         f"{result.true_total}")  # fmt: skip


def discover(
    seed: int,
    settings: Level5Settings,
    lm: TrainResult,
    policy: PolicyNet,
    reviewer: Reviewer | None,
    log: DecisionLog | None,
    echo: Callable[[str], None],
) -> tuple[SessionResult, float]:
    """Prepare the world, tell the literature, run the combined agent, tell the result."""
    start = time.perf_counter()
    prepared = prepare_world(seed, settings, lm)
    tell_literature(prepared, echo)
    reviewer = reviewer or scripted_reviewer(prepared.world, settings, seed)
    if isinstance(reviewer, ScriptedReviewer) and reviewer.essential:
        echo(f"reviewer: {', '.join(sorted(reviewer.essential))} essential (no knock-outs)")
    result = run_session(
        prepared.world,
        CombinedDesigner(policy),
        lab_seed=seed + 1,
        literature=prepared.literature,
        corpus=prepared.corpus,
        reviewer=reviewer,
        config=session_config(settings),
        log=log,
        echo=echo,
    )
    tell_result(result, echo, settings.target_f1)
    return result, time.perf_counter() - start


def save_session(
    out: Path,
    seed: int,
    story: list[str],
    result: SessionResult,
    seconds: float,
    reviewer: str,
    stopped_by: str | None = None,
) -> None:
    """Write ``session_story.txt`` and ``metrics.json`` (atomically) for a finished session,
    also one a reviewer stopped early: ``reviewer`` names who reviewed (scripted, terminal, web),
    ``stopped_by`` why the reviewer stopped it, if they did."""
    write_text(out / "session_story.txt", "\n".join(story) + "\n")
    s = result.scores
    write_json(out / "metrics.json", {
        "seed": seed, "reviewer": reviewer, "stopped_by": stopped_by,
        "experiments": result.experiments,
        "experiments_to_target": result.experiments_to_target, "precision": s.precision,
        "recall": s.recall, "f1": s.f1, "sign_accuracy": s.sign_accuracy,
        "f1_curve": result.f1_curve, "wrong_literature_rejected": result.wrong_rejected,
        "wrong_literature_total": result.wrong_total, "seconds": seconds,
    })  # fmt: skip
