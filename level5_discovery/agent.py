"""Experiment-design agents: random, symbolic (z3), reinforcement-learned, and combined.

Every agent answers one question — given the notebook so far, which gene to knock out next —
through :class:`Designer.choose`. The RL agent is a short torch policy trained with REINFORCE
(policy gradient with a mean baseline, written out here rather than taken from a library): a
small MLP scores each gene from its feature row (:func:`~level5_discovery.env.gene_features`),
a softmax over untested genes picks one. The same weights serve any number of genes, so it is
trained on worlds of several sizes and evaluated on held-out worlds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from level5_discovery.env import FEATURES, DiscoveryLabEnv, gene_features
from level5_discovery.logic import UNKNOWN, Knowledge, expected_gain


class Designer:
    """Chooses the next single-gene intervention."""

    name = "designer"

    def choose(
        self, knowledge: Knowledge, prior: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[int, str]:
        """The gene to knock out and a one-line reason."""
        raise NotImplementedError

    @staticmethod
    def candidates(knowledge: Knowledge) -> list[int]:
        """Untested genes (all genes once everything has been tested)."""
        untested = [g for g in range(knowledge.n_genes) if not knowledge.tested[g]]
        return untested or list(range(knowledge.n_genes))


class RandomDesigner(Designer):
    """Baseline: a random untested gene."""

    name = "random"

    def choose(self, knowledge, prior, rng):  # noqa: ANN001, ANN201, D102
        gene = int(rng.choice(self.candidates(knowledge)))
        return gene, "chosen at random"


class SymbolicDesigner(Designer):
    """z3 backbone of the hypothesis space, then the best expected split."""

    name = "symbolic"

    def scores(self, knowledge: Knowledge, prior: np.ndarray | None = None) -> dict[int, float]:
        """Split score per candidate gene (sharpened by a literature prior when given)."""
        space = knowledge.hypothesis_space()
        return space.design_scores(knowledge, self.candidates(knowledge), prior)

    def choose(self, knowledge, prior, rng):  # noqa: ANN001, ANN201, D102
        scores = self.scores(knowledge, prior)
        best = max(scores.values())
        ties = [g for g, s in scores.items() if s >= best - 1e-9]
        gene = int(rng.choice(ties))
        return gene, f"settles the most open edge questions in expectation ({best:.1f})"


class PolicyNet(nn.Module):
    """Scores each gene from its feature row; shared across genes and network sizes."""

    def __init__(self, n_features: int = len(FEATURES), hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor, tested: torch.Tensor) -> torch.Tensor:
        """Logits over genes; tested genes are masked out unless every gene was tested."""
        logits = self.net(features).squeeze(-1)
        if bool(tested.all()):
            return logits
        return logits.masked_fill(tested, -1e9)


class RLDesigner(Designer):
    """The trained policy, acting greedily."""

    name = "rl"

    def __init__(self, policy: PolicyNet) -> None:
        self.policy = policy

    def logits(self, knowledge: Knowledge, prior: np.ndarray | None) -> np.ndarray:
        """Policy logits per gene."""
        feats = torch.from_numpy(gene_features(knowledge, prior))
        with torch.no_grad():
            return self.policy(feats, torch.from_numpy(knowledge.tested)).numpy()

    def choose(self, knowledge, prior, rng):  # noqa: ANN001, ANN201, D102
        logits = self.logits(knowledge, prior)
        return int(np.argmax(logits)), "the learned policy ranks it first"


def contested_claims(knowledge: Knowledge, prior: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Per gene g: literature claims g→j that do(g) would test (j's reachability still open).

    Knocking g out settles whether each such j is a descendant, which either rejects the claim
    (j unmoved: no edge) or keeps it, with the observed sign as a check.
    """
    claims = np.abs(prior) >= threshold
    open_reach = knowledge.reach == UNKNOWN
    return (claims & open_reach).sum(axis=1).astype(float)


