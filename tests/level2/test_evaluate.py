"""The business metric and the threshold it picks, checked against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from level2_churn import evaluate
from level2_churn.settings import BusinessSettings

BUSINESS = BusinessSettings(contact_cost=5, offer_cost=50, acceptance_rate=0.3, customer_value=500)


def test_profit_formula_by_hand() -> None:
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.3, 0.1])
    # contact the first two: one churner kept with prob 0.3, one loyal customer may take the offer
    expected = 1 * 0.3 * (500 - 50) - 1 * 0.3 * 50 - 2 * 5
    assert evaluate.profit_at(y, p, 0.5, BUSINESS) == pytest.approx(expected)
    assert evaluate.profit_at(y, p, 1.1, BUSINESS) == 0


def test_best_threshold_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.2).astype(int)
    p = np.clip(0.2 + 0.3 * y + rng.normal(0, 0.2, 500), 0, 1).round(2)  # ties on purpose
    threshold, profit = evaluate.best_threshold(y, p, BUSINESS)
    brute = max(evaluate.profit_at(y, p, t, BUSINESS) for t in np.unique(p))
    assert profit == pytest.approx(brute)
    assert evaluate.profit_at(y, p, threshold, BUSINESS) == pytest.approx(profit)


def test_useless_campaign_contacts_nobody() -> None:
    costly = BusinessSettings(
        contact_cost=1000, offer_cost=50, acceptance_rate=0.3, customer_value=500
    )
    y = np.array([1, 0, 1])
    threshold, profit = evaluate.best_threshold(y, np.array([0.9, 0.2, 0.7]), costly)
    assert profit == 0 and threshold > 1


def test_paired_difference_and_summary() -> None:
    model = [{"auc": 0.85, "ap": 0.66}, {"auc": 0.86, "ap": 0.67}, {"auc": 0.84, "ap": 0.65}]
    base = [{"auc": 0.84, "ap": 0.65}, {"auc": 0.85, "ap": 0.66}, {"auc": 0.835, "ap": 0.64}]
    diff = evaluate.paired_difference(model, base, "auc")
    assert diff["mean"] == pytest.approx(np.mean([0.01, 0.01, 0.005]))
    assert 0 <= diff["p_value"] < 0.05
    summary = evaluate.summarise(model)
    assert summary["auc_mean"] == pytest.approx(0.85) and summary["auc_std"] == pytest.approx(0.01)
