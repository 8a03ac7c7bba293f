"""Models on small cases: EASE against a brute-force ridge solve, implicit's kNN against cosine
similarity computed here, recency weighting in training and in the bundle."""

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from level3_recsys.bundle import BundleError, ItemScorer, recency_weights
from level3_recsys.models import EASE, ItemKNN, Popularity, recency_matrix


@pytest.fixture
def interactions():
    rng = np.random.default_rng(1)
    return sparse.csr_matrix((rng.random((30, 6)) < 0.4).astype(np.float32))


def test_ease_matches_per_item_ridge_regression(interactions):
    """Column j of B solves min ||X_j - X_{-j} b||² + λ||b||² (with b_j = 0)."""
    lam = 3.0
    weights = EASE(lam).fit(interactions).weights
    x = interactions.toarray().astype(float)
    for j in range(x.shape[1]):
        others = [i for i in range(x.shape[1]) if i != j]
        a = x[:, others]
        expected = np.linalg.solve(a.T @ a + lam * np.eye(len(others)), a.T @ x[:, j])
        assert weights[j, j] == 0.0
        np.testing.assert_allclose(weights[others, j], expected, rtol=1e-4, atol=1e-5)


def test_itemknn_is_cosine_with_zero_diagonal(interactions):
    """implicit's CosineRecommender, all neighbours kept, is the plain cosine of item columns."""
    weights = ItemKNN(neighbours=100).fit(interactions).weights
    x = interactions.toarray()
    norms = np.linalg.norm(x, axis=0)
    expected = (x.T @ x) / np.outer(norms, norms)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(weights, expected, rtol=1e-5)


def test_itemknn_keeps_each_items_k_most_similar(interactions):
    """Row i keeps item i's ``neighbours`` largest similarities (the item itself not counted)."""
    full = ItemKNN(neighbours=100).fit(interactions).weights
    pruned = ItemKNN(neighbours=2).fit(interactions).weights
    for row_full, row_pruned in zip(full, pruned, strict=True):
        kept = np.flatnonzero(row_pruned)
        assert len(kept) == 2
        np.testing.assert_allclose(row_pruned[kept], row_full[kept], rtol=1e-6)
        assert row_full[kept].min() >= np.sort(row_full)[-2] - 1e-6


def test_recency_matrix_halves_weight_every_half_life():
    frame = pd.DataFrame(
        {"user_id": [7, 7, 7, 8], "item_id": [1, 2, 3, 2], "timestamp": [10, 30, 20, 5]}
    )
    rows = recency_matrix(frame, np.array([7, 8]), np.array([1, 2, 3]), half_life=1.0).toarray()
    # user 7: item 2 latest (1), then item 3 (1/2), then item 1 (1/4); user 8 has one item.
    np.testing.assert_allclose(rows, [[0.25, 1.0, 0.5], [0.0, 1.0, 0.0]])


def test_popularity_scores_are_counts(interactions):
    counts = np.asarray(interactions.sum(axis=0)).ravel()
    scores = Popularity().fit(interactions).score(interactions[:2], np.arange(2))
    np.testing.assert_allclose(scores, np.vstack([counts, counts]))


def test_recency_weights_halve_every_half_life():
    np.testing.assert_allclose(recency_weights(5, 2.0), [1, 0.5**0.5, 0.5, 0.5**1.5, 0.25])


def test_scorer_direction_recent_item_dominates():
    """Behaviour: the latest item's neighbours outrank the old item's (recency weighting)."""
    weights = np.zeros((4, 4), np.float32)
    weights[0, 2] = 1.0  # item 0 → item 2
    weights[1, 3] = 1.0  # item 1 → item 3
    scorer = ItemScorer(
        "t",
        "1",
        "champion",
        1.0,
        weights,
        np.array([10, 11, 12, 13]),
        np.array([4.0, 3.0, 2.0, 1.0]),
    )
    assert scorer.to_ids(scorer.score_items(np.array([1, 0]), 1)) == [13]  # item 1 is latest
    assert scorer.to_ids(scorer.score_items(np.array([0, 1]), 1)) == [12]
    top = scorer.score_items(np.array([0, 1]), 2)
    assert not set(top.tolist()) & {0, 1}  # history excluded
    assert scorer.to_ids(scorer.popular(2, exclude=np.array([0]))) == [11, 12]


def test_bundle_weights_are_row_major_whatever_the_file(tmp_path, interactions):
    """Serving gathers rows (``W[history]``): a column-major matrix (item-kNN's comes out
    transposed) made that ~20x slower, so both saving and loading make it row-major."""
    import json

    knn = ItemKNN(3).fit(interactions)
    np.save(tmp_path / "weights.npy", np.asfortranarray(knn.weights, dtype=np.float32))
    np.save(tmp_path / "item_ids.npy", np.arange(6))
    np.save(tmp_path / "popularity.npy", np.ones(6, np.float32))
    (tmp_path / "model.json").write_text(json.dumps({"name": "knn", "half_life": 2.0}))
    scorer = ItemScorer.load(tmp_path)
    assert scorer.weights.flags["C_CONTIGUOUS"] and scorer.weights.dtype == np.float32
    np.testing.assert_array_equal(scorer.weights, knn.weights)


def test_a_switched_scorer_serves_each_activity_group_with_its_own_matrix(tmp_path):
    """The champion's ``switch``: short histories scored by the other matrix, long ones by its
    own; what is saved is what is loaded."""
    import json

    items = 60
    own = np.zeros((items, items), dtype=np.float32)
    own[:, 1] = 1.0  # the champion's matrix always prefers item column 1
    other = np.zeros((items, items), dtype=np.float32)
    other[:, 2] = 1.0  # the light group's matrix prefers column 2
    np.save(tmp_path / "weights.npy", own)
    np.save(tmp_path / "switch_light_itemknn.npy", other)
    np.save(tmp_path / "item_ids.npy", np.arange(100, 100 + items))
    np.save(tmp_path / "popularity.npy", np.ones(items, dtype=np.float32))
    meta = {
        "name": "ease_recency",
        "half_life": 2.0,
        "switch": {
            "activity_edges": [20, 50],
            "groups": {
                "light": {
                    "model": "itemknn",
                    "half_life": 1e9,
                    "weights": "switch_light_itemknn.npy",
                }
            },
        },
    }
    (tmp_path / "model.json").write_text(json.dumps(meta))
    scorer = ItemScorer.load(tmp_path)
    light, heavy = np.arange(10, 29), np.arange(3, 53)  # 19 and 50 training items
    assert scorer.score_items(light, 1).tolist() == [2]
    assert scorer.score_items(heavy, 1).tolist() == [1]
    (tmp_path / "switch_light_itemknn.npy").unlink()
    with pytest.raises(BundleError, match="switch weights"):
        ItemScorer.load(tmp_path)
