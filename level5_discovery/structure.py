"""Best-guess network: the highest-scoring DAG given all the data and the literature.

The notebook (:mod:`logic`) only states what the data *prove*. Between experiments the agent
still needs its best guess of the whole network — that is what gets graded, and what a scientist
would write down. This module finds it exactly, by score-based structure learning:

    score(G) = sum over genes k of  [ log-likelihood of x_k given its parents in G
                                      - BIC penalty + log prior of those parents ]

- **Likelihood with interventions.** Gene k's linear-Gaussian regression on its parents is fitted
  on every replicate in which k was *not* clamped (an intervention replaces k's equation, so its
  rows say nothing about k's parents). This is the interventional score of GIES (Hauser &
  Bühlmann 2012); knock-out rows break the symmetry that leaves observational data unable to
  orient edges.
- **Prior.** Each possible edge i→k has a prior probability: one value for pairs the literature
  claims (pooled LM confidence ≥ threshold), one for pairs it does not, or a flat sparsity prior
  without literature. The log prior odds of a parent set is the sum of its edges' log-odds.
- **Hard facts are not imposed** (the notebook's forbidden and proved edges, its order): the
  likelihood already carries every knock-out, and a fact the notebook got wrong (a weak
  descendant missed, two paths that nearly cancel) would forbid a true edge for good. On 20
  development worlds (seeds 50100–50119, not the benchmark's), with the literature prior,
  knock-outs to F1 ≥ 0.9 were 3.45 with the notebook's facts imposed against 3.20 without
  (random order), and 3.15 against 2.25 when knocking out the gene with most predicted
  children first (measured with the constrained search of commit 77ff444, since removed).
- **Exact search** (Silander & Myllymäki 2006): for every gene the best parent set inside every
  subset of candidates (a subset-maximum transform over bitmasks), then dynamic programming over
  subsets for the best order. O(n·2ⁿ): exact up to ~16 genes in well under a second at 12.
  Parent sets are limited to ``max_parents`` (in-degree bound, a standard assumption).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from level5_discovery.world import Measurement

MAX_EXACT_GENES = 16


@dataclass(frozen=True)
class EdgePrior:
    """Prior probability of an edge: literature-claimed pairs, other pairs, or flat (no literature).

    ``claimed`` and ``unclaimed`` were measured on the development worlds (seeds 50100–50119)
    with the trained reader: 0.81 of claimed ordered pairs are edges, 0.026 of the others.
    ``flat`` is a generic sparsity prior (about 1.5 parents per gene at 12 genes).
    """

    claimed: float = 0.8
    unclaimed: float = 0.03
    flat: float = 0.15

    def log_odds(self, n: int, prior: np.ndarray | None, threshold: float = 0.3) -> np.ndarray:
        """``[i, k]`` log prior odds of edge i→k."""
        if prior is None:
            p = np.full((n, n), self.flat)
        else:
            p = np.where(np.abs(prior) >= threshold, self.claimed, self.unclaimed)
        return np.log(p) - np.log1p(-p)


def _local_scores(
    measurements: list[Measurement],
    k: int,
    parent_sets: list[tuple[int, ...]],
) -> tuple[np.ndarray, dict[tuple[int, ...], np.ndarray]]:
    """BIC of x_k regressed on each parent set (rows where k was free); coefficients too."""
    rows = [m.values for m in measurements if k not in m.intervention.targets]
    data = np.vstack(rows)
    m = len(data)
    design = np.column_stack([np.ones(m), data])  # column 0 intercept, gene g at g + 1
    gram = design.T @ design
    xty = design.T @ data[:, k]
    yty = float(data[:, k] @ data[:, k])
    scores = np.empty(len(parent_sets))
    coefs: dict[tuple[int, ...], np.ndarray] = {}
    for pos, parents in enumerate(parent_sets):
        idx = [0, *(p + 1 for p in parents)]
        g = gram[np.ix_(idx, idx)] + 1e-9 * np.eye(len(idx))
        beta = np.linalg.solve(g, xty[idx])
        rss = max(yty - float(beta @ xty[idx]), 1e-9 * m)
        scores[pos] = -0.5 * m * np.log(rss / m) - 0.5 * len(parents) * np.log(m)
        coefs[parents] = beta[1:]
    return scores, coefs


def best_dag(
    measurements: list[Measurement],
    n: int,
    log_odds: np.ndarray,
    max_parents: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """The maximum-score DAG. Returns ``(adjacency bool [i, k], coefficient [i, k])``."""
    if n > MAX_EXACT_GENES:
        raise ValueError(f"exact structure search handles at most {MAX_EXACT_GENES} genes, got {n}")
    full = 1 << n
    best = np.full((n, full), -np.inf)
    arg = np.zeros((n, full), dtype=np.int64)
    coef_of: list[dict[int, np.ndarray]] = []
    for k in range(n):
        others = [i for i in range(n) if i != k]
        sets = [s for size in range(max_parents + 1) for s in combinations(others, size)]
        scores, coefs = _local_scores(measurements, k, sets)
        masks = np.array([sum(1 << p for p in s) for s in sets], dtype=np.int64)
        scores = scores + np.array([log_odds[list(s), k].sum() for s in sets])
        best[k, masks] = scores
        arg[k, masks] = masks
        coef_of.append({int(mask): coefs[s] for mask, s in zip(masks, sets, strict=True)})
        # Subset-maximum transform: best[k, C] = max over parent sets inside C.
        for bit in range(n):
            with_bit = np.flatnonzero(np.arange(full) & (1 << bit))
            without = with_bit ^ (1 << bit)
            better = best[k, without] > best[k, with_bit]
            best[k, with_bit[better]] = best[k, without[better]]
            arg[k, with_bit[better]] = arg[k, without[better]]
    sink = _order_dp(best, n)
    adjacency = np.zeros((n, n), bool)
    weights = np.zeros((n, n))
    subset = full - 1
    while subset:
        k = int(sink[subset])
        rest = subset ^ (1 << k)
        parent_mask = int(arg[k, rest])
        parents = [p for p in range(n) if parent_mask >> p & 1]
        adjacency[parents, k] = True
        weights[parents, k] = coef_of[k][parent_mask]
        subset = rest
    return adjacency, weights


def _order_dp(best: np.ndarray, n: int) -> np.ndarray:
    """``sink[S]``: the last gene of the best-scoring DAG on genes S whose parents lie in S.

    f[S] = max over k in S of f[S - k] + best[k, S - k] (the DP over orders).
    """
    full = 1 << n
    f = np.full(full, -np.inf)
    f[0] = 0.0
    sink = np.zeros(full, dtype=np.int64)
    subsets = np.arange(full)
    popcount = np.array([bin(s).count("1") for s in range(full)])
    for size in range(1, n + 1):
        layer = subsets[popcount == size]
        layer_best = np.full(len(layer), -np.inf)
        layer_sink = np.zeros(len(layer), dtype=np.int64)
        for k in range(n):
            has_k = (layer >> k) & 1 == 1
            rest = layer ^ (1 << k)
            cand = np.where(has_k, f[rest] + best[k, rest], -np.inf)
            better = cand > layer_best
            layer_best[better] = cand[better]
            layer_sink[better] = k
        f[layer] = layer_best
        sink[layer] = layer_sink
    return sink


def best_guess(
    measurements: list[Measurement],
    n: int,
    prior: np.ndarray | None = None,
    prior_threshold: float = 0.3,
    edge_prior: EdgePrior | None = None,
) -> np.ndarray:
    """Signed adjacency of the maximum-score DAG (sign of the fitted coefficient)."""
    log_odds = (edge_prior or EdgePrior()).log_odds(n, prior, prior_threshold)
    adjacency, weights = best_dag(measurements, n, log_odds)
    return (np.sign(weights) * adjacency).astype(int)
