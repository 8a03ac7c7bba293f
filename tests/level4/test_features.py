"""Features: correct windows, label delay respected, and no feature ever sees the future."""

from __future__ import annotations

import numpy as np
import pandas as pd

from level4_fraud.data.features import FEATURES, FeatureBuilder, features_frame
from level4_fraud.data.simulate import TransactionSimulator


def _brute_force(raw: pd.DataFrame, row: pd.Series, delay: int = 7) -> dict[str, float]:
    """Each feature of one transaction straight from the definition."""
    day, t = row["tx_time_days"], row["tx_time_seconds"]
    out = {}
    cust = raw[(raw["customer_id"] == row["customer_id"]) & (raw["tx_time_seconds"] <= t)]
    for w in (1, 7, 30):
        window = cust[cust["tx_time_days"] > day - w]
        out[f"customer_nb_tx_{w}d"] = len(window)
        out[f"customer_avg_amount_{w}d"] = window["tx_amount"].mean()
        term = raw[
            (raw["terminal_id"] == row["terminal_id"])
            & (raw["tx_time_days"] >= day - delay - w)
            & (raw["tx_time_days"] < day - delay)
        ]
        out[f"terminal_nb_tx_{w}d"] = len(term)
        out[f"terminal_risk_{w}d"] = term["tx_fraud"].mean() if len(term) else 0.0
    return out


def test_features_match_their_definition(tiny_sim: TransactionSimulator, tiny_features) -> None:
    raw = tiny_sim.simulate(60)
    sample = tiny_features[tiny_features["tx_time_days"] >= 40].sample(40, random_state=0)
    for _, row in sample.iterrows():
        expected = _brute_force(raw, row)
        for name, value in expected.items():
            assert np.isclose(row[name], value), (name, row[name], value)
    assert tiny_features[FEATURES].notna().all().all()


def test_no_feature_sees_the_future(tiny_sim: TransactionSimulator, tiny_features) -> None:
    """Rewrite everything after a cut (and the labels inside the delay): features before it stay."""
    cut, delay = 45, 7
    days = [tiny_sim.day(d) for d in range(60)]
    tampered = []
    for d, frame in enumerate(days):
        frame = frame.copy()
        if d >= cut - delay:  # labels not yet known at the cut
            frame["tx_fraud"] = 1 - frame["tx_fraud"]
        if d >= cut:  # the future itself
            frame["tx_amount"] = frame["tx_amount"] * 10
            frame["customer_id"] = frame["customer_id"].sample(frac=1, random_state=d).to_numpy()
        tampered.append(frame)
    builder = FeatureBuilder(400, 800, delay, tiny_sim.config.start_date)
    rebuilt = pd.concat([builder.transform_day(f) for f in tampered], ignore_index=True)
    before = tiny_features["tx_time_days"] < cut
    pd.testing.assert_frame_equal(
        rebuilt.loc[before, FEATURES].reset_index(drop=True),
        tiny_features.loc[before, FEATURES].reset_index(drop=True),
    )
    # And the tampering does show after the cut (the test can fail).
    after = ~before
    assert not np.allclose(
        rebuilt.loc[after, "customer_avg_amount_7d"],
        tiny_features.loc[after, "customer_avg_amount_7d"],
    )


def test_days_must_arrive_in_order(tiny_sim: TransactionSimulator) -> None:
    builder = FeatureBuilder(400, 800)
    builder.transform_day(tiny_sim.day(0))
    try:
        builder.transform_day(tiny_sim.day(2))
    except ValueError as exc:
        assert "in order" in str(exc)
    else:
        raise AssertionError("skipping a day must be refused")


def test_streaming_frame_matches_batch(tiny_sim: TransactionSimulator, tiny_features) -> None:
    part = features_frame(tiny_sim, 30, 40)
    expected = tiny_features[tiny_features["tx_time_days"].between(30, 39)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part[FEATURES], expected[FEATURES])
