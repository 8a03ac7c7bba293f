"""Agents: a short run finds a 4-gene network; the RL policy trains."""

from __future__ import annotations

import numpy as np
import pytest

from level5_discovery.agent import (
    CombinedDesigner,
    RandomDesigner,
    RLDesigner,
    SymbolicDesigner,
    train_policy,
)
from level5_discovery.loop import SessionConfig, run_session
from level5_discovery.world import WorldSpec, draw_world


@pytest.fixture(scope="module")
def policy():  # noqa: ANN201
    trained, log = train_policy(episodes=16, batch=8, sizes=(4, 5))
    assert len(log.batch_lengths) == 2
    return trained


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_short_run_finds_a_4_gene_network(policy, seed: int) -> None:  # noqa: ANN001
    world = draw_world(seed, WorldSpec(n_genes=4))
    cfg = SessionConfig(max_experiments=4)
    for designer in (CombinedDesigner(policy), SymbolicDesigner(), RLDesigner(policy)):
        result = run_session(world, designer, lab_seed=seed, config=cfg)
        assert result.scores.f1 == 1.0 and result.scores.sign_accuracy == 1.0
        assert result.experiments <= 4


def test_symbolic_design_settles_more_edge_questions_than_random() -> None:
    """What the z3 split score optimises: open edge questions left after four knock-outs.

    (It does not shorten the way to F1 >= 0.9 of the best-guess estimate: see the README.)
    Measured on these worlds: 16.2 open questions left vs 18.3 for random order.
    """
    cfg = SessionConfig(max_experiments=4, stop_when_decided=False)
    left = {"random": [], "symbolic": []}
    for seed in range(6):
        world = draw_world(seed, WorldSpec(n_genes=8))
        for name, designer in (("random", RandomDesigner()), ("symbolic", SymbolicDesigner())):
            result = run_session(world, designer, lab_seed=seed, config=cfg)
            left[name].append(result.steps[-1].open_questions)
    assert np.mean(left["symbolic"]) < np.mean(left["random"])
