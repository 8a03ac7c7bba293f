"""The business metric and the threshold it picks (checked against brute force), and the
corrected resampled t-test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from level2_churn import evaluate, threshold
from level2_churn.settings import BusinessSettings

BUSINESS = BusinessSettings(contact_cost=5, offer_cost=50, acceptance_rate=0.3, customer_value=500)


def test_profit_formula_by_hand() -> None:
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.3, 0.1])
    # contact the first two: one churner kept with prob 0.3, one loyal customer may take the offer
    expected = 1 * 0.3 * (500 - 50) - 1 * 0.3 * 50 - 2 * 5
    assert threshold.profit_at(y, p, 0.5, BUSINESS) == pytest.approx(expected)
    assert threshold.profit_at(y, p, 1.1, BUSINESS) == 0


def test_best_threshold_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.2).astype(int)
    p = np.clip(0.2 + 0.3 * y + rng.normal(0, 0.2, 500), 0, 1).round(2)  # ties on purpose
    cut, profit = threshold.best_threshold(y, p, BUSINESS)
    brute = max(threshold.profit_at(y, p, t, BUSINESS) for t in np.unique(p))
    assert profit == pytest.approx(brute)
    assert threshold.profit_at(y, p, cut, BUSINESS) == pytest.approx(profit)


def test_useless_campaign_contacts_nobody() -> None:
    costly = BusinessSettings(
        contact_cost=1000, offer_cost=50, acceptance_rate=0.3, customer_value=500
    )
    y = np.array([1, 0, 1])
    cut, profit = threshold.best_threshold(y, np.array([0.9, 0.2, 0.7]), costly)
    assert profit == 0 and cut > 1


def test_paired_difference_and_summary() -> None:
    model = [{"auc": 0.85, "ap": 0.66}, {"auc": 0.86, "ap": 0.67}, {"auc": 0.84, "ap": 0.65}]
    base = [{"auc": 0.84, "ap": 0.65}, {"auc": 0.85, "ap": 0.66}, {"auc": 0.835, "ap": 0.64}]
    diff = evaluate.paired_difference(model, base, "auc", n_train=90, n_test=10)
    assert diff["mean"] == pytest.approx(np.mean([0.01, 0.01, 0.005]))
    assert 0 <= diff["p_value_naive"] < 0.05
    assert diff["p_value"] > diff["p_value_naive"]  # the correction is conservative
    summary = evaluate.summarise(model)
    assert summary["auc_mean"] == pytest.approx(0.85) and summary["auc_std"] == pytest.approx(0.01)


def test_corrected_resampled_ttest_by_hand() -> None:
    """Nadeau-Bengio: the variance of the mean grows from s^2/J to (1/J + n_test/n_train) s^2."""
    d = np.array([0.01, 0.01, 0.005])
    t, p = evaluate.corrected_resampled_ttest(d, n_train=90, n_test=10)
    plain_t = d.mean() / (d.std(ddof=1) / np.sqrt(3))  # 5.0, the plain paired t statistic
    assert plain_t == pytest.approx(5.0)
    assert t == pytest.approx(plain_t * np.sqrt((1 / 3) / (1 / 3 + 1 / 9)))  # 4.330
    assert p == pytest.approx(2 * stats.t.sf(t, df=2))
    # With a vanishing test share the correction disappears: the plain paired t-test.
    _, p_plain = evaluate.corrected_resampled_ttest(d, n_train=10**9, n_test=1)
    assert p_plain == pytest.approx(stats.ttest_rel(d, np.zeros(3)).pvalue)
    assert evaluate.corrected_resampled_ttest(np.zeros(4), 90, 10) == (0.0, 1.0)
