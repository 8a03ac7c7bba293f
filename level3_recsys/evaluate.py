"""Stage 3 — evaluate: full-ranking top-k metrics, seen items excluded.

For every test user the model scores the whole catalogue; items the user has in training are
masked to ``-inf``; the top ``k`` are compared with the held-out items:

- ``ndcg@k``   DCG of the hits (1/log2(rank+1)) over the ideal DCG of min(k, |held out|) hits;
- ``recall@k`` hits / min(k, |held out|);
- ``map@k``    mean over users of AP@k = Σ precision@i·rel_i / min(k, |held out|);
- ``coverage`` distinct items recommended to anyone / catalogue size.

Uncertainty: the per-user values are kept, and ``ml_common.stats.bootstrap_ci`` resamples *users*
(scipy's percentile bootstrap) for a 95% interval of a mean; a paired difference between two
models on the same users is the interval of the mean of the per-user differences.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from level3_recsys.models import Recommender


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` highest scores, best first (ties: lower index first)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


def per_user_metrics(
    recommended: np.ndarray, relevant: list[np.ndarray], k: int
) -> dict[str, np.ndarray]:
    """NDCG@k, Recall@k and AP@k of each user with held-out items (rows: ranked lists)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, recall, ap = [], [], []
    for ranked, truth in zip(recommended, relevant, strict=True):
        if len(truth) == 0:
            continue
        hits = np.isin(ranked[:k], truth).astype(float)
        ideal = min(k, len(truth))
        ndcg.append(float(hits @ discounts[: len(hits)]) / float(discounts[:ideal].sum()))
        recall.append(hits.sum() / ideal)
        precision_at_i = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        ap.append(float((precision_at_i * hits).sum()) / ideal)
    return {f"ndcg@{k}": np.array(ndcg), f"recall@{k}": np.array(recall), f"map@{k}": np.array(ap)}


def ranking_metrics(
    recommended: np.ndarray, relevant: list[np.ndarray], k: int
) -> dict[str, float]:
    """NDCG@k, Recall@k and MAP@k averaged over users; rows of ``recommended`` are ranked lists."""
    return {
        name: float(np.mean(values))
        for name, values in per_user_metrics(recommended, relevant, k).items()
    }


def recommend_batch(
    model: Recommender, train: sparse.csr_matrix, users: np.ndarray, k: int
) -> np.ndarray:
    """Top-``k`` item indices for row indices ``users``, training items excluded."""
    rows = train[users]
    scores = model.score(rows, users).astype(np.float32, copy=True)
    scores[rows.nonzero()] = -np.inf
    return top_k(scores, k)


def evaluate_per_user(
    model: Recommender,
    train: sparse.csr_matrix,
    test: sparse.csr_matrix,
    k: int = 10,
    batch_size: int = 256,
) -> tuple[dict[str, np.ndarray], float]:
    """Per-user metrics of ``model`` (users with held-out items, in row order) and coverage."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    recommended = np.concatenate(
        [
            recommend_batch(model, train, users[i : i + batch_size], k)
            for i in range(0, len(users), batch_size)
        ]
    )
    relevant = [test.indices[test.indptr[u] : test.indptr[u + 1]] for u in users]
    coverage = float(len(np.unique(recommended)) / train.shape[1])
    return per_user_metrics(recommended, relevant, k), coverage


def evaluate_model(
    model: Recommender,
    train: sparse.csr_matrix,
    test: sparse.csr_matrix,
    k: int = 10,
    batch_size: int = 256,
) -> dict[str, float]:
    """Every metric of the module for ``model`` on the split (users with held-out items only)."""
    per_user, coverage = evaluate_per_user(model, train, test, k, batch_size)
    metrics = {name: float(values.mean()) for name, values in per_user.items()}
    metrics["coverage"] = coverage
    metrics["users"] = int(len(per_user[f"ndcg@{k}"]))
    return metrics
