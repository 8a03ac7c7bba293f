"""Stage 2 — models: five recommenders behind one interface, ``fit(X)`` then ``score(rows)``.

``X`` is the binary user x item training matrix. ``score(user_rows)`` returns dense scores for
those users over the whole catalogue; seen items are masked by the caller (:mod:`evaluate`).

- :class:`Popularity` — most positives first; also the serving fallback.
- :class:`ItemKNN`    — cosine item-item similarity, ``k`` nearest neighbours kept per item.
- :class:`ImplicitALS`, :class:`ImplicitBPR` — the ``implicit`` library's matrix factorisation.
- :class:`EASE`       — Steck (2019), "Embarrassingly Shallow Autoencoders": a closed-form
  item-item weight matrix ``B = I - P / diag(P)``, ``P = (XᵀX + λI)⁻¹``. Written by hand (it is
  four lines of linear algebra) and checked against a brute-force ridge solve in the tests.

EASE and ItemKNN both end as one item x item matrix ``W`` with ``scores = x_u W``, which is what
the service needs: it also scores an anonymous session from its item ids alone.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
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
    """Cosine similarity between item columns; each item keeps its ``neighbours`` most similar."""

    name = "itemknn"

    def __init__(self, neighbours: int = 100) -> None:
        self.neighbours = neighbours

    def fit(self, interactions: sparse.csr_matrix) -> ItemKNN:
        x = interactions.astype(np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        cooc = (x.T @ x).toarray()
        sim = cooc / norms[:, None] / norms[None, :]
        np.fill_diagonal(sim, 0.0)
        if self.neighbours < sim.shape[0]:
            # Keep the top-k entries of each column (item j's neighbours), zero the rest.
            cutoff = np.partition(sim, -self.neighbours, axis=0)[-self.neighbours]
            sim[sim < cutoff[None, :]] = 0.0
        self.weights = sim.astype(np.float32)
        return self


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