class CombinedDesigner(Designer):
    """z3 split scores, with the learned policy breaking near-ties.

    ``policy=None`` breaks ties at random and ``use_z3=False`` scores experiments on the numpy
    reachability closure instead of z3's backbone: the ablations of the benchmark.
    """

    name = "combined"

    def __init__(
        self,
        policy: PolicyNet | None,
        tolerance: float = 0.1,
        claim_weight: float = 2.0,
        use_z3: bool = True,
    ) -> None:
        self.symbolic = SymbolicDesigner()
        self.rl = RLDesigner(policy) if policy is not None else None
        self.tolerance = tolerance
        self.claim_weight = claim_weight
        self.use_z3 = use_z3

    def choose(self, knowledge, prior, rng):  # noqa: ANN001, ANN201, D102
        if self.use_z3:
            scores = self.symbolic.scores(knowledge, prior)
        else:
            scores = {g: expected_gain(knowledge, knowledge.reach, g, prior)
                      for g in self.candidates(knowledge)}  # fmt: skip
        if prior is not None:
            contested = contested_claims(knowledge, prior)
            scores = {g: s + self.claim_weight * contested[g] for g, s in scores.items()}
        best = max(scores.values())
        shortlist = [g for g, s in scores.items() if s >= (1 - self.tolerance) * best - 1e-9]
        if self.rl is None:
            gene = int(rng.choice(shortlist))
            return gene, f"split score {scores[gene]:.1f} (best {best:.1f}); drawn among " \
                f"{len(shortlist)} near-best"
        logits = self.rl.logits(knowledge, prior)
        gene = max(shortlist, key=lambda g: logits[g])
        return int(gene), (
            f"z3 split score {scores[gene]:.1f} (best {best:.1f}); policy prefers it among "
            f"{len(shortlist)} near-best"
        )


@dataclass
class TrainLog:
    """Mean episode length per training batch."""

    batch_lengths: list[float]


def train_policy(
    episodes: int = 240,
    batch: int = 8,
    sizes: tuple[int, ...] = (6, 8, 10, 12),
    lr: float = 0.02,
    seed: int = 0,
    progress: bool = False,
    prior_share: float = 0.5,
    world: dict | None = None,
    literature: dict | None = None,
) -> tuple[PolicyNet, TrainLog]:
    """REINFORCE across freshly drawn worlds (training seeds only; evaluation uses others).

    A share ``prior_share`` of the episodes sees a literature prior (the prior-degree
    features and the prior-informed prediction are then live), the rest none, as in the
    benchmark; ``world`` and ``literature`` are WorldSpec / corpus keyword arguments.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    policy = PolicyNet()
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    envs = {n: DiscoveryLabEnv(n_genes=n, world=world, literature=literature) for n in sizes}
    lengths: list[float] = []
    iterator = range(0, episodes, batch)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="training RL policy", leave=False)
    for _ in iterator:
        log_probs, returns = [], []
        batch_len = []
        for _ in range(batch):
            n = int(rng.choice(sizes))
            env = envs[n]
            options = {"world_seed": int(rng.integers(0, 10**6)),
                       "prior": bool(rng.random() < prior_share)}  # fmt: skip
            obs, _ = env.reset(options=options)
            done, ep_logp = False, []
            while not done:
                logits = policy(torch.from_numpy(obs), torch.from_numpy(env.knowledge.tested))
                dist = torch.distributions.Categorical(logits=logits)
                action = dist.sample()
                ep_logp.append(dist.log_prob(action))
                obs, _, terminated, truncated, _ = env.step(int(action))
                done = terminated or truncated
            steps = len(ep_logp)
            # Return-to-go of -1 per step, normalised by network size so sizes mix fairly.
            log_probs.extend(ep_logp)
            returns.extend([-(steps - t) / n for t in range(steps)])
            batch_len.append(steps / n)
        ret = torch.tensor(returns)
        advantage = (ret - ret.mean()) / (ret.std() + 1e-6)
        loss = -(torch.stack(log_probs) * advantage).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        lengths.append(float(np.mean(batch_len)))
    return policy, TrainLog(lengths)


def save_policy(policy: PolicyNet, path) -> None:  # noqa: ANN001
    """Save the policy weights atomically."""
    from ml_common.atomic import atomic_write

    with atomic_write(path, mode="wb") as fh:
        torch.save(policy.state_dict(), fh)


def load_policy(path) -> PolicyNet:  # noqa: ANN001
    """Load weights written by :func:`save_policy`."""
    policy = PolicyNet()
    policy.load_state_dict(torch.load(path, weights_only=True))
    policy.eval()
    return policy
