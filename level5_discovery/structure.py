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


@dataclass(frozen=True)
class LiteratureReliability:
    """How far the agent trusts the literature, learned from its own experiments.

    Two Beta posteriors: the rate of edges among ordered pairs the literature claims (1 minus
    the rate of *invented* edges) and among pairs it does not claim (the rate of *missing*
    edges), each started at the development-world rates of :class:`EdgePrior` with
    ``strength`` pseudo-observations and updated by every pair the data decide (the notebook:
    proved unreachable or settled by regression). A third counts claimed edges the data found
    with the opposite sign (wrong-sign rate, reported; the structure prior ignores signs).
    The posterior means become the prior edge probabilities, so a literature caught inventing
    edges loses its weight as the evidence arrives, and good advice keeps it.
    """

    claimed_hits: float  # Beta parameters of P(edge | claimed)
    claimed_misses: float
    unclaimed_hits: float  # Beta parameters of P(edge | not claimed)
    unclaimed_misses: float
    sign_wrong: float = 0.5  # Beta parameters of P(wrong sign | claimed edge found)
    sign_right: float = 4.5

    @classmethod
    def start(cls, strength: float = 6.0, base: EdgePrior | None = None) -> LiteratureReliability:
        """The prior belief: the development worlds' rates, worth ``strength`` observations."""
        base = base or EdgePrior()
        return cls(base.claimed * strength, (1 - base.claimed) * strength,
                   base.unclaimed * strength, (1 - base.unclaimed) * strength)  # fmt: skip

    def update(
        self, claimed: np.ndarray, decided: np.ndarray, edge: np.ndarray, prior_sign: np.ndarray
    ) -> LiteratureReliability:
        """Count the decided pairs: ``edge`` -1/0/+1 where ``decided``, by claimed or not."""
        present = decided & (edge != 0)
        absent = decided & (edge == 0)
        found = present & claimed
        wrong = float((found & (np.sign(edge) != np.sign(prior_sign))).sum())
        return LiteratureReliability(
            self.claimed_hits + float((present & claimed).sum()),
            self.claimed_misses + float((absent & claimed).sum()),
            self.unclaimed_hits + float((present & ~claimed).sum()),
            self.unclaimed_misses + float((absent & ~claimed).sum()),
            self.sign_wrong + wrong,
            self.sign_right + float(found.sum()) - wrong,
        )

    @property
    def invented_rate(self) -> float:
        """Posterior mean share of claimed pairs that are not edges."""
        return self.claimed_misses / (self.claimed_hits + self.claimed_misses)

    @property
    def missing_rate(self) -> float:
        """Posterior mean share of unclaimed pairs that are edges."""
        return self.unclaimed_hits / (self.unclaimed_hits + self.unclaimed_misses)

    @property
    def wrong_sign_rate(self) -> float:
        """Posterior mean share of found claimed edges whose claimed sign is wrong."""
        return self.sign_wrong / (self.sign_wrong + self.sign_right)

    def edge_prior(self) -> EdgePrior:
        """Prior edge probabilities at the posterior means."""
        return EdgePrior(claimed=1 - self.invented_rate, unclaimed=self.missing_rate)


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


@dataclass
class ScoreTables:
    """Every gene's candidate parent sets with their scores (BIC + log prior odds)."""

    n: int
    sets: list[list[tuple[int, ...]]]  # per gene k, its candidate parent sets
    masks: list[np.ndarray]  # per gene, the sets as bitmasks
    scores: list[np.ndarray]  # per gene, score of each set
    coefs: list[dict[int, np.ndarray]]  # per gene, mask -> fitted coefficients


def score_tables(
    measurements: list[Measurement], n: int, log_odds: np.ndarray, max_parents: int = 3
) -> ScoreTables:
    """Local scores of every gene and parent set of at most ``max_parents`` genes."""
    sets_of, masks_of, scores_of, coefs_of = [], [], [], []
    for k in range(n):
        others = [i for i in range(n) if i != k]
        sets = [s for size in range(max_parents + 1) for s in combinations(others, size)]
        scores, coefs = _local_scores(measurements, k, sets)
        masks = np.array([sum(1 << p for p in s) for s in sets], dtype=np.int64)
        scores = scores + np.array([log_odds[list(s), k].sum() for s in sets])
        sets_of.append(sets)
        masks_of.append(masks)
        scores_of.append(scores)
        coefs_of.append({int(mask): coefs[s] for mask, s in zip(masks, sets, strict=True)})
    return ScoreTables(n, sets_of, masks_of, scores_of, coefs_of)


