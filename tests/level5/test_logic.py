"""The solver and the evidence closure on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from level5_discovery.evidence import EdgeEvidence, InterventionEffect
from level5_discovery.logic import (
    NO,
    UNKNOWN,
    YES,
    Claim,
    HypothesisSpace,
    propagate_reachability,
)


def effect(target: int, changed: list[int], n: int, signs: dict[int, int] | None = None):
    mask = np.zeros(n, dtype=bool)
    mask[changed] = True
    direction = np.array([(signs or {}).get(j, 1) if mask[j] else 0 for j in range(n)])
    return InterventionEffect(target, mask, direction, np.zeros(n))


def test_propagation_rules() -> None:
    reach = np.full((3, 3), UNKNOWN)
    reach[0] = [NO, YES, YES]  # do(0) moved 1 and 2
    reach[1] = [NO, NO, YES]  # do(1) moved 2
    out = propagate_reachability(reach)
    assert out[2, 0] == NO and out[2, 1] == NO and out[1, 0] == NO  # acyclicity
    reach = np.full((3, 3), UNKNOWN)
    reach[0] = [NO, YES, NO]  # 0 reaches 1 but not 2 ...
    out = propagate_reachability(reach)
    assert out[1, 2] == NO  # ... so 1 cannot reach 2
    reach = np.full((3, 3), UNKNOWN)
    reach[0, 1] = YES
    reach[1, 2] = YES
    out = propagate_reachability(reach)
    assert out[0, 2] == YES  # transitivity
    assert out[1, 0] == NO and out[2, 0] == NO and out[2, 1] == NO  # acyclicity
    assert out[0, 0] == NO and (out == UNKNOWN).sum() == 0


def test_chain_backbone_and_claims() -> None:
    # Truth 0 -> 1 -> 2. do(0) moves 1, 2; do(1) moves 2; do(2) moves nothing.
    space = HypothesisSpace(3)
    space.add_intervention(effect(0, [1, 2], 3))
    space.add_intervention(effect(1, [2], 3))
    space.add_intervention(effect(2, [], 3))
    reach, edge = space.backbone()
    assert reach[0, 2] == YES and reach[2, 0] == NO and reach[1, 0] == NO
    assert edge[0, 1] == YES and edge[1, 2] == YES  # the only way to explain the rows
    assert edge[0, 2] == UNKNOWN  # a direct 0 -> 2 edge cannot be told apart by these rows
    assert not space.is_consistent(Claim(2, 0, 1))  # reversed edge: rejected
    assert space.is_consistent(Claim(0, 1, 1))
    # With only one path, the observed sign of the total effect is the edge's sign.
    assert not space.is_consistent(Claim(1, 2, -1))


def test_regression_evidence_decides_the_transitive_edge() -> None:
    space = HypothesisSpace(3)
    space.add_intervention(effect(0, [1, 2], 3, {2: -1}))
    space.add_intervention(effect(1, [2], 3, {2: -1}))
    signed = np.zeros((3, 3), dtype=int)
    determined = np.zeros((3, 3), dtype=bool)
    determined[0, 2] = determined[1, 2] = True
    signed[1, 2] = -1
    space.add_edge_evidence(EdgeEvidence(signed, determined, signed * 1.0, signed * 9.0))
    _, edge = space.backbone()
    assert edge[0, 2] == NO and edge[1, 2] == YES
    assert not space.is_consistent(Claim(1, 2, 1)) and space.is_consistent(Claim(1, 2, -1))


def test_contradiction_is_resolved_by_dropping_a_negative_fact() -> None:
    # do(0) moved 1 but "not" 2, yet do(1) moved 2: transitivity says 0 must reach 2.
    space = HypothesisSpace(3)
    space.add_intervention(effect(0, [1], 3))
    space.add_intervention(effect(1, [2], 3))
    dropped = space.make_consistent()
    assert dropped == ["noreach_0_2"]
    reach, _ = space.backbone(edges=False)
    assert reach[0, 2] == YES


def test_acyclicity_is_optional() -> None:
    cyclic = HypothesisSpace(2, acyclic=False)
    cyclic.add_intervention(effect(0, [1], 2))
    cyclic.add_intervention(effect(1, [0], 2))
    assert cyclic.make_consistent() == []  # a 2-cycle explains both rows
    acyclic = HypothesisSpace(2)
    acyclic.add_intervention(effect(0, [1], 2))
    acyclic.add_intervention(effect(1, [0], 2))
    with pytest.raises(RuntimeError):
        acyclic.backbone()


@pytest.mark.parametrize("seed", range(4))
def test_numpy_closure_is_sound_against_z3(seed: int) -> None:
    from level5_discovery.world import WorldSpec, draw_world

    world = draw_world(seed, WorldSpec(n_genes=7))
    truth = world.reachability()
    rng = np.random.default_rng(seed)
    tested = rng.choice(7, size=3, replace=False)
    reach = np.full((7, 7), UNKNOWN)
    space = HypothesisSpace(7)
    for g in tested:
        reach[g] = np.where(truth[g], YES, NO)
        space.add_intervention(effect(int(g), list(np.flatnonzero(truth[g])), 7))
    closed = propagate_reachability(reach)
    z3_reach, _ = space.backbone(edges=False)
    decided = closed != UNKNOWN
    np.testing.assert_array_equal(closed[decided], z3_reach[decided])  # never wrong
    np.testing.assert_array_equal(closed[decided], truth[decided].astype(int))


def _chain_with_control():  # noqa: ANN202
    """The chain SOX2 → PAX6 → GATA3, its lab, and a notebook holding one control experiment."""
    from level5_discovery.logic import Knowledge
    from level5_discovery.world import GeneNetwork, Intervention, Lab, WorldSpec

    weights = np.zeros((3, 3))
    weights[0, 1], weights[1, 2] = 1.0, 1.0
    world = GeneNetwork(["SOX2", "PAX6", "GATA3"], weights, [0, 1, 2], WorldSpec(n_genes=3))
    lab = Lab(world, seed=0)
    notebook = Knowledge(3)
    notebook.add(lab.run(Intervention((), replicates=16)))
    return world, lab, notebook


def test_no_regression_before_a_gene_s_descendants_are_known() -> None:
    # Chain 0 -> 1 -> 2. After do(0) alone, gene 2's non-descendants are not all known (1 might
    # be below 2); regressing x_2 on {0} alone would credit 0 with 1's effect (a false 0 -> 2).
    from level5_discovery.world import Intervention

    world, lab, notebook = _chain_with_control()
    notebook.add(lab.run(Intervention((0,), replicates=8)))
    assert notebook.estimate()[0, 2] == 0
    notebook.add(lab.run(Intervention((1,), replicates=8)))
    notebook.add(lab.run(Intervention((2,), replicates=8)))
    np.testing.assert_array_equal(notebook.estimate(), world.adjacency)


def _effect(target: int, direction: list[int]) -> InterventionEffect:
    d = np.array(direction)
    return InterventionEffect(target, d != 0, d, d.astype(float))


def test_implied_edges_only_when_no_gene_can_lie_between() -> None:
    from level5_discovery.logic import Knowledge

    k = Knowledge(3)
    k.effects = {0: _effect(0, [0, 1, -1]), 1: _effect(1, [0, 0, 0])}
    k.refresh()
    # 2 might still reach 1, so 0→1 could go through 2: nothing forced for 0→1 yet;
    # 1 cannot reach 2, so 0→2 must be direct, with the observed (negative) sign.
    assert k.implied_edges().tolist() == [[0, 0, -1], [0, 0, 0], [0, 0, 0]]
    k.effects[2] = _effect(2, [0, 0, 0])
    k.refresh()
    assert k.implied_edges().tolist() == [[0, 1, -1], [0, 0, 0], [0, 0, 0]]


def test_sound_estimate_explains_unexplained_descendant_without_overruling_data() -> None:
    from level5_discovery.logic import Knowledge

    k = Knowledge(3)
    k.effects = {0: _effect(0, [0, 1, 1])}
    k.refresh()
    prior = np.zeros((3, 3))
    prior[0, 1] = 0.9  # literature: 0 activates 1; nothing about 1→2 or 0→2
    prior[2, 0] = 0.9  # contradicted by data (0 reaches 2, so 2 cannot reach 0)
    est = k.sound_estimate(prior)
    assert est[0, 1] == 1
    assert est[2, 0] == 0
    assert est[0, 2] == 1  # do(0) moved 2 and no estimated path explained it


def test_contested_claims_count_open_literature_claims() -> None:
    from level5_discovery.agent import contested_claims
    from level5_discovery.logic import Knowledge

    k = Knowledge(3)
    prior = np.zeros((3, 3))
    prior[0, 1] = prior[0, 2] = prior[1, 2] = 0.8
    assert contested_claims(k, prior).tolist() == [2.0, 1.0, 0.0]
    k.effects = {0: _effect(0, [0, 1, 0])}
    k.refresh()
    assert contested_claims(k, prior)[0] == 0.0


def test_notebook_recomputes_its_derived_views_after_new_data() -> None:
    from level5_discovery.loop import open_edge_questions
    from level5_discovery.world import Intervention

    world, lab, notebook = _chain_with_control()
    assert open_edge_questions(notebook) == 6
    space = notebook.hypothesis_space()
    assert notebook.hypothesis_space() is space  # one z3 build per notebook state
    for gene in range(3):
        notebook.add(lab.run(Intervention((gene,), replicates=8)))
    assert notebook.hypothesis_space() is not space
    assert not notebook.hypothesis_space().is_consistent(Claim(2, 0, 1))
    assert open_edge_questions(notebook) == 0
    np.testing.assert_array_equal(notebook.estimate(), world.adjacency)
