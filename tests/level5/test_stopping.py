"""The calibrated stop: exact posterior samples of networks, the confidence the agent states,
the literature's reliability learned from experiments, the verification number, and how the
stopping probability is chosen on tuning worlds."""

from __future__ import annotations

import itertools

import numpy as np

from level5_discovery.agent import SymbolicDesigner
from level5_discovery.benchmark import choose_threshold, stops_at, verification_number
from level5_discovery.corpus import make_corpus
from level5_discovery.env import stated_prior
from level5_discovery.logic import Knowledge
from level5_discovery.loop import Literature, SessionConfig, run_session
from level5_discovery.structure import (
    EdgePrior,
    LiteratureReliability,
    f1_against,
    sample_posterior,
    score_tables,
)
from level5_discovery.world import Intervention, Lab, WorldSpec, draw_world


def _exact_edge_marginals(tables, n):  # noqa: ANN001, ANN202
    """Brute force over orders and parent sets (order-modular prior), for a tiny network."""
    marginal, total = np.zeros((n, n)), 0.0
    for order in itertools.permutations(range(n)):
        options = []
        for pos, k in enumerate(order):
            before = set(order[:pos])
            options.append([(k, s, sc) for s, sc in zip(tables.sets[k], tables.scores[k],
                                                          strict=True) if set(s) <= before])
        for combo in itertools.product(*options):
            weight = np.exp(sum(sc for _, _, sc in combo))
            total += weight
            for k, s, _ in combo:
                marginal[list(s), k] += weight
    return marginal / total


def test_posterior_samples_match_the_exact_posterior() -> None:
    world = draw_world(3, WorldSpec(n_genes=4))
    lab = Lab(world, seed=1)
    data = [lab.run(Intervention((), replicates=16)), lab.run(Intervention((0,), "knockout", 8))]
    tables = score_tables(data, 4, EdgePrior().log_odds(4, None))
    exact = _exact_edge_marginals(tables, 4)
    drawn = sample_posterior(tables, 3000, seed=0).mean(axis=0)
    # 3000 draws: a marginal's standard error is at most 0.009; measured max gap 0.008.
    assert np.abs(drawn - exact).max() < 0.03
    assert exact.max() > 0.9 and exact[exact < 0.9].max() > 0.05  # some edges uncertain


def test_f1_against_many_graphs() -> None:
    guess = np.array([[0, 1], [0, 0]])
    graphs = np.array([[[0, 1], [0, 0]], [[0, 0], [1, 0]], [[0, 0], [0, 0]]], dtype=bool)
    np.testing.assert_allclose(f1_against(guess, graphs), [1.0, 0.0, 0.0])


def test_confidence_grows_with_experiments() -> None:
    world = draw_world(4, WorldSpec(n_genes=8))
    lab = Lab(world, seed=5)
    knowledge = Knowledge(8, posterior_samples=100)
    knowledge.add(lab.run(Intervention((), replicates=16)))
    start = knowledge.confidence(None)
    for gene in world.order[:6]:
        knowledge.add(lab.run(Intervention((gene,), "knockout", 8)))
    assert 0.0 <= start < knowledge.confidence(None) <= 1.0


def test_reliability_learns_that_the_literature_invents_edges() -> None:
    start = LiteratureReliability.start(6.0)
    assert abs(start.invented_rate - 0.2) < 1e-9 and abs(start.missing_rate - 0.03) < 1e-9
    claimed = np.zeros((4, 4), bool)
    claimed[0, 1] = claimed[0, 2] = claimed[0, 3] = True
    decided = claimed.copy()
    edge = np.zeros((4, 4), int)  # the data found none of the three claimed edges
    after = start.update(claimed, decided, edge, claimed.astype(float))
    assert after.invented_rate > 0.4  # (1.2 + 3) / 9
    assert after.edge_prior().claimed < start.edge_prior().claimed
    edge[0, 1] = -1  # one found, with the opposite sign of the claim
    signed = start.update(claimed, decided, edge, claimed.astype(float))
    assert signed.wrong_sign_rate > start.wrong_sign_rate


