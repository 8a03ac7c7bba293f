"""Agents on 8-gene worlds where a naive designer needs many knock-outs; the RL policy trains."""

from __future__ import annotations

import numpy as np
import pytest

from level5_discovery.agent import (
    CombinedDesigner,
    RandomDesigner,
    SymbolicDesigner,
    train_policy,
)
from level5_discovery.corpus import make_corpus
from level5_discovery.env import stated_prior
from level5_discovery.loop import Literature, SessionConfig, run_session
from level5_discovery.world import WorldSpec, draw_world

SEEDS = range(6)


@pytest.fixture(scope="module")
def policy():  # noqa: ANN201
    trained, log = train_policy(episodes=16, batch=8, sizes=(6, 8))
    assert len(log.batch_lengths) == 2
    return trained


def _to_target(designer, world, seed, literature) -> int:  # noqa: ANN001
    cfg = SessionConfig(max_experiments=8, stop_rule="none", run_to_target=True)
    result = run_session(world, designer, lab_seed=seed + 1, literature=literature, config=cfg)
    return 8 if result.experiments_to_target is None else result.experiments_to_target


def test_agent_beats_a_naive_designer_on_fixed_worlds(policy) -> None:  # noqa: ANN001
    """Knock-outs to edge F1 >= 0.9 on six fixed 8-gene worlds, literature read perfectly.

    Measured: random order without literature 4.0 (6 on two worlds), random order with the same
    literature 2.33 (6 on world 2), the agent 2.17 (1 on world 2). Floors: the measured means
    with half a knock-out of margin (the worlds and noise streams are fixed, so the figures are
    exact; the margin only absorbs a future change of the estimator).
    """
    counts: dict[str, list[int]] = {"random": [], "random_lit": [], "agent": []}
    for seed in SEEDS:
        world = draw_world(seed, WorldSpec(n_genes=8))
        lit = Literature(stated_prior(world, make_corpus(world, seed)), {})
        counts["random"].append(_to_target(RandomDesigner(), world, seed, None))
        counts["random_lit"].append(_to_target(RandomDesigner(), world, seed, lit))
        counts["agent"].append(_to_target(CombinedDesigner(policy), world, seed, lit))
    assert np.mean(counts["agent"]) <= 2.5
    assert np.mean(counts["random"]) >= 3.5
    # World 2: the naive order with the same literature needs 6 knock-outs, the agent 1-2.
    assert counts["random_lit"][2] >= 5 and counts["agent"][2] <= 2
    assert max(counts["agent"]) <= 5


def test_symbolic_design_settles_more_edge_questions_than_random() -> None:
    """What the z3 split score optimises: open edge questions left after four knock-outs.

    (It does not shorten the way to F1 >= 0.9 of the best-guess estimate much: see the README.)
    Measured on these worlds: 16.2 open questions left vs 18.3 for random order.
    """
    cfg = SessionConfig(max_experiments=4, stop_rule="none")
    left = {"random": [], "symbolic": []}
    for seed in range(6):
        world = draw_world(seed, WorldSpec(n_genes=8))
        for name, designer in (("random", RandomDesigner()), ("symbolic", SymbolicDesigner())):
            result = run_session(world, designer, lab_seed=seed, config=cfg)
            left[name].append(result.steps[-1].open_questions)
    assert np.mean(left["symbolic"]) < np.mean(left["random"])
