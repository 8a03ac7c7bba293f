"""The benchmark's keys and quality floors, on a smaller run (slow: trains the LM and policy).

The full benchmark (`make bench-level5`: 20 held-out worlds, 12 genes) is in the README. Here:
6 held-out worlds, a shorter-trained LM and policy, no matrix. Floors are the figures this run
measured (in the assertions' comments) with a margin of about one world's worth of knock-outs.
"""

from __future__ import annotations

import pytest

from level5_discovery.benchmark import ABLATIONS, run_benchmark
from level5_discovery.settings import load


@pytest.mark.slow
def test_benchmark_keys_and_floors() -> None:
    settings = load(
        lm={"steps": 800, "train_worlds": 4, "batch_size": 32, "lr": 0.005},
        rl={"episodes": 48, "batch": 8, "lr": 0.02},
        bench={"worlds": 6, "first_seed": 50000, "lm_eval_worlds": 1},
    )
    keys, details = run_benchmark(settings, session_seconds=False, matrix=False)
    n = settings.n_genes
    lit = {s: keys[f"experiments_{s}_lit_mean"] for s in ("random", "symbolic", "rl")}
    assert keys["best_baseline_equal_info_mean"] == min(lit.values())
    assert keys["agent_vs_best_equal_info_ratio"] == pytest.approx(
        keys["best_baseline_equal_info_mean"] / keys["experiments_agent_mean"]
    )
    assert set(details["ablation"]) == set(ABLATIONS)
    for part in ABLATIONS:
        low, high = details["ablation"][part]["ci95"]
        assert low <= details["ablation"][part]["difference"] <= high
    # The literature is worth most of the agent's lead: without it the agent needs more.
    assert keys["ablation_without_literature_mean"] > keys["experiments_agent_mean"] + 1
    assert keys["experiments_agent_mean"] <= 2.0  # measured: see the README's 20-world figure
    assert keys["experiments_random_mean"] >= 3.5
    assert keys["agent_self_stop_f1_mean"] >= 0.9
    assert keys["agent_self_stop_experiments_mean"] <= n / 2
    assert keys["f1_agent_mean"] >= 0.9 and keys["sign_accuracy_agent"] >= 0.95
    assert keys["z3_wallclock_safety_net_fired"] == 0
    assert 0 < keys["decision_seconds_p50"] <= keys["decision_seconds_p95"]
    assert keys["decision_seconds_p95"] <= keys["decision_seconds_max"]
    assert details["true_literature_rejected_rate"] <= 0.05
    assert keys["retrieval_recall5"] >= 0.85
    assert keys["lm_parse_rate"] >= 0.95 and details["lm_constrained_accuracy"] >= 0.95
    assert 1.3 < keys["lm_perplexity"] < 1.8
