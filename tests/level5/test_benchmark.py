"""The benchmark reproduces its figures (slow: trains the LM and the policy unless cached).

The first 6 of the README's 20 held-out worlds, with the default settings (same models, same
seeds). Means measured on the code of the posterior stopping rule and the learned literature
reliability (knock-outs to edge F1 >= 0.9; `run_benchmark(load(bench={"worlds": 6}),
session_seconds=False, matrix=False)`): random 5.00, symbolic 4.50, rl 4.00, random+lit 2.83,
symbolic+lit 3.50, rl+lit 3.50, agent 2.33, agent without literature 5.17. (The stopping and
confirmation code before it gave agent 2.00 and rl+lit 3.17 on the same worlds.)

Two runs on this machine gave identical figures (training is bit-reproducible with one torch
thread, z3 budgets are counted in resource units, not seconds). The tolerance, one knock-out
on one world (1/6), only allows another CPU's floating-point rounding to move one world.
"""

from __future__ import annotations

import pytest

from level5_discovery.benchmark import ABLATIONS, run_benchmark
from level5_discovery.settings import load

MEASURED = {
    "random": 5.0, "symbolic": 4.5, "rl": 4.0, "random_lit": 17 / 6, "symbolic_lit": 3.5,
    "rl_lit": 3.5, "agent": 14 / 6,
}  # fmt: skip


@pytest.mark.slow
def test_benchmark_reproduces_its_figures() -> None:
    settings = load(bench={"worlds": 6})
    keys, details = run_benchmark(settings, session_seconds=False, matrix=False)
    for name, mean in MEASURED.items():
        assert keys[f"experiments_{name}_mean"] == pytest.approx(mean, abs=1 / 6 + 1e-9), name
    assert keys["ablation_without_literature_mean"] == pytest.approx(31 / 6, abs=1 / 6 + 1e-9)
    lit = {s: keys[f"experiments_{s}_lit_mean"] for s in ("random", "symbolic", "rl")}
    assert keys["best_baseline_equal_info_mean"] == min(lit.values())
    assert keys["agent_vs_best_equal_info_ratio"] == pytest.approx(
        keys["best_baseline_equal_info_mean"] / keys["experiments_agent_mean"]
    )
    assert set(details["ablation"]) == set(ABLATIONS)
    for part in ABLATIONS:
        low, high = details["ablation"][part]["ci95"]
        assert low <= details["ablation"][part]["difference"] <= high
    assert keys["agent_self_stop_f1_mean"] >= 0.9
    assert keys["f1_agent_mean"] >= 0.95 and keys["sign_accuracy_agent"] >= 0.95
    assert keys["z3_wallclock_safety_net_fired"] == 0
    assert 0 < keys["decision_seconds_p50"] <= keys["decision_seconds_p95"]
    assert keys["decision_seconds_p95"] <= keys["decision_seconds_max"]
    # Measured on these six worlds: 0.056 of true literature relations wrongly rejected.
    assert details["true_literature_rejected_rate"] <= 0.08
    assert keys["retrieval_recall5"] >= 0.87  # 0.919 over the README's 20 worlds
    assert keys["lm_parse_rate"] >= 0.95 and details["lm_constrained_accuracy"] >= 0.95
    assert keys["lm_perplexity"] == pytest.approx(1.516, abs=0.02)
