"""The level-5 benchmark: every design strategy at equal information, the agent's ablation, and
a matrix of lab sizes, noise levels and literature error rates, on held-out worlds.

Per held-out world:

- **Equal information.** Random, symbolic (z3 split score) and RL design each run without and
  with the literature prior (the same prior the agent reads: retrieval + LM); the agent runs
  with it, and without it (its "literature" ablation). Every strategy uses the same estimator,
  the same lab noise stream, the same stopping rule (run until the grader sees edge F1 >= 0.9;
  a world never reaching it counts as ``n_genes``) — only the choice of experiments differs.
- **The agent's own stop.** The agent also runs its stopping rule (it never sees the truth);
  the session goes on until both the rule has fired and the grader has seen the target, so the
  experiments and F1 at the agent's own stop and the oracle's count come from one run.
- **Ablation.** The agent without one part at a time (retrieval, the LM's reading, the RL
  policy, the z3 designer, the human review, the literature), oracle count, with a paired
  bootstrap interval of the difference over worlds.
- **Thinking time.** Seconds of every design decision and of every session (per strategy).

The matrix varies one factor at a time around the default cell (12 genes, noise ×1, wrong-sign
rate 0.12): a full cross product is too expensive on the shared 2-core machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import product

import numpy as np
from tqdm import tqdm

from level5_discovery.agent import (
    CombinedDesigner,
    Designer,
    PolicyNet,
    RandomDesigner,
    RLDesigner,
    SymbolicDesigner,
)
from level5_discovery.human import ScriptedReviewer
from level5_discovery.lm import TrainResult, keyword_hypotheses
from level5_discovery.logic import BUDGET_EVENTS
from level5_discovery.loop import SessionConfig, SessionResult, run_session
from level5_discovery.retrieval import pair_question, recall_at_k
from level5_discovery.session import prepare_world, scripted_reviewer, session_config
from level5_discovery.settings import Level5Settings
from level5_discovery.train import RENAMED_POOL, evaluate_lm, lm_model, models_dir, rl_policy
from ml_common.paths import PROJECT_ROOT
from ml_common.stats import bootstrap_ci

BASELINES = ("random", "symbolic", "rl")
ABLATIONS = ("retrieval", "lm", "rl_policy", "z3", "human_review", "literature")


def _to_target(result: SessionResult, cap: int) -> int:
    return cap if result.experiments_to_target is None else result.experiments_to_target


def measure_session_seconds() -> float:
    """Wall time of ``python -m level5_discovery run`` (what ``make level5`` runs)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "level5_discovery", "run"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


@dataclass
class WorldOutcome:
    """Everything measured on one held-out world."""

    counts: dict[str, int] = field(default_factory=dict)  # strategy -> experiments to target
    seconds: dict[str, float] = field(default_factory=dict)  # strategy -> session seconds
    decision_seconds: list[float] = field(default_factory=list)
    agent: SessionResult | None = None
    read_seconds: float = 0.0
    recall5: float = 0.0
    recall5_dense: float = 0.0


def _designer(name: str, policy: PolicyNet) -> Designer:
    return {"random": RandomDesigner, "symbolic": SymbolicDesigner}.get(
        name, lambda: RLDesigner(policy)
    )()