def test_the_posterior_rule_stops_with_its_stated_confidence() -> None:
    world = draw_world(4, WorldSpec(n_genes=8))
    lit = Literature(stated_prior(world, make_corpus(world, 4)), {})
    cfg = SessionConfig(max_experiments=8, stop_rule="posterior", stop_probability=0.9)
    result = run_session(world, SymbolicDesigner(), lab_seed=5, literature=lit, config=cfg)
    assert len(result.confidence_curve) == result.experiments + 1
    if result.self_stopped:
        assert result.confidence_curve[-1] >= 0.9 and "stopping" in result.story[-1]
    assert result.reliability is not None and 0 <= result.reliability["invented_rate"] <= 1


def test_verification_number_of_small_graphs() -> None:
    chain = np.zeros((3, 3), int)
    chain[0, 1] = chain[1, 2] = 1
    assert verification_number(chain) == 1  # covered edges 0→1 and 1→2 share gene 1
    fork = np.zeros((3, 3), int)
    fork[0, 1] = fork[0, 2] = 1
    assert verification_number(fork) == 1  # both covered, sharing gene 0
    collider = np.zeros((3, 3), int)
    collider[0, 2] = collider[1, 2] = 1
    assert verification_number(collider) == 0  # nothing covered: observational data orient it
    assert verification_number(np.zeros((4, 4), int)) == 0


def test_threshold_is_the_smallest_that_meets_the_share() -> None:
    assert stops_at([0.99, 0.5, 0.8], 0.7) == 2  # the control alone never stops it
    assert stops_at([0.1, 0.2], 0.5) is None
    good = {"confidence": [0.2, 0.6, 0.96], "f1": [0.5, 0.8, 0.95]}
    early = {"confidence": [0.2, 0.85, 0.99], "f1": [0.5, 0.7, 1.0]}
    chosen = choose_threshold([good] * 18 + [early] * 2)  # 0.85 stops the early ones at F1 0.7
    assert chosen["met"] and chosen["chosen"] == 0.9
    few = choose_threshold([good] * 3, fallback=0.95)  # 3 of 3 fine, but 3 prove nothing
    assert not few["met"] and few["chosen"] == 0.95


def _row(agent: int, best: int, confidence: list[float], f1: list[float]) -> dict:
    counts = {"random": 6, "random_lit": best, "symbolic_lit": best + 1, "rl_lit": best + 2,
              "agent": agent}  # fmt: skip
    return {"counts": counts, "verification": 2, "self_stopped": False,
            "self_stop_experiments": len(f1) - 1, "self_stop_f1": f1[-1], "true_rejected": 0,
            "true_total": 5, "confidence": confidence, "f1": f1, "seconds": {"agent": 1.0}}


def test_cell_summary_reads_the_stop_off_the_curves() -> None:
    from level5_discovery.benchmark import cell_summary, restop

    rows = [_row(2, 4, [0.1, 0.5, 0.97], [0.5, 0.8, 0.95]),
            _row(3, 3, [0.1, 0.92, 0.99], [0.5, 0.85, 1.0])]  # fmt: skip
    at_95 = cell_summary({"n_genes": 12, "coverage": 0.8, "false_edges": 4,
                          "wrong_sign_rate": 0.12}, restop(rows, 0.95), 500)  # fmt: skip
    assert at_95["self_stopped_worlds"] == 2 and at_95["self_stop_f1_ge_09_share"] == 1.0
    assert at_95["best_baseline_equal_info"] == "random_lit"
    assert at_95["agent_vs_best_equal_info_ratio"] == 7 / 5
    low, high = at_95["agent_vs_best_ratio_ci95"]
    assert low <= 7 / 5 <= high and not at_95["agent_below_best_baseline"]
    at_90 = cell_summary(at_95, restop(rows, 0.9), 500)
    assert at_90["self_stop_f1_ge_09_share"] == 0.5  # the second stops at F1 0.85
    assert at_90["experiments_over_verification_mean"] == (2 / 2 + 3 / 2) / 2


def test_a_cell_where_nobody_needs_an_experiment_is_a_tie() -> None:
    from level5_discovery.benchmark import ratio_ci

    assert ratio_ci([0, 0], [0, 0], 200) == (1.0, 1.0, 1.0)
    assert ratio_ci([2, 2], [1, 1], 200)[0] == 2.0
