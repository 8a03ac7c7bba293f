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
from level5_discovery.train import evaluate_lm, lm_model, rl_policy
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
    """One factor at a time around the default cell: (n_genes, noise scale, wrong-sign rate)."""
    m = settings.bench.matrix
    default = (settings.n_genes, 1.0, settings.literature.wrong_sign_rate)
    cells = [default]
    cells += [(g, 1.0, default[2]) for g in m.genes if g != default[0]]
    cells += [(default[0], s, default[2]) for s in m.noise_scale if s != 1.0]
    cells += [(default[0], 1.0, w) for w in m.wrong_sign_rate if w != default[2]]
    return [{"n_genes": g, "noise_scale": s, "wrong_sign_rate": w} for g, s, w in cells]


def cell_settings(settings: Level5Settings, cell: dict) -> Level5Settings:
    """The settings of one matrix cell (noise scales both biological and instrument noise)."""
    world = settings.world.model_copy(update={
        "noise_sd": settings.world.noise_sd * cell["noise_scale"],
        "measurement_sd": settings.world.measurement_sd * cell["noise_scale"],
    })  # fmt: skip
    literature = settings.literature.model_copy(
        update={"wrong_sign_rate": cell["wrong_sign_rate"]}
    )
    return settings.model_copy(
        update={"n_genes": cell["n_genes"], "max_experiments": cell["n_genes"], "world": world,
                "literature": literature}  # fmt: skip
    )


MATRIX_STRATEGIES = ("random", "random_lit", "symbolic_lit", "rl_lit", "agent")


def _cell_summary(outcomes: list[WorldOutcome], cell: dict) -> dict:
    means = {k: _mean(outcomes, k) for k in MATRIX_STRATEGIES}
    best_key = min(("random_lit", "symbolic_lit", "rl_lit"), key=lambda k: means[k])
    agent = means["agent"]
    return {
        **cell,
        "worlds": len(outcomes),
        "experiments_mean": means,
        "best_baseline_equal_info": best_key,
        "agent_vs_best_equal_info_ratio": means[best_key] / max(agent, 1e-9),
        "agent_vs_random_ratio": means["random"] / max(agent, 1e-9),
        "agent_vs_random_lit_ratio": means["random_lit"] / max(agent, 1e-9),
        "agent_self_stop_experiments_mean": float(
            np.mean([o.agent.self_stop_experiments for o in outcomes])
        ),
        "agent_self_stop_f1_mean": float(np.mean([o.agent.self_stop_f1 for o in outcomes])),
        "world_seconds": _quantiles([s for o in outcomes for s in o.seconds.values()]),
    }


def run_matrix(
    settings: Level5Settings,
    lm: TrainResult,
    policy: PolicyNet,
    default_cell: list[WorldOutcome] | None,
    echo: Callable[[str], None] = print,
) -> list[dict]:
    """Every cell of the matrix; the default cell reuses the main benchmark's worlds (left out
    when ``default_cell`` is None: ``bench --matrix-only``, merged with the main run later).

    The policy is the default one (trained on 6–12-gene worlds at default noise and literature):
    elsewhere in the matrix it is validated, not retrained.
    """
    m = settings.bench.matrix
    cells = []
    for cell in matrix_cells(settings):
        if cell == matrix_cells(settings)[0]:
            if default_cell is not None:
                cells.append(_cell_summary(default_cell, cell))
            continue
        worlds = m.worlds if cell["n_genes"] <= settings.n_genes else m.worlds_large
        cs = cell_settings(settings, cell)
        outcomes = []
        label = f"matrix cell genes={cell['n_genes']} noise x{cell['noise_scale']} " \
            f"wrong-sign {cell['wrong_sign_rate']}"
        for k in tqdm(range(worlds), desc=label, mininterval=5):
            outcomes.append(run_world(settings.bench.first_seed + k, cs, lm, policy,
                                      MATRIX_STRATEGIES, echo=echo))  # fmt: skip
        summary = _cell_summary(outcomes, cell)
        echo(f"{label}: agent {summary['experiments_mean']['agent']:.2f}, best baseline "
             f"{summary['best_baseline_equal_info']} "
             f"{summary['experiments_mean'][summary['best_baseline_equal_info']]:.2f}")  # fmt: skip
        cells.append(summary)
    return cells


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
        "lm_free_examples": lm_eval["free_examples"],
    }
    details["default_cell"] = _cell_summary(outcomes, matrix_cells(settings)[0])
    if matrix:
        cells = run_matrix(settings, lm, policy, outcomes, echo=lambda s: tqdm.write(s))
        details["matrix"] = cells
        keys.update(matrix_keys(cells, settings))
        keys["z3_budget_exhausted"] = BUDGET_EVENTS["rlimit"]
        keys["z3_wallclock_safety_net_fired"] = BUDGET_EVENTS["wall"]
    return keys, details


def matrix_keys(cells: list[dict], settings: Level5Settings) -> dict:
    """The issue's flat keys about the matrix."""
    keys: dict = {"matrix_cells": len(cells)}
    by = {(c["n_genes"], c["noise_scale"], c["wrong_sign_rate"]): c for c in cells}
    g16 = by.get((16, 1.0, settings.literature.wrong_sign_rate))
    w30 = by.get((settings.n_genes, 1.0, 0.30))
    if g16 is not None:
        keys["genes16_agent_vs_random_ratio"] = g16["agent_vs_random_ratio"]
        keys["genes16_agent_vs_random_lit_ratio"] = g16["agent_vs_random_lit_ratio"]
        keys["genes16_agent_vs_best_equal_info_ratio"] = g16["agent_vs_best_equal_info_ratio"]
    if w30 is not None:
        keys["wrong_sign_030_agent_vs_best_ratio"] = w30["agent_vs_best_equal_info_ratio"]
    return keys


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
            "| genes | noise | wrong-sign | worlds | random | random+lit | symbolic+lit | "
            "RL+lit | agent | agent vs best equal-info | agent's own stop (F1) | "
            "session s p50 / max |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in details["matrix"]:
            m = c["experiments_mean"]
            lines.append(
                f"| {c['n_genes']} | ×{c['noise_scale']:g} | {c['wrong_sign_rate']:.2f} | "
                f"{c['worlds']} | {m['random']:.2f} | {m['random_lit']:.2f} | "
                f"{m['symbolic_lit']:.2f} | {m['rl_lit']:.2f} | {m['agent']:.2f} | "
                f"{c['agent_vs_best_equal_info_ratio']:.2f}× | "
                f"{c['agent_self_stop_experiments_mean']:.2f} "
                f"({c['agent_self_stop_f1_mean']:.2f}) | "
                f"{c['world_seconds']['p50']:.1f} / {c['world_seconds']['max']:.1f} |"
            )
    return "\n".join(lines) + "\n"
