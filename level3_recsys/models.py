"""Stage 2 — models: five recommenders behind one interface, ``fit(X)`` then ``score(rows)``.

``X`` is the binary user x item training matrix. ``score(user_rows)`` returns dense scores for
those users over the whole catalogue; seen items are masked by the caller (:mod:`evaluate`).

- :class:`Popularity` — most positives first; also the serving fallback.
- :class:`ItemKNN`    — ``implicit``'s cosine item-item recommender, ``k`` neighbours per item
  (the library does the job; a hand-written version taught nothing EASE does not, so it went).
- :class:`ImplicitALS`, :class:`ImplicitBPR` — the ``implicit`` library's matrix factorisation.
- :class:`EASE`       — Steck (2019), "Embarrassingly Shallow Autoencoders": a closed-form
  item-item weight matrix ``B = I - P / diag(P)``, ``P = (XᵀX + λI)⁻¹``. Written by hand (it is
  four lines of linear algebra) and checked against a brute-force ridge solve in the tests.

EASE and ItemKNN both end as one item x item matrix ``W`` with ``scores = x_u W``, which is what
the service needs: it also scores an anonymous session from its item ids alone.
"""

from __future__ import annotations

import warnings
from typing import Protocol

import numpy as np
import pandas as pd
from scipy import sparse


class Recommender(Protocol):
    name: str

    def fit(self, interactions: sparse.csr_matrix) -> Recommender: ...

    def score(self, user_rows: sparse.csr_matrix, user_index: np.ndarray) -> np.ndarray: ...


class Popularity:
    """Rank items by their number of training positives."""

    name = "popularity"

    def fit(self, interactions: sparse.csr_matrix) -> Popularity:
        self.counts = np.asarray(interactions.sum(axis=0)).ravel().astype(np.float32)
        return self

    def score(self, user_rows: sparse.csr_matrix, user_index: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (user_rows.shape[0], len(self.counts))).copy()


class ItemToItem:
    """Base of the models whose scores are ``x_u @ W`` for an item x item matrix ``W``."""

    name = "item-to-item"
    weights: np.ndarray

    def score(self, user_rows: sparse.csr_matrix, user_index: np.ndarray) -> np.ndarray:
        return np.asarray(user_rows @ self.weights, dtype=np.float32)


class ItemKNN(ItemToItem):
    """``implicit``'s :class:`CosineRecommender`: row ``i`` of ``W`` keeps item ``i``'s
    ``neighbours`` most cosine-similar items, so a history item votes for its neighbours."""

    name = "itemknn"

    def __init__(self, neighbours: int = 100) -> None:
        self.neighbours = neighbours

    def fit(self, interactions: sparse.csr_matrix) -> ItemKNN:
        from implicit.nearest_neighbours import CosineRecommender

        # implicit counts the item itself among its K neighbours (similarity 1): one more.
        model = CosineRecommender(K=self.neighbours + 1, num_threads=1)
        with warnings.catch_warnings():
            # implicit converts its own intermediate COO matrix and warns about it (0.7.x).
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(sparse.csr_matrix(interactions, dtype=np.float32), show_progress=False)
        weights = model.similarity.toarray().astype(np.float32)
        np.fill_diagonal(weights, 0.0)  # an item never recommends itself (seen items are masked)
        self.weights = weights
        return self


class RecencyWeighted:
    """Score an item-to-item model with recency-weighted user rows instead of binary ones.

    Each history item weighs ``0.5 ** (position_from_latest / half_life)``; the service does
    the same at request time (:func:`level3_recsys.bundle.recency_weights`).
    """

    def __init__(self, base: ItemToItem, weighted_rows: sparse.csr_matrix, name: str) -> None:
        self.base, self.weighted_rows, self.name = base, weighted_rows, name

    def fit(self, interactions: sparse.csr_matrix) -> RecencyWeighted:
        return self

    def score(self, user_rows: sparse.csr_matrix, user_index: np.ndarray) -> np.ndarray:
        return np.asarray(self.weighted_rows[user_index] @ self.base.weights, dtype=np.float32)


def recency_matrix(
    train: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray, half_life: float
) -> sparse.csr_matrix:
    """User x item matrix whose entries are each interaction's recency weight.

    Positions are counted over the catalogue items of each user's history only (what the
    service's user histories hold), latest first; rows follow ``user_ids``.
    """
    known = train["item_id"].isin(item_ids) & train["user_id"].isin(user_ids)
    ordered = train.loc[known].sort_values(["user_id", "timestamp", "item_id"], ascending=False)
    position = ordered.groupby("user_id").cumcount().to_numpy()
    rows = np.searchsorted(user_ids, ordered["user_id"].to_numpy())
    cols = np.searchsorted(item_ids, ordered["item_id"].to_numpy())
    weights = np.power(0.5, position / half_life).astype(np.float32)
    return sparse.csr_matrix((weights, (rows, cols)), shape=(len(user_ids), len(item_ids)))


class EASE(ItemToItem):
    """Closed-form linear item-item autoencoder with a zero diagonal (Steck, 2019)."""

    name = "ease"

    def __init__(self, l2: float = 200.0) -> None:
        self.l2 = l2

    def fit(self, interactions: sparse.csr_matrix) -> EASE:
        x = interactions.astype(np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))
        np.fill_diagonal(weights, 0.0)
        self.weights = weights.astype(np.float32)
        return self


class _ImplicitMF:
    """Shared code of the two ``implicit`` matrix-factorisation peers."""

    name = "mf"
    model: object

    def fit(self, interactions: sparse.csr_matrix) -> _ImplicitMF:
        self.model.fit(interactions.astype(np.float32), show_progress=False)
        return self

    def score(self, user_rows: sparse.csr_matrix, user_index: np.ndarray) -> np.ndarray:
        users = np.asarray(self.model.user_factors)[user_index]
        items = np.asarray(self.model.item_factors)
        return (users @ items.T).astype(np.float32)


class ImplicitALS(_ImplicitMF):
    """``implicit``'s alternating least squares (Hu, Koren & Volinsky, 2008)."""

    name = "als"

    def __init__(self, factors: int, iterations: int, regularization: float, seed: int) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        self.model = AlternatingLeastSquares(
            factors=factors,
            iterations=iterations,
            regularization=regularization,
            random_state=seed,
            num_threads=1,
        )


class ImplicitBPR(_ImplicitMF):
    """``implicit``'s Bayesian personalised ranking (Rendle et al., 2009)."""

    name = "bpr"

    def __init__(self, factors: int, iterations: int, learning_rate: float, seed: int) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        self.model = BayesianPersonalizedRanking(
            factors=factors,
            iterations=iterations,
            learning_rate=learning_rate,
            random_state=seed,
            num_threads=1,
        )