def run_world(
    seed: int,
    settings: Level5Settings,
    lm: TrainResult,
    policy: PolicyNet,
    strategies: tuple[str, ...],
    ablations: tuple[str, ...] = (),
    retrieval_recall: bool = False,
    echo: Callable[[str], None] | None = None,
) -> WorldOutcome:
    """Run the named strategies (``random``, ``random_lit``, …, ``agent``) and agent ablations
    on one held-out world; ``echo`` gets one progress line per session."""
    n = settings.n_genes
    out = WorldOutcome()
    started = time.perf_counter()
    prepared = prepare_world(seed, settings, lm)
    out.read_seconds = time.perf_counter() - started
    world = prepared.world
    base = replace(session_config(settings), max_experiments=n)
    oracle = replace(base, stop_rule="none", run_to_target=True)

    def session(key: str, designer: Designer, cfg: SessionConfig, **kw: object) -> SessionResult:
        t0 = time.perf_counter()
        result = run_session(world, designer, lab_seed=seed + 1, config=cfg, **kw)
        out.seconds[key] = time.perf_counter() - t0
        out.counts[key] = _to_target(result, n)
        out.decision_seconds.extend(result.decision_seconds)
        if echo is not None:
            echo(f"  world {seed} {key}: {out.counts[key]} knock-outs to F1 >= "
                 f"{cfg.target_f1} ({out.seconds[key]:.1f} s)")  # fmt: skip
        return result

    for name in strategies:
        if name == "agent":
            out.agent = session(
                "agent", CombinedDesigner(policy), replace(base, run_to_target=True),
                literature=prepared.literature, corpus=prepared.corpus,
                reviewer=scripted_reviewer(world, settings, seed),
            )  # fmt: skip
            out.seconds["agent"] += out.read_seconds
            continue
        lit = name.endswith("_lit")
        designer = _designer(name.removesuffix("_lit"), policy)
        session(name, designer, oracle, literature=prepared.literature if lit else None)
    for part in ablations:
        literature = prepared.literature
        designer = CombinedDesigner(policy)
        part_reviewer = scripted_reviewer(world, settings, seed)
        if part == "retrieval":  # the LM reads every abstract for every pair
            literature = prepare_world(seed, settings, lm, read_all=True).literature
        elif part == "lm":  # a keyword reader instead of the language model
            literature = prepare_world(seed, settings, lm, keyword_hypotheses).literature
        elif part == "rl_policy":
            designer = CombinedDesigner(None)
        elif part == "z3":
            designer = CombinedDesigner(policy, use_z3=False)
        elif part == "human_review":  # every proposal approved as it is
            part_reviewer = ScriptedReviewer(essential=set())
        elif part == "literature":
            literature = None
        session(f"agent_without_{part}", designer, oracle, literature=literature,
                reviewer=part_reviewer)  # fmt: skip
    if retrieval_recall:
        relevant: dict[tuple[str, str], set[int]] = {}
        for doc in prepared.corpus:
            if doc.kind != "irrelevant":
                relevant.setdefault((doc.claim[0], doc.claim[2]), set()).add(doc.doc_id)
        questions = [pair_question(a, b) for a, b in relevant]
        retriever = prepared.retriever
        out.recall5 = recall_at_k(retriever.search(questions, k=5), list(relevant.values()))
        bonus, retriever.symbol_bonus = retriever.symbol_bonus, 0.0
        out.recall5_dense = recall_at_k(retriever.search(questions, k=5),
                                        list(relevant.values()))  # fmt: skip
        retriever.symbol_bonus = bonus
    return out


