"""The level-5 benchmark: four designers on held-out worlds, plus retrieval and LM numbers.

For every held-out world: random, symbolic and RL design run on data alone (same estimator, so
only the choice of experiments differs); the combined agent adds the literature (retrieval + LM
prior), z3 design with the policy as tie-breaker, and the scripted reviewer. "Experiments to
target" is the number of knock-outs after which the estimate first reaches edge F1 >= 0.9; a run
that never reaches it within ``n_genes`` knock-outs counts as ``n_genes``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from level5_discovery.agent import CombinedDesigner, RandomDesigner, RLDesigner, SymbolicDesigner
from level5_discovery.loop import run_session
from level5_discovery.retrieval import pair_question, recall_at_k
from level5_discovery.session import prepare_world, scripted_reviewer, session_config
from level5_discovery.settings import Level5Settings
from level5_discovery.train import evaluate_lm, lm_model, rl_policy
from ml_common.paths import PROJECT_ROOT


def _to_target(result, cap: int) -> int:  # noqa: ANN001
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


def run_benchmark(settings: Level5Settings, session_seconds: bool = True) -> tuple[dict, dict]:
    """Returns (the issue's flat keys, details for the README)."""
    lm = lm_model(settings)
    policy = rl_policy(settings)
    n = settings.n_genes
    combined_cfg = replace(session_config(settings), max_experiments=n)
    data_only = replace(combined_cfg, stop_when_decided=False, run_to_target=True)
    counts: dict[str, list[int]] = {k: [] for k in ("random", "symbolic", "rl", "agent")}
    finals, recalls, recalls_dense = [], [], []
    wrong = [0, 0]
    true_rej = [0, 0]
    prior_f1 = []
    for k in tqdm(range(settings.bench.worlds), desc="held-out worlds"):
        seed = settings.bench.first_seed + k
        prepared = prepare_world(seed, settings, lm)
        world = prepared.world
        designers = {
            "random": RandomDesigner(),
            "symbolic": SymbolicDesigner(),
            "rl": RLDesigner(policy),
        }
        for name, designer in designers.items():
            result = run_session(world, designer, lab_seed=seed + 1, config=data_only)
            counts[name].append(_to_target(result, n))
        result = run_session(
            world,
            CombinedDesigner(policy),
            lab_seed=seed + 1,
            literature=prepared.literature,
            corpus=prepared.corpus,
            reviewer=scripted_reviewer(world, settings, seed),
            config=combined_cfg,
        )
        counts["agent"].append(_to_target(result, n))
        finals.append(result.scores)
        prior_f1.append(result.f1_curve[0])
        wrong[0] += result.wrong_rejected
        wrong[1] += result.wrong_total
        true_rej[0] += result.true_rejected
        true_rej[1] += result.true_total
        # Retrieval: questions whose answer (an abstract about that ordered pair) is in the corpus.
        relevant: dict[tuple[str, str], set[int]] = {}
        for doc in prepared.corpus:
            if doc.kind != "irrelevant":
                relevant.setdefault((doc.claim[0], doc.claim[2]), set()).add(doc.doc_id)
        questions = [pair_question(a, b) for a, b in relevant]
        recalls.append(
            recall_at_k(prepared.retriever.search(questions, k=5), list(relevant.values()))
        )
        bonus = prepared.retriever.symbol_bonus
        prepared.retriever.symbol_bonus = 0.0
        recalls_dense.append(
            recall_at_k(prepared.retriever.search(questions, k=5), list(relevant.values()))
        )
        prepared.retriever.symbol_bonus = bonus
    lm_eval = evaluate_lm(lm, settings)
    keys = {
        "n_genes": n,
        "worlds": settings.bench.worlds,
        "experiments_random_mean": float(np.mean(counts["random"])),
        "experiments_symbolic_mean": float(np.mean(counts["symbolic"])),
        "experiments_rl_mean": float(np.mean(counts["rl"])),
        "experiments_agent_mean": float(np.mean(counts["agent"])),
        "f1_agent_mean": float(np.mean([s.f1 for s in finals])),
        "sign_accuracy_agent": float(np.mean([s.sign_accuracy for s in finals])),
        "retrieval_recall5": float(np.mean(recalls)),
        "wrong_literature_rejected_rate": wrong[0] / max(wrong[1], 1),
        "lm_perplexity": float(lm_eval["perplexity"]),
        "lm_parse_rate": float(lm_eval["parse_rate"]),
        "session_seconds": measure_session_seconds() if session_seconds else float("nan"),
    }
    details = {
        "experiments_per_world": counts,
        "experiments_std": {k: float(np.std(v)) for k, v in counts.items()},
        "precision_agent_mean": float(np.mean([s.precision for s in finals])),
        "recall_agent_mean": float(np.mean([s.recall for s in finals])),
        "f1_literature_prior_mean": float(np.mean(prior_f1)),
        "retrieval_recall5_dense_only": float(np.mean(recalls_dense)),
        "wrong_literature_relations": wrong[1],
        "true_literature_relations": true_rej[1],
        "true_literature_rejected_rate": true_rej[0] / max(true_rej[1], 1),
        "lm_constrained_accuracy": lm_eval["constrained_accuracy"],
        "lm_free_examples": lm_eval["free_examples"],
    }
    return keys, details
