"""The simulated lab: a hidden signed gene regulatory network and the experiments run on it.

A world is a random DAG over ``n_genes`` genes with signed weights. Expression (log scale, relative
to each gene's basal level) follows a linear structural equation model::

    x_j = sum_i W[i, j] * x_i + noise_j,        noise_j ~ Normal(0, noise_sd)

An experiment clamps one or more genes (knock-out: ``-intervention_size``, over-expression:
``+intervention_size``), samples every other gene from its equation, and returns noisy
measurements of all genes over a number of replicates. Only the lab (and the grader) sees ``W``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from level5_discovery.settings import DEFAULT_GENE_POOL

INTERVENTION_KINDS = ("knockout", "overexpress")


@dataclass(frozen=True)
class WorldSpec:
    """Parameters of a world draw."""

    n_genes: int = 12
    expected_parents: float = 1.3
    max_parents: int = 3
    weight_low: float = 0.6
    weight_high: float = 1.2
    noise_sd: float = 0.4
    measurement_sd: float = 0.1
    intervention_size: float = 4.0
    # Symbols the genes are drawn from (``Level5Settings.gene_pool``); the corpus takes the rest
    # as genes outside the lab.
    gene_pool: tuple[str, ...] = DEFAULT_GENE_POOL


@dataclass
class GeneNetwork:
    """The hidden truth: gene names and the signed weight matrix ``weights[i, j]`` (effect i→j)."""

    genes: list[str]
    weights: np.ndarray
    order: list[int]
    spec: WorldSpec

    @property
    def n_genes(self) -> int:
        """Number of genes."""
        return len(self.genes)

    @property
    def adjacency(self) -> np.ndarray:
        """Signed adjacency: +1 activates, -1 inhibits, 0 no direct edge."""
        return np.sign(self.weights).astype(int)

    def descendants(self, gene: int) -> set[int]:
        """Genes reachable from ``gene`` along directed edges (not including itself)."""
        seen: set[int] = set()
        stack = [gene]
        while stack:
            node = stack.pop()
            for child in np.flatnonzero(self.weights[node]):
                if int(child) not in seen:
                    seen.add(int(child))
                    stack.append(int(child))
        return seen

    def reachability(self) -> np.ndarray:
        """Boolean matrix ``R[i, j]``: j is a descendant of i."""
        n = self.n_genes
        reach = np.zeros((n, n), dtype=bool)
        for i in range(n):
            reach[i, list(self.descendants(i))] = True
        return reach


def draw_world(seed: int, spec: WorldSpec | None = None) -> GeneNetwork:
    """Draw a random signed DAG; the same ``seed`` and ``spec`` give the same world."""
    spec = spec or WorldSpec()
    pool = spec.gene_pool
    if not 2 <= spec.n_genes <= len(pool):
        raise ValueError(f"n_genes must be between 2 and {len(pool)}, got {spec.n_genes}")
    rng = np.random.default_rng(seed)
    n = spec.n_genes
    genes = [str(g) for g in rng.choice(pool, size=n, replace=False)]
    order = [int(i) for i in rng.permutation(n)]
    weights = np.zeros((n, n))
    edge_prob = min(1.0, 2 * spec.expected_parents / max(n - 1, 1))
    for pos, child in enumerate(order[1:], start=1):
        earlier = order[:pos]
        parents = [p for p in earlier if rng.random() < edge_prob]
        if len(parents) > spec.max_parents:
            parents = [int(p) for p in rng.choice(parents, spec.max_parents, replace=False)]
        for parent in parents:
            sign = 1.0 if rng.random() < 0.6 else -1.0
            weights[parent, child] = sign * rng.uniform(spec.weight_low, spec.weight_high)
    return GeneNetwork(genes=genes, weights=weights, order=order, spec=spec)


@dataclass(frozen=True)
class Intervention:
    """One experiment: which genes are clamped, how, and with how many replicates."""

    targets: tuple[int, ...] = ()
    kind: str = "knockout"
    replicates: int = 8

    def __post_init__(self) -> None:
        if self.kind not in INTERVENTION_KINDS:
            raise ValueError(f"kind must be one of {INTERVENTION_KINDS}, got {self.kind!r}")
        if self.replicates < 2:
            raise ValueError(f"replicates must be at least 2, got {self.replicates}")

    @property
    def is_control(self) -> bool:
        """No gene clamped: an observational (control) experiment."""
        return not self.targets


@dataclass
class Measurement:
    """What the lab returns: one row per replicate, one column per gene."""

    intervention: Intervention
    values: np.ndarray
    clamped_value: float
    cost: float


# Cost per replicate; over-expression constructs are dearer than knock-outs.
COST_PER_REPLICATE = {"control": 0.05, "knockout": 0.125, "overexpress": 0.1875}


@dataclass
class Lab:
    """Runs experiments on a hidden world; keeps the bill and a seeded noise stream."""

    world: GeneNetwork
    seed: int = 0
    spent: float = 0.0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def cost_of(self, intervention: Intervention) -> float:
        """Price of an experiment (per replicate, by kind)."""
        kind = "control" if intervention.is_control else intervention.kind
        return (
            COST_PER_REPLICATE[kind] * intervention.replicates * max(1, len(intervention.targets))
        )

    def run(self, intervention: Intervention) -> Measurement:
        """Sample ``replicates`` expression profiles under the intervention."""
        n = self.world.n_genes
        for t in intervention.targets:
            if not 0 <= t < n:
                raise ValueError(f"target gene index {t} outside 0..{n - 1}")
        spec = self.world.spec
        size = spec.intervention_size
        clamped = -size if intervention.kind == "knockout" else size
        reps = intervention.replicates
        x = np.zeros((reps, n))
        for gene in self.world.order:
            if gene in intervention.targets:
                x[:, gene] = clamped
            else:
                x[:, gene] = x @ self.world.weights[:, gene] + self._rng.normal(
                    0.0, spec.noise_sd, reps
                )
        observed = x + self._rng.normal(0.0, spec.measurement_sd, x.shape)
        for gene in intervention.targets:
            observed[:, gene] = clamped  # the clamp is known exactly; no need to measure it
        cost = self.cost_of(intervention)
        self.spent += cost
        return Measurement(intervention, observed, clamped, cost)
