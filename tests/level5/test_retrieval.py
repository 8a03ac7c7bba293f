"""Retrieval on a tiny corpus with known answers; the numpy index agrees with faiss."""

from __future__ import annotations

import numpy as np
import pytest

from level5_discovery.retrieval import NumpyIndex, Retriever, build_index, embed, recall_at_k

TINY = [
    "SOX2 appears to activate PAX6 in neural progenitors .",
    "loss of GATA3 elevated TBX5 levels in the heart .",
    "the study used a zebrafish model of fin regeneration .",
    "HES1 represses ASCL1 during neurogenesis .",
    "we profiled 20 samples by rna sequencing of liver tissue .",
    "MYOD promotes muscle gene expression and MEF2C .",
]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    return Retriever(TINY, cache_dir=tmp_path_factory.mktemp("emb"))


def test_embeddings_are_normalised_and_cached(tmp_path) -> None:  # noqa: ANN001
    first = embed(TINY[:2], tmp_path)
    assert first.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-4)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    np.testing.assert_array_equal(embed(TINY[:2], tmp_path), first)


def test_known_answers_rank_first(retriever: Retriever) -> None:
    questions = ["How does SOX2 regulate PAX6?", "What does HES1 do to ASCL1?",
                 "Which gene does GATA3 repress?", "Is MEF2C regulated by MYOD?"]  # fmt: skip
    top = retriever.search(questions, k=2)
    assert [row[0] for row in top] == [0, 3, 1, 5]
    assert recall_at_k(top, [{0}, {3}, {1}, {5}], k=2) == 1.0


def test_dense_only_still_finds_answers(tmp_path) -> None:  # noqa: ANN001
    dense = Retriever(TINY, symbol_bonus=0.0, cache_dir=tmp_path)
    top = dense.search(["How does SOX2 regulate PAX6?", "zebrafish fin model"], k=1)
    assert top == [[0], [2]]


def test_numpy_index_matches_faiss() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 16)).astype(np.float32)
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    f_scores, f_ids = build_index(vectors, "faiss").search(queries, 7)
    n_scores, n_ids = build_index(vectors, "numpy").search(queries, 7)
    np.testing.assert_array_equal(f_ids, n_ids)
    np.testing.assert_allclose(f_scores, n_scores, rtol=1e-5)
    assert isinstance(build_index(vectors, "numpy"), NumpyIndex)
    with pytest.raises(ValueError, match="backend"):
        build_index(vectors, "annoy")


def test_recall_at_k_counts_partial_hits() -> None:
    assert recall_at_k([[1, 2, 3]], [{1, 9}], k=3) == 0.5
    assert recall_at_k([[4, 5]], [{1}], k=2) == 0.0
