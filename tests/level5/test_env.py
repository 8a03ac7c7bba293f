"""The lab as a gymnasium environment."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from level5_discovery.env import FEATURES, DiscoveryLabEnv


def test_env_passes_the_gymnasium_checker() -> None:
    check_env(DiscoveryLabEnv(n_genes=5), skip_render_check=False)


def test_episode_semantics() -> None:
    env = DiscoveryLabEnv(n_genes=5, render_mode="ansi")
    obs, info = env.reset(seed=3)
    assert obs.shape == (5, len(FEATURES)) and env.observation_space.contains(obs)
    assert info["experiments"] == 0
    done, steps = False, 0
    for gene in range(5):
        obs, reward, terminated, truncated, info = env.step(gene)
        steps += 1
        assert reward == -1.0
        if terminated or truncated:
            done = True
            break
    # Knocking out every gene of a 5-gene network identifies it.
    assert done and terminated and info["f1"] >= 0.9 and info["experiments"] == steps
    assert "?" not in env.render() or steps < 5
    with pytest.raises(ValueError):
        env.step(7)


def test_same_seed_same_world() -> None:
    a, b = DiscoveryLabEnv(n_genes=6), DiscoveryLabEnv(n_genes=6)
    oa, _ = a.reset(seed=11)
    ob, _ = b.reset(seed=11)
    np.testing.assert_array_equal(oa, ob)
    np.testing.assert_array_equal(a.world.weights, b.world.weights)