def best_dag(
    measurements: list[Measurement],
    n: int,
    log_odds: np.ndarray,
    max_parents: int = 3,
    tables: ScoreTables | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The maximum-score DAG. Returns ``(adjacency bool [i, k], coefficient [i, k])``."""
    if n > MAX_EXACT_GENES:
        raise ValueError(f"exact structure search handles at most {MAX_EXACT_GENES} genes, got {n}")
    tables = tables or score_tables(measurements, n, log_odds, max_parents)
    full = 1 << n
    best = np.full((n, full), -np.inf)
    arg = np.zeros((n, full), dtype=np.int64)
    for k in range(n):
        masks = tables.masks[k]
        best[k, masks] = tables.scores[k]
        arg[k, masks] = masks
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
        weights[parents, k] = tables.coefs[k][parent_mask]
        subset = rest
    return adjacency, weights


def sample_posterior(tables: ScoreTables, samples: int, seed: int = 0) -> np.ndarray:
    """Exact samples of DAGs from the score's posterior under an order-modular prior.

    The scores are read as log marginal likelihood (BIC) plus log prior odds, so
    ``P(G | data) ∝ exp(score(G))``. Summing instead of maximising in the dynamic programme over
    orders (Koivisto & Sood 2004; Friedman & Koller 2003) gives the normalising sums; sampling
    then walks back from the full set: a last gene with probability proportional to its share
    of the sum, then its parent set among the remaining genes. (The order-modular prior counts
    a DAG once per order it fits, a known mild bias towards DAGs with many orders.) Returns
    ``[samples, n, n]`` Boolean adjacency matrices. Deterministic for a ``seed``.
    """
    n = tables.n
    full = 1 << n
    alpha = np.full((n, full), -np.inf)
    for k in range(n):
        alpha[k, tables.masks[k]] = tables.scores[k]
        # Subset-sum (zeta) transform in log space: alpha[k, C] = log sum over sets inside C.
        for bit in range(n):
            with_bit = np.flatnonzero(np.arange(full) & (1 << bit))
            without = with_bit ^ (1 << bit)
            alpha[k, with_bit] = np.logaddexp(alpha[k, with_bit], alpha[k, without])
    g = np.full(full, -np.inf)
    g[0] = 0.0
    subsets = np.arange(full)
    popcount = np.array([bin(s).count("1") for s in range(full)])
    for size in range(1, n + 1):
        layer = subsets[popcount == size]
        terms = np.full((n, len(layer)), -np.inf)
        for k in range(n):
            has_k = (layer >> k) & 1 == 1
            rest = layer[has_k] ^ (1 << k)
            terms[k, has_k] = g[rest] + alpha[k, rest]
        g[layer] = np.logaddexp.reduce(terms, axis=0)
    rng = np.random.default_rng(seed)
    out = np.zeros((samples, n, n), dtype=bool)
    genes = np.arange(n)
    for s in range(samples):
        subset = full - 1
        while subset:
            inside = genes[(subset >> genes) & 1 == 1]
            rests = subset ^ (1 << inside)
            logits = g[rests] + alpha[inside, rests]
            p = np.exp(logits - logits.max())
            k = int(inside[rng.choice(len(inside), p=p / p.sum())])
            rest = subset ^ (1 << k)
            masks = tables.masks[k]
            fits = (masks & ~rest) == 0
            w = np.where(fits, tables.scores[k], -np.inf)
            q = np.exp(w - w.max())
            mask = int(masks[rng.choice(len(masks), p=q / q.sum())])
            out[s, [p for p in range(n) if mask >> p & 1], k] = True
            subset = rest
    return out


def f1_against(guess: np.ndarray, graphs: np.ndarray) -> np.ndarray:
    """Edge F1 of one guess (adjacency, any sign) against each of ``graphs`` [samples, n, n]."""
    est = guess != 0
    tp = (graphs & est[None]).sum(axis=(1, 2))
    precision = np.where(est.sum() > 0, tp / max(est.sum(), 1), 1.0)
    truth = graphs.sum(axis=(1, 2))
    recall = np.where(truth > 0, tp / np.maximum(truth, 1), 1.0)
    both = precision + recall
    return np.where(both > 0, 2 * precision * recall / np.where(both > 0, both, 1), 0.0)


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
    return guess_and_confidence(measurements, n, prior, prior_threshold, edge_prior)[0]


def guess_and_confidence(
    measurements: list[Measurement],
    n: int,
    prior: np.ndarray | None = None,
    prior_threshold: float = 0.3,
    edge_prior: EdgePrior | None = None,
    posterior_samples: int = 0,
    target_f1: float = 0.9,
) -> tuple[np.ndarray, float | None]:
    """The best guess (:func:`best_guess`) and, with ``posterior_samples``, the posterior
    probability that its edge F1 is at least ``target_f1``: the share of networks drawn by
    :func:`sample_posterior` (same scores, same prior) that it matches that well."""
    log_odds = (edge_prior or EdgePrior()).log_odds(n, prior, prior_threshold)
    tables = score_tables(measurements, n, log_odds)
    adjacency, weights = best_dag(measurements, n, log_odds, tables=tables)
    guess = (np.sign(weights) * adjacency).astype(int)
    if not posterior_samples:
        return guess, None
    graphs = sample_posterior(tables, posterior_samples, seed=len(measurements))
    return guess, float((f1_against(guess, graphs) >= target_f1 - 1e-12).mean())
