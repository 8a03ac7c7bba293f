"""The lab as a gymnasium environment.

One episode = one freshly drawn world. The episode starts with a control experiment; each action
knocks out one gene (``Discrete(n_genes)``). The observation is a feature matrix, one row per
gene, computed from the agent's :class:`~level5_discovery.logic.Knowledge` (never from the hidden
truth). Reward is -1 per experiment; the episode ends when the agent's current network estimate
reaches the target edge F1 (the simulator grades against the hidden truth, as a lab's later
validation would) or, truncated, after ``max_steps`` experiments.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from level5_discovery.corpus import Abstract, make_corpus
from level5_discovery.evidence import score_edges
from level5_discovery.logic import NO, UNKNOWN, YES, Knowledge, closure, expected_gain
from level5_discovery.world import GeneNetwork, Intervention, Lab, WorldSpec, draw_world

FEATURES = (
    "tested",
    "row_unknown",
    "col_unknown",
    "known_descendants",
    "known_ancestors",
    "open_in_edges",
    "expected_gain",
    "prior_in_degree",
    "prior_out_degree",
    "predicted_descendants",
    "progress",
)


def gene_features(knowledge: Knowledge, prior: np.ndarray | None = None) -> np.ndarray:
    """``[n_genes, len(FEATURES)]`` float32 matrix in [0, 1], the agent's view of each gene."""
    n = knowledge.n_genes
    reach = knowledge.reach
    scale = max(n - 1, 1)
    decided = knowledge.decided_edges
    prior_edges = (np.abs(prior) >= 0.3) if prior is not None else np.zeros((n, n), dtype=bool)
    gains = np.array([expected_gain(knowledge, reach, g) for g in range(n)])
    predicted = closure(knowledge.estimate(prior) != 0).sum(axis=1)
    feats = np.column_stack(
        [
            knowledge.tested.astype(float),
            (reach == UNKNOWN).sum(axis=1) / scale,
            (reach == UNKNOWN).sum(axis=0) / scale,
            (reach == YES).sum(axis=1) / scale,
            (reach == YES).sum(axis=0) / scale,
            (~decided).sum(axis=0) / scale,
            gains / max(gains.max(), 1e-9),
            prior_edges.sum(axis=0) / scale,
            prior_edges.sum(axis=1) / scale,
            predicted / scale,
            np.full(n, min(knowledge.experiments / n, 1.0)),
        ]
    )
    return np.clip(feats, 0.0, 1.0).astype(np.float32)


def stated_prior(world: GeneNetwork, corpus: list[Abstract]) -> np.ndarray:
    """The literature prior a perfect reader would form: per ordered pair of lab genes, the
    mean stated sign over the abstracts about it (training only: the agent's LM reads the
    corpus's claims correctly on held-out worlds, see the README, so this is what it sees).
    """
    index = {g: k for k, g in enumerate(world.genes)}
    n = world.n_genes
    total, count = np.zeros((n, n)), np.zeros((n, n))
    for doc in corpus:
        a, verb, b = doc.claim
        if a in index and b in index:
            total[index[a], index[b]] += 1.0 if verb == "activates" else -1.0
            count[index[a], index[b]] += 1
    return np.divide(total, count, out=np.zeros((n, n)), where=count > 0)


class DiscoveryLabEnv(gym.Env):
    """Identify a hidden gene network with as few knock-outs as possible."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        n_genes: int = 12,
        replicates: int = 8,
        control_replicates: int = 16,
        target_f1: float = 0.9,
        max_steps: int | None = None,
        render_mode: str | None = None,
        world: dict[str, float] | None = None,
        literature: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.spec_world = WorldSpec(n_genes=n_genes, **(world or {}))
        self.literature = literature or {}
        self.prior: np.ndarray | None = None
        self.replicates = replicates
        self.control_replicates = control_replicates
        self.target_f1 = target_f1
        self.max_steps = max_steps or 2 * n_genes
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(n_genes)
        self.observation_space = spaces.Box(
            0.0, 1.0, shape=(n_genes, len(FEATURES)), dtype=np.float32
        )
        self.knowledge: Knowledge | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw a new world (seeded by the env's generator) and run the control experiment."""
        super().reset(seed=seed)
        world_seed = int(self.np_random.integers(0, 2**31 - 1))
        if options and "world_seed" in options:
            world_seed = int(options["world_seed"])
        self.world = draw_world(world_seed, self.spec_world)
        self.lab = Lab(self.world, seed=world_seed + 1)
        self.knowledge = Knowledge(self.world.n_genes)
        self.knowledge.add(self.lab.run(Intervention((), replicates=self.control_replicates)))
        self.steps = 0
        self.prior = None
        if options and options.get("prior"):
            self.prior = stated_prior(self.world, make_corpus(self.world, world_seed,
                                                              **self.literature))  # fmt: skip
        return gene_features(self.knowledge, self.prior), self._info()

    def _info(self) -> dict[str, Any]:
        scores = score_edges(self.knowledge.estimate(self.prior), self.world.adjacency)
        return {"f1": scores.f1, "experiments": self.knowledge.experiments, "cost": self.lab.spent}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Knock out gene ``action``; -1 reward; done when the estimate reaches the target F1."""
        if self.knowledge is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}; expected a gene index")
        measurement = self.lab.run(Intervention((int(action),), replicates=self.replicates))
        self.knowledge.add(measurement)
        self.steps += 1
        info = self._info()
        terminated = info["f1"] >= self.target_f1
        truncated = not terminated and self.steps >= self.max_steps
        return gene_features(self.knowledge, self.prior), -1.0, terminated, truncated, info

    def render(self) -> str | None:
        """Text view: the reachability the agent has established."""
        if self.render_mode != "ansi" or self.knowledge is None:
            return None
        symbols = {YES: "+", NO: ".", UNKNOWN: "?"}
        rows = ["".join(symbols[int(v)] for v in row) for row in self.knowledge.reach]
        return "\n".join(rows)
