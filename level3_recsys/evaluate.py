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


def rank_for_test_users(
    model: Recommender,
    train: sparse.csr_matrix,
    test: sparse.csr_matrix,
    k: int = 10,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """``(users, top-k lists, held-out items)`` for the users with held-out items (row order)."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    recommended = np.concatenate(
        [
            recommend_batch(model, train, users[i : i + batch_size], k)
            for i in range(0, len(users), batch_size)
        ]
    )
    relevant = [test.indices[test.indptr[u] : test.indptr[u + 1]] for u in users]
    return users, recommended, relevant


def evaluate_per_user(
    model: Recommender,
    train: sparse.csr_matrix,
    test: sparse.csr_matrix,
    k: int = 10,
    batch_size: int = 256,
) -> tuple[dict[str, np.ndarray], float]:
    """Per-user metrics of ``model`` (users with held-out items, in row order) and coverage."""
    _, recommended, relevant = rank_for_test_users(model, train, test, k, batch_size)
    coverage = float(len(np.unique(recommended)) / train.shape[1])
    return per_user_metrics(recommended, relevant, k), coverage


ACTIVITY_GROUPS = ("light", "medium", "heavy")
ITEM_GROUPS = ("head", "tail")
GROUPS = (*ACTIVITY_GROUPS, *ITEM_GROUPS)


def activity_group(positives: np.ndarray, edges: list[int]) -> np.ndarray:
    """``light`` / ``medium`` / ``heavy`` for each user's number of training positives."""
    return np.array(ACTIVITY_GROUPS)[np.searchsorted(edges, positives, side="right")]


def head_items(popularity: np.ndarray, share: float) -> np.ndarray:
    """Boolean mask of the catalogue's most popular ``share`` (training positives; ties by
    column order so the set has a fixed size)."""
    order = np.lexsort((np.arange(len(popularity)), -popularity))
    head = np.zeros(len(popularity), dtype=bool)
    head[order[: max(1, round(share * len(popularity)))]] = True
    return head


def grouped_ndcg(
    recommended: np.ndarray,
    relevant: list[np.ndarray],
    groups_of_users: np.ndarray,
    head: np.ndarray,
    k: int,
) -> dict[str, np.ndarray]:
    """Per-user NDCG@k for every group, aligned with the users (NaN: the user is not in it).

    Activity groups keep a user's whole held-out set; ``head``/``tail`` score the same ranked
    list against only the held-out items in (or out of) the head, for users who have any.
    """
    ndcg = per_user_metrics(recommended, relevant, k)[f"ndcg@{k}"]
    out = {name: np.where(groups_of_users == name, ndcg, np.nan) for name in ACTIVITY_GROUPS}
    for name, wanted in (("head", True), ("tail", False)):
        values = np.full(len(relevant), np.nan)
        for row, truth in enumerate(relevant):
            kept = truth[head[truth] == wanted]
            if len(kept):
                values[row] = per_user_metrics(recommended[row : row + 1], [kept], k)[f"ndcg@{k}"][
                    0
                ]
        out[name] = values
    return out


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
