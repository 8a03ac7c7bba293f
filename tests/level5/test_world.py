"""The lab simulator: determinism, and that an intervention moves its descendants only."""

from __future__ import annotations

import numpy as np
import pytest

from level5_discovery.evidence import test_descendants as descendant_test
from level5_discovery.world import Intervention, Lab, WorldSpec, draw_world


def test_same_seed_same_world_and_measurements() -> None:
    a, b = draw_world(7), draw_world(7)
    assert a.genes == b.genes
    np.testing.assert_array_equal(a.weights, b.weights)
    run = Intervention((2,), "knockout", 5)
    np.testing.assert_array_equal(Lab(a, seed=3).run(run).values, Lab(b, seed=3).run(run).values)
    assert not np.array_equal(draw_world(8).weights, a.weights)


def test_world_is_a_dag_with_signed_edges() -> None:
    world = draw_world(11)
    assert not np.any(np.diag(world.reachability()))  # nothing reaches itself
    signs = set(np.unique(world.adjacency)) - {0}
    assert signs <= {-1, 1} and world.adjacency.any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interventions_change_descendants_only(seed: int) -> None:
    # Without noise the SEM is exact: clamping g moves its descendants and nothing else.
    spec = WorldSpec(n_genes=10, noise_sd=0.0, measurement_sd=0.0)
    world = draw_world(seed, spec)
    lab = Lab(world, seed=seed)
    control = lab.run(Intervention((), replicates=2)).values
    for gene in range(world.n_genes):
        moved = lab.run(Intervention((gene,), "overexpress", 2)).values
        changed = {j for j in range(world.n_genes) if j != gene
                   and not np.allclose(moved[:, j], control[:, j])}  # fmt: skip
        assert changed == world.descendants(gene)


def test_descendant_test_recovers_descendants_under_noise() -> None:
    errors, total = 0, 0
    for seed in range(5):
        world = draw_world(seed)
        lab = Lab(world, seed=seed)
        control = lab.run(Intervention((), replicates=16)).values
        for gene in range(world.n_genes):
            effect = descendant_test(control, lab.run(Intervention((gene,), replicates=8)))
            truth = np.zeros(world.n_genes, dtype=bool)
            truth[list(world.descendants(gene))] = True
            errors += int((effect.changed != truth).sum())
            total += world.n_genes
    assert errors / total < 0.05


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="kind"):
        Intervention((0,), "delete")
    with pytest.raises(ValueError, match="outside"):
        Lab(draw_world(0)).run(Intervention((99,)))
    with pytest.raises(ValueError, match="n_genes"):
        draw_world(0, WorldSpec(n_genes=1))
