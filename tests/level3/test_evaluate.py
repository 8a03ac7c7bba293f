"""Metrics against hand-computed cases; bootstrap intervals on known distributions."""

import math

import numpy as np
import pytest
from scipy import sparse

from level3_recsys.evaluate import (
    evaluate_model,
    evaluate_per_user,
    ranking_metrics,
    top_k,
)
from level3_recsys.models import Popularity
from ml_common.stats import bootstrap_ci


def test_top_k_orders_best_first_and_breaks_ties_by_index():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.0]])
    assert top_k(scores, 3).tolist() == [[1, 3, 2]]


def test_ranking_metrics_hand_checked():
    # User A: held out {2, 7}; list hits at ranks 1 and 3.  User B: held out {5}; no hit.
    recommended = np.array([[2, 4, 7], [1, 2, 3]])
    metrics = ranking_metrics(recommended, [np.array([2, 7]), np.array([5])], k=3)
    dcg_a = 1 / math.log2(2) + 1 / math.log2(4)
    idcg_a = 1 / math.log2(2) + 1 / math.log2(3)
    assert metrics["ndcg@3"] == pytest.approx((dcg_a / idcg_a + 0) / 2)
    assert metrics["recall@3"] == pytest.approx((2 / 2 + 0) / 2)
    # AP_A = (1/1 + 2/3) / min(3, 2)
    assert metrics["map@3"] == pytest.approx(((1 + 2 / 3) / 2 + 0) / 2)


def test_perfect_list_scores_one():
    metrics = ranking_metrics(np.array([[3, 1]]), [np.array([1, 3])], k=2)
    assert metrics == {"ndcg@2": 1.0, "recall@2": 1.0, "map@2": 1.0}


def test_evaluate_excludes_seen_items_and_counts_coverage():
    # Item 0 is the most popular but user 0 has seen it: it must not be recommended to them.
    train = sparse.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0]], dtype=float))
    test = sparse.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=float))
    model = Popularity().fit(train)
    metrics = evaluate_model(model, train, test, k=1)
    assert metrics["users"] == 1
    # Popularity after excluding item 0: items 1 and 2 tie (1 each) → item 1 first: a hit.
    assert metrics["ndcg@1"] == 1.0
    assert metrics["coverage"] == 0.25


def test_per_user_values_average_to_the_reported_metrics():
    train = sparse.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0]], dtype=float))
    test = sparse.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1]], dtype=float))
    model = Popularity().fit(train)
    per_user, coverage = evaluate_per_user(model, train, test, k=2)
    metrics = evaluate_model(model, train, test, k=2)
    assert len(per_user["ndcg@2"]) == metrics["users"] == 3
    for name, values in per_user.items():
        assert values.mean() == pytest.approx(metrics[name])
    assert coverage == metrics["coverage"]


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_more_users():
    rng = np.random.default_rng(3)
    widths = []
    for users in (100, 10_000):
        values = rng.binomial(1, 0.1, users).astype(float)
        low, high = bootstrap_ci(values, resamples=2000, seed=0)
        assert low < values.mean() < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 5  # ~1/sqrt(100) of the width in theory
    # Normal-theory check of the small case: 95% half-width ≈ 1.96·sd/√n.
    values = rng.binomial(1, 0.1, 400).astype(float)
    low, high = bootstrap_ci(values, resamples=4000, seed=1)
    expected = 1.96 * values.std() / np.sqrt(len(values))
    assert (high - low) / 2 == pytest.approx(expected, rel=0.15)


def test_bootstrap_of_a_constant_is_that_constant():
    assert tuple(bootstrap_ci(np.full(50, 0.25))) == (0.25, 0.25)


def test_paired_difference_interval_excludes_zero_only_for_a_real_lead():
    rng = np.random.default_rng(5)
    base = rng.random(500)
    better = base + 0.05 + rng.normal(0, 0.01, 500)  # a small, consistent lead per user
    noisy = base + rng.normal(0, 0.3, 500)  # no lead, much noise
    low, high = bootstrap_ci(better - base)
    assert 0.04 < low < 0.05 < high < 0.06
    low, high = bootstrap_ci(noisy - base)
    assert low < 0 < high