def paired_bootstrap(
    ablated: list[int], full: list[int], resamples: int, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of (ablated − full) over worlds and its 95% percentile bootstrap interval
    (``ml_common.stats.bootstrap_ci``: worlds resampled)."""
    diff = np.asarray(ablated, float) - np.asarray(full, float)
    low, high = bootstrap_ci(diff, resamples=resamples, seed=seed)
    return float(diff.mean()), float(low), float(high)


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0}
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": float(p50), "p95": float(p95), "max": float(max(values))}


def _mean(outcomes: list[WorldOutcome], key: str) -> float:
    return float(np.mean([o.counts[key] for o in outcomes]))


def matrix_cells(settings: Level5Settings) -> list[dict]:
    """The default cell, the literature cross (coverage × invented edges × wrong-sign rate) at
    the default lab size, and the lab sizes at the default literature."""
    m = settings.bench.matrix
    lit = settings.literature
    default = {"n_genes": settings.n_genes, "coverage": lit.coverage,
               "false_edges": lit.false_edges, "wrong_sign_rate": lit.wrong_sign_rate}  # fmt: skip
    cells = [default]
    for cov, false, wrong in product(m.coverage, m.false_edges, m.wrong_sign_rate):
        cell = {**default, "coverage": cov, "false_edges": false, "wrong_sign_rate": wrong}
        if cell not in cells:
            cells.append(cell)
    cells += [{**default, "n_genes": g} for g in m.genes if g != settings.n_genes]
    return cells


def cell_key(cell: dict) -> str:
    """A readable key of a cell (the matrix runner seeds nothing from it: worlds have seeds)."""
    return (f"genes{cell['n_genes']}-cov{cell['coverage']:g}-false{cell['false_edges']}"
            f"-wrong{cell['wrong_sign_rate']:g}")  # fmt: skip


def cell_settings(settings: Level5Settings, cell: dict) -> Level5Settings:
    """The settings of one matrix cell (its lab size and its literature's error rates)."""
    literature = settings.literature.model_copy(update={
        k: cell[k] for k in ("coverage", "false_edges", "wrong_sign_rate")})  # fmt: skip
    return settings.model_copy(
        update={"n_genes": cell["n_genes"], "max_experiments": cell["n_genes"],
                "literature": literature}  # fmt: skip
    )


MATRIX_STRATEGIES = ("random", "random_lit", "symbolic_lit", "rl_lit", "agent")
LIT_BASELINES = ("random_lit", "symbolic_lit", "rl_lit")


def verification_number(adjacency: np.ndarray) -> int:
    """Fewest single-gene interventions that verify the network: a minimum vertex cover of its
    covered edges (u→v with pa(v) = pa(u) ∪ {u}; Choo, Shiragur & Bhattacharyya 2022).

    Covered edges form a forest, so taking the neighbour of a leaf, repeatedly, is optimal.
    """
    edges = adjacency != 0
    n = edges.shape[0]
    parents = [set(np.flatnonzero(edges[:, v])) for v in range(n)]
    neighbours: dict[int, set[int]] = {v: set() for v in range(n)}
    for u, v in zip(*np.nonzero(edges), strict=True):
        if parents[v] == parents[u] | {u}:
            neighbours[int(u)].add(int(v))
            neighbours[int(v)].add(int(u))
    cover = 0
    while any(neighbours.values()):
        leaf = next(v for v, nb in neighbours.items() if len(nb) == 1)
        (hub,) = neighbours[leaf]
        cover += 1
        for v in neighbours.pop(hub):
            neighbours[v].discard(hub)
    return cover


def world_row(outcome: WorldOutcome, world_seed: int, n: int) -> dict:
    """What one world contributes to its cell (JSON-able)."""
    agent = outcome.agent
    fired = agent.self_stop_experiments is not None and agent.self_stopped
    return {
        "seed": world_seed,
        "counts": outcome.counts,
        "verification": verification_number(agent.world.adjacency),
        "self_stopped": bool(fired),
        "self_stop_experiments": agent.self_stop_experiments,
        "self_stop_f1": agent.self_stop_f1,
        "true_rejected": agent.true_rejected,
        "true_total": agent.true_total,
        "wrong_rejected": agent.wrong_rejected,
        "wrong_total": agent.wrong_total,
        "reliability": agent.reliability,
        # The agent's curves: any stopping probability's stop can be read off them afterwards.
        "confidence": agent.confidence_curve,
        "f1": agent.f1_curve,
        "seconds": outcome.seconds,
        "n_genes": n,
    }


def run_cell_case(params: dict) -> dict:
    """One matrix case: the worlds ``params['seeds']`` of one cell, every matrix strategy.

    A module-level function of JSON-able params (the matrix runner's case function): settings
    as a dict, the cell, the seeds, and where the trained models are cached (a case may run in
    a fresh process with its own artifacts folder).
    """
    if params.get("models_dir"):
        os.environ["LEVEL5_MODELS_DIR"] = params["models_dir"]
    settings = Level5Settings.model_validate(params["settings"])
    cs = cell_settings(settings, params["cell"])
    lm, policy = lm_model(settings, progress=False), rl_policy(settings, progress=False)
    rows = []
    for seed in params["seeds"]:
        outcome = run_world(seed, cs, lm, policy, MATRIX_STRATEGIES)
        rows.append(world_row(outcome, seed, cs.n_genes))
        print(f"{cell_key(params['cell'])} world {seed}: "
              + ", ".join(f"{k} {v}" for k, v in outcome.counts.items()), flush=True)
    return {"cell": params["cell"], "worlds": rows}


def ratio_ci(
    best: list[float], agent: list[float], resamples: int, seed: int = 0
) -> tuple[float, float, float]:
    """mean(best) / mean(agent) over worlds and its 95% paired percentile bootstrap interval
    (``ml_common.stats.bootstrap_ci`` with each world a cluster: both strategies ran on the
    same worlds, so they are resampled together)."""
    b, a = np.asarray(best, float), np.asarray(agent, float)

    def ratio_of_means(weights: np.ndarray) -> float:
        return float(_ratio(np.average(b, weights=weights), np.average(a, weights=weights)))

    interval = bootstrap_ci(
        clusters=np.arange(len(b)), statistic=ratio_of_means, resamples=resamples, seed=seed
    )
    return float(_ratio(b.mean(), a.mean())), float(interval.low), float(interval.high)


def _ratio(best: np.ndarray | float, agent: np.ndarray | float) -> np.ndarray:
    """best / agent, where both needing no experiment is a tie (1) and only the agent, inf."""
    best, agent = np.asarray(best, float), np.asarray(agent, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(agent > 0, best / np.where(agent > 0, agent, 1.0),
                        np.where(best > 0, np.inf, 1.0))  # fmt: skip


def restop(rows: list[dict], threshold: float) -> list[dict]:
    """The rows as if the agent had stopped at ``threshold`` (read off its recorded curves;
    valid for thresholds up to the one the sessions ran with)."""
    out = []
    for r in rows:
        k = stops_at(r["confidence"], threshold)
        last = len(r["f1"]) - 1
        out.append({**r, "self_stopped": k is not None,
                    "self_stop_experiments": last if k is None else k,
                    "self_stop_f1": r["f1"][last if k is None else k]})  # fmt: skip
    return out


def cell_summary(cell: dict, rows: list[dict], resamples: int) -> dict:
    """Means, the best equal-information baseline, the ratio with its interval, the stop."""
    means = {k: float(np.mean([r["counts"][k] for r in rows])) for k in MATRIX_STRATEGIES}
    best_key = min(LIT_BASELINES, key=lambda k: means[k])
    ratio, low, high = ratio_ci([r["counts"][best_key] for r in rows],
                                [r["counts"]["agent"] for r in rows], resamples)  # fmt: skip
    stopped = [r for r in rows if r["self_stopped"]]
    share = (float(np.mean([r["self_stop_f1"] >= 0.9 - 1e-12 for r in stopped]))
             if stopped else None)  # fmt: skip
    return {
        **cell,
        "key": cell_key(cell),
        "worlds": len(rows),
        "experiments_mean": means,
        "best_baseline_equal_info": best_key,
        "agent_vs_best_equal_info_ratio": ratio,
        "agent_vs_best_ratio_ci95": [low, high],
        "agent_below_best_baseline": high < 1.0,
        "agent_vs_random_ratio": means["random"] / max(means["agent"], 1e-9),
        "self_stopped_worlds": len(stopped),
        "self_stop_f1_ge_09_share": share,
        "agent_self_stop_experiments_mean": float(
            np.mean([r["self_stop_experiments"] for r in rows])
        ),
        "agent_self_stop_f1_mean": float(np.mean([r["self_stop_f1"] for r in rows])),
        "verification_mean": float(np.mean([r["verification"] for r in rows])),
        "experiments_over_verification_mean": float(np.mean(
            [r["counts"]["agent"] / max(r["verification"], 1) for r in rows])),  # fmt: skip
        "true_literature_rejected": [sum(r["true_rejected"] for r in rows),
                                     sum(r["true_total"] for r in rows)],  # fmt: skip
        "world_seconds": _quantiles([s for r in rows for s in r["seconds"].values()]),
        "world_rows": rows,
    }


def matrix_cases(settings: Level5Settings, include_default: bool) -> dict[str, dict]:
    """One case per cell: its evaluation worlds (fewer at 20 genes and more)."""
    m = settings.bench.matrix
    cases = {}
    for k, cell in enumerate(matrix_cells(settings)):
        if k == 0 and not include_default:
            continue
        count = m.worlds if cell["n_genes"] <= 16 else m.worlds_large
        seeds = list(range(settings.bench.first_seed, settings.bench.first_seed + count))
        cases[cell_key(cell)] = {"settings": settings.model_dump(mode="json"), "cell": cell,
                                 "seeds": seeds, "models_dir": str(models_dir())}  # fmt: skip
    return cases


def run_matrix(
    settings: Level5Settings,
    lm: TrainResult,
    policy: PolicyNet,
    default_rows: list[dict] | None,
    echo: Callable[[str], None] = print,
) -> list[dict]:
    """Every cell of the matrix; the default cell from the main benchmark's worlds when given
(left out otherwise: ``bench --matrix-only``, merged with the main run later).

    The models are trained once here (cached); each cell is one case of
    :func:`run_cell_case`. The policy is the default one (trained on 6–12-gene worlds at the
    default literature): elsewhere in the matrix it is validated, not retrained.
    """
    del lm, policy  # trained and cached by the caller; every case loads them from the cache
    cases = matrix_cases(settings, include_default=False)
    rows = _run_cases(cases, settings, echo)
    summaries = []
    if default_rows is not None:
        summaries.append(cell_summary(matrix_cells(settings)[0], default_rows,
                                      settings.bench.bootstrap))  # fmt: skip
    for key, case in cases.items():
        summary = cell_summary(case["cell"], rows[key]["worlds"], settings.bench.bootstrap)
        echo(f"matrix cell {key}: agent {summary['experiments_mean']['agent']:.2f}, best "
             f"baseline {summary['best_baseline_equal_info']} "
             f"{summary['experiments_mean'][summary['best_baseline_equal_info']]:.2f}")
        summaries.append(summary)
    return summaries


def _run_cases(
    cases: dict[str, dict], settings: Level5Settings, echo: Callable[[str], None]
) -> dict[str, dict]:
    """Run the cells on the shared matrix runner (``ml_common.matrix``; ``bench.runner``):
    a Dask LocalCluster by default, a scheduler with ``--dask-address``. Every world seeds
    itself, so the rows do not depend on where or in which order the cells ran."""
    from ml_common.matrix import run_matrix as run_on_runner

    result = run_on_runner(
        run_cell_case, cases, settings.bench.runner, name="level5-matrix", progress=echo
    )
    result.raise_if_failed()
    return result.rows


def run_benchmark(
    settings: Level5Settings, session_seconds: bool = True, matrix: bool = True
) -> tuple[dict, dict]:
    """Returns (the issue's flat keys, details for the README)."""
    lm = lm_model(settings)
    policy = rl_policy(settings)
    n = settings.n_genes
    BUDGET_EVENTS.update(rlimit=0, wall=0)
    strategies = (*BASELINES, *(f"{b}_lit" for b in BASELINES), "agent")
    outcomes: list[WorldOutcome] = []
    for k in tqdm(range(settings.bench.worlds), desc="held-out worlds", mininterval=5):
        outcomes.append(run_world(settings.bench.first_seed + k, settings, lm, policy, strategies,
                                  ABLATIONS, retrieval_recall=True, echo=tqdm.write))  # fmt: skip
    agents = [o.agent for o in outcomes]
    means = {s: _mean(outcomes, s) for s in strategies}
    best_key = min((f"{b}_lit" for b in BASELINES), key=lambda k: means[k])
    best_no_lit = min(BASELINES, key=lambda k: means[k])
    resamples = settings.bench.bootstrap
    full = [o.counts["agent"] for o in outcomes]
    ablation = {}
    ablation_ci = {}
    for part in ABLATIONS:
        key = f"agent_without_{part}"
        ablation[part] = _mean(outcomes, key)
        diff, low, high = paired_bootstrap([o.counts[key] for o in outcomes], full, resamples)
        ablation_ci[part] = {"mean": ablation[part], "difference": diff, "ci95": [low, high]}
    decisions = _quantiles([s for o in outcomes for s in o.decision_seconds])
    world_secs = _quantiles([s for o in outcomes for s in o.seconds.values()])
    per_strategy_secs = {s: _quantiles([o.seconds[s] for o in outcomes]) for s in strategies}
    finals = [a.scores for a in agents]
    lm_eval = evaluate_lm(lm, settings)
    # The same held-out worlds with other gene names (the model was trained on the default ones).
    lm_renamed = evaluate_lm(lm, settings, RENAMED_POOL)
    lit_worth = means[best_no_lit] / max(means[best_key], 1e-9)
    keys = {
        "n_genes": n,
        "worlds": len(outcomes),  # measured: the worlds that ran, not the configured count
        "experiments_random_mean": means["random"],
        "experiments_symbolic_mean": means["symbolic"],
        "experiments_rl_mean": means["rl"],
        "experiments_random_lit_mean": means["random_lit"],
        "experiments_symbolic_lit_mean": means["symbolic_lit"],
        "experiments_rl_lit_mean": means["rl_lit"],
        "experiments_agent_mean": means["agent"],
        "experiments_agent_no_lit_mean": ablation["literature"],
        "best_baseline_equal_info_mean": means[best_key],
        "best_baseline_equal_info": best_key,
        "agent_vs_best_equal_info_ratio": means[best_key] / max(means["agent"], 1e-9),
        "agent_vs_random_ratio": means["random"] / max(means["agent"], 1e-9),
        "literature_worth_ratio": lit_worth,
        "agent_self_stop_experiments_mean": float(
            np.mean([a.self_stop_experiments for a in agents])
        ),
        "agent_self_stop_f1_mean": float(np.mean([a.self_stop_f1 for a in agents])),
        **{f"ablation_without_{p}_mean": v for p, v in ablation.items()},
        "decision_seconds_p50": decisions["p50"],
        "decision_seconds_p95": decisions["p95"],
        "decision_seconds_max": decisions["max"],
        "world_seconds_p50": world_secs["p50"],
        "world_seconds_p95": world_secs["p95"],
        "world_seconds_max": world_secs["max"],
        "z3_budget_exhausted": BUDGET_EVENTS["rlimit"],
        "z3_wallclock_safety_net_fired": BUDGET_EVENTS["wall"],
        "f1_agent_mean": float(np.mean([s.f1 for s in finals])),
        "sign_accuracy_agent": float(np.mean([s.sign_accuracy for s in finals])),
        "retrieval_recall5": float(np.mean([o.recall5 for o in outcomes])),
        "wrong_literature_rejected_rate": sum(a.wrong_rejected for a in agents)
        / max(sum(a.wrong_total for a in agents), 1),
        "lm_perplexity": float(lm_eval["perplexity"]),
        "lm_parse_rate": float(lm_eval["parse_rate"]),
        "lm_parse_rate_renamed": float(lm_renamed["constrained_parse_rate"]),
        "session_seconds": measure_session_seconds() if session_seconds else float("nan"),
    }
    details = {
        "experiments_per_world": {k: [o.counts[k] for o in outcomes] for k in outcomes[0].counts},
        "experiments_std": {k: float(np.std([o.counts[k] for o in outcomes]))
                            for k in outcomes[0].counts},  # fmt: skip
        "ablation": ablation_ci,
        "session_seconds_per_strategy": per_strategy_secs,
        "literature_read_seconds": _quantiles([o.read_seconds for o in outcomes]),
        "agent_self_stop_per_world": [[a.self_stop_experiments, a.self_stop_f1] for a in agents],
        "precision_agent_mean": float(np.mean([s.precision for s in finals])),
        "recall_agent_mean": float(np.mean([s.recall for s in finals])),
        "f1_literature_prior_mean": float(np.mean([a.f1_curve[0] for a in agents])),
        "retrieval_recall5_dense_only": float(np.mean([o.recall5_dense for o in outcomes])),
        "wrong_literature_relations": sum(a.wrong_total for a in agents),
        "true_literature_relations": sum(a.true_total for a in agents),
        "true_literature_rejected_rate": sum(a.true_rejected for a in agents)
        / max(sum(a.true_total for a in agents), 1),
        "lm_constrained_accuracy": lm_eval["constrained_accuracy"],
        "lm_constrained_accuracy_renamed": lm_renamed["constrained_accuracy"],
        "lm_free_examples": lm_eval["free_examples"],
    }
    default_rows = [world_row(o, settings.bench.first_seed + k, n) for k, o in enumerate(outcomes)]
    details["default_cell"] = cell_summary(matrix_cells(settings)[0], default_rows, resamples)
    details["default_cell_worlds"] = default_rows
    keys["self_stop_f1_ge_09_share_default"] = details["default_cell"]["self_stop_f1_ge_09_share"]
    keys["experiments_over_verification_mean"] = details["default_cell"][
        "experiments_over_verification_mean"]
    keys["true_literature_rejected_rate"] = details["true_literature_rejected_rate"]
    if matrix:
        cells = run_matrix(settings, lm, policy, default_rows, echo=lambda s: tqdm.write(s))
        details["matrix"] = cells
        keys.update(matrix_keys(cells, settings))
        keys["z3_budget_exhausted"] = BUDGET_EVENTS["rlimit"]
        keys["z3_wallclock_safety_net_fired"] = BUDGET_EVENTS["wall"]
    return keys, details


def matrix_keys(cells: list[dict], settings: Level5Settings | None = None) -> dict:
    """The issue's flat keys about the matrix."""
    del settings
    shares = [c["self_stop_f1_ge_09_share"] for c in cells
              if c["self_stop_f1_ge_09_share"] is not None]  # fmt: skip
    rejected = sum(c["true_literature_rejected"][0] for c in cells)
    stated = sum(c["true_literature_rejected"][1] for c in cells)
    return {
        "matrix_cells": len(cells),
        "cells_agent_below_best_baseline": sum(c["agent_below_best_baseline"] for c in cells),
        "worst_cell_ratio": min(c["agent_vs_best_equal_info_ratio"] for c in cells),
        "self_stop_f1_ge_09_share_min": min(shares) if shares else None,
        "cells_without_a_self_stop": sum(c["self_stop_f1_ge_09_share"] is None for c in cells),
        "experiments_over_verification_mean": float(np.mean(
            [c["experiments_over_verification_mean"] for c in cells])),  # fmt: skip
        "true_literature_rejected_rate_matrix": rejected / max(stated, 1),
    }


def markdown_tables(keys: dict, details: dict) -> str:
    """The README's benchmark tables, written by ``bench`` to ``artifacts/level5/bench_tables.md``
    so that every figure in the README comes from the command."""
    counts = details["experiments_per_world"]
    std = details["experiments_std"]

    def cell(key: str) -> str:
        return f"{np.mean(counts[key]):.2f} ± {std[key]:.2f}"

    lines = [
        f"Knock-outs to edge F1 ≥ 0.9 (mean ± sd over {keys['worlds']} held-out worlds, "
        f"{keys['n_genes']} genes; a world never reaching it counts as {keys['n_genes']}):",
        "",
        "| designer | without literature | with literature |",
        "|---|---|---|",
    ]
    for name in BASELINES:
        lines.append(f"| {name} | {cell(name)} | {cell(name + '_lit')} |")
    lines.append(f"| agent | {cell('agent_without_literature')} | **{cell('agent')}** |")
    lines += [
        "",
        f"- best baseline at equal information: `{keys['best_baseline_equal_info']}` "
        f"{keys['best_baseline_equal_info_mean']:.2f}; agent {keys['experiments_agent_mean']:.2f}"
        f" → **{keys['agent_vs_best_equal_info_ratio']:.2f}×**",
        f"- what the literature is worth (best baseline without / with it): "
        f"{keys['literature_worth_ratio']:.2f}×; the agent's lead over random design without "
        f"literature: {keys['agent_vs_random_ratio']:.2f}×",
        f"- the agent's own stop: {keys['agent_self_stop_experiments_mean']:.2f} knock-outs, "
        f"edge F1 there {keys['agent_self_stop_f1_mean']:.3f}",
        "",
        "| agent without | knock-outs | difference vs the agent (95% paired bootstrap) |",
        "|---|---|---|",
    ]
    for part, row in details["ablation"].items():
        low, high = row["ci95"]
        lines.append(f"| {part} | {row['mean']:.2f} | {row['difference']:+.2f} "
                     f"[{low:+.2f}, {high:+.2f}] |")  # fmt: skip
    lines += [
        "",
        "| thinking time (s) | p50 | p95 | max |",
        "|---|---|---|---|",
        f"| per design decision (all strategies) | {keys['decision_seconds_p50']:.2f} | "
        f"{keys['decision_seconds_p95']:.2f} | {keys['decision_seconds_max']:.2f} |",
        f"| per session (all strategies) | {keys['world_seconds_p50']:.2f} | "
        f"{keys['world_seconds_p95']:.2f} | {keys['world_seconds_max']:.2f} |",
    ]
    for name, q in details["session_seconds_per_strategy"].items():
        lines.append(f"| per session, {name} | {q['p50']:.2f} | {q['p95']:.2f} | {q['max']:.2f} |")
    lines.append(f"\nz3 budget exhausted {keys['z3_budget_exhausted']} times (deterministic "
                 f"fallback); wall-clock safety net fired {keys['z3_wallclock_safety_net_fired']} "
                 "times.")  # fmt: skip
    if "matrix" in details:
        lines += [
            "",
            "| genes | coverage | invented | wrong-sign | worlds | random | random+lit | "
            "symbolic+lit | RL+lit | agent | ratio vs best equal-info [95% CI] | "
            "self-stops: n, share F1 ≥ 0.9 | experiments / verification |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in details["matrix"]:
            m = c["experiments_mean"]
            low, high = c["agent_vs_best_ratio_ci95"]
            share = c["self_stop_f1_ge_09_share"]
            lines.append(
                f"| {c['n_genes']} | {c['coverage']:g} | {c['false_edges']} | "
                f"{c['wrong_sign_rate']:.2f} | {c['worlds']} | {m['random']:.2f} | "
                f"{m['random_lit']:.2f} | {m['symbolic_lit']:.2f} | {m['rl_lit']:.2f} | "
                f"{m['agent']:.2f} | {c['agent_vs_best_equal_info_ratio']:.2f}× "
                f"[{low:.2f}, {high:.2f}] | {c['self_stopped_worlds']}, "
                f"{'—' if share is None else f'{share:.2f}'} | "
                f"{c['experiments_over_verification_mean']:.2f} |"
            )
    return "\n".join(lines) + "\n"


CALIBRATION_GRID = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)


def calibration_case(params: dict) -> dict:
    """Agent sessions on tuning worlds of one cell, recording after every experiment the
    posterior probability that the best guess has F1 >= target and the true F1 (a case of
    the matrix runner, like :func:`run_cell_case`)."""
    if params.get("models_dir"):
        os.environ["LEVEL5_MODELS_DIR"] = params["models_dir"]
    settings = Level5Settings.model_validate(params["settings"])
    cs = cell_settings(settings, params["cell"])
    lm, policy = lm_model(settings, progress=False), rl_policy(settings, progress=False)
    # Run until the strictest threshold of the grid fires (or the budget): every threshold's
    # stopping point then lies on the recorded curve.
    cfg = replace(session_config(cs), max_experiments=cs.n_genes, stop_rule="posterior",
                  stop_probability=max(CALIBRATION_GRID), run_to_target=True)  # fmt: skip
    rows = []
    for seed in params["seeds"]:
        prepared = prepare_world(seed, cs, lm)
        result = run_session(prepared.world, CombinedDesigner(policy), lab_seed=seed + 1,
                             literature=prepared.literature, config=cfg,
                             reviewer=scripted_reviewer(prepared.world, cs, seed))  # fmt: skip
        rows.append({"seed": seed, "confidence": result.confidence_curve, "f1": result.f1_curve})
        print(f"calibration {cell_key(params['cell'])} world {seed}: "
              f"{len(result.f1_curve) - 1} experiments", flush=True)
    return {"cell": params["cell"], "worlds": rows}


def stops_at(confidence: list[float], threshold: float) -> int | None:
    """Experiments at which the posterior rule with this threshold stops (None: never; the
    control alone never stops it)."""
    for k, value in enumerate(confidence):
        if k >= 1 and value >= threshold:
            return k
    return None


def choose_threshold(
    rows: list[dict],
    target_f1: float = 0.9,
    share: float = 0.95,
    min_stopped: int = 20,
    fallback: float = max(CALIBRATION_GRID),
) -> dict:
    """The smallest threshold of the grid whose self-stops reach ``target_f1`` in at least
    ``share`` of the tuning sessions that stop, counting only thresholds with at least
    ``min_stopped`` stops (a share of 95 % means nothing on a handful of sessions). With no
    such threshold the calibration is not met and ``fallback`` is kept."""
    table = []
    for threshold in CALIBRATION_GRID:
        stops = [(r, stops_at(r["confidence"], threshold)) for r in rows]
        fired = [(r, k) for r, k in stops if k is not None]
        good = sum(r["f1"][k] >= target_f1 - 1e-12 for r, k in fired)
        table.append({"threshold": threshold, "stopped": len(fired), "sessions": len(rows),
                      "share_f1_ok": good / len(fired) if fired else None,
                      "experiments_mean": float(np.mean([k for _, k in fired])) if fired
                      else None})  # fmt: skip
    ok = [t for t in table if t["share_f1_ok"] is not None and t["share_f1_ok"] >= share
          and t["stopped"] >= min_stopped]  # fmt: skip
    chosen = ok[0]["threshold"] if ok else fallback
    return {"chosen": chosen, "met": bool(ok), "table": table}


def calibrate(
    settings: Level5Settings, cells: int | None = None, echo: Callable[[str], None] = print
) -> dict:
    """Calibrate ``stopping.probability`` on the tuning worlds (never the evaluation ones):
    the cells of the matrix at 16 genes or fewer (the first ``cells`` of them when given),
    ``bench.tuning_worlds`` worlds each."""
    lm_model(settings)
    rl_policy(settings)
    seeds = list(range(settings.bench.tuning_first_seed,
                       settings.bench.tuning_first_seed + settings.bench.tuning_worlds))
    cases = {cell_key(c): {"settings": settings.model_dump(mode="json"), "cell": c,
                           "seeds": seeds, "models_dir": str(models_dir())}
             for c in [c for c in matrix_cells(settings) if c["n_genes"] <= 16][:cells]
             }  # fmt: skip
    rows: list[dict] = []
    for key, params in tqdm(cases.items(), desc="calibration cells", mininterval=5):
        rows.extend(calibration_case(params)["worlds"])
        echo(f"calibrated on {key}")
    chosen = choose_threshold(rows, settings.target_f1, fallback=settings.stopping.probability)
    return {"tuning_seeds": seeds, "cells": list(cases), **chosen}


def summarise_cells(
    case_results: list[dict], threshold: float, resamples: int
) -> tuple[list[dict], dict]:
    """Cell summaries and the flat matrix keys from :func:`run_cell_case` results, with the
    agent's stop read off its curves at ``threshold`` (the calibrated stopping probability)."""
    cells = [cell_summary(r["cell"], restop(r["worlds"], threshold), resamples)
             for r in case_results]  # fmt: skip
    return cells, matrix_keys(cells)
