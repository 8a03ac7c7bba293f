"""The handbook's card-level bootstrap: the fast weighted AP equals sklearn's, and the intervals
come from ml_common's one bootstrap helper with the same draws for every model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from level4_fraud.data.features import LABEL
from level4_fraud.training.handbook import OURS, WeightedAP, card_bootstrap_ap


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_ap_equals_sklearns_with_ties_and_zero_weights(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(3000) < 0.05).astype(int)
    score = np.round(rng.random(3000) + 0.3 * y, 2)  # rounded: many tied scores
    ap = WeightedAP(y, score)
    assert ap(np.ones(3000)) == pytest.approx(average_precision_score(y, score), abs=1e-12)
    for _ in range(5):
        weights = rng.multinomial(3000, np.full(3000, 1 / 3000))  # many zeros, some 2s and 3s
        expected = average_precision_score(y, score, sample_weight=weights)
        assert ap(weights) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(ap(np.where(y == 1, 0, 1)))  # no positive drawn: undefined, dropped


def test_card_intervals_are_paired_and_cover_the_point_estimates() -> None:
    rng = np.random.default_rng(0)
    cards = rng.integers(0, 300, 4000)
    y = (rng.random(4000) < 0.04).astype(int)
    test = pd.DataFrame({"customer_id": cards, LABEL: y})
    good = y + rng.normal(0, 0.6, 4000)
    scores = {OURS: good, "peer": good + rng.normal(0, 0.05, 4000), "weak": rng.random(4000)}
    ap_ci, lead_ci, draws = card_bootstrap_ap(test, scores, "peer", resamples=300, seed=0)
    assert draws == 300
    for name, s in scores.items():
        low, high = ap_ci[name]
        assert low < average_precision_score(y, s) < high
    lead = average_precision_score(y, good) - average_precision_score(y, scores["peer"])
    assert lead_ci[0] < lead < lead_ci[1]
    # Paired: the lead's interval is far narrower than either AP's (they share every draw).
    assert lead_ci[1] - lead_ci[0] < 0.5 * (ap_ci[OURS][1] - ap_ci[OURS][0])
    again = card_bootstrap_ap(test, scores, "peer", resamples=300, seed=0)
    assert again == (ap_ci, lead_ci, draws)
