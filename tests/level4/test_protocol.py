"""The handbook protocol on the default simulation meets the issue's targets (slow)."""

from __future__ import annotations

import pytest

from level4_fraud.config import load_config
from level4_fraud.training.evaluate import card_precision_top_k, fraud_metrics
from level4_fraud.training.train import run_protocol


def test_card_precision_removes_cards_already_caught() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "tx_time_days": [0, 0, 0, 1, 1, 1],
            "customer_id": [1, 2, 3, 1, 2, 3],
            "tx_fraud": [1, 0, 0, 1, 0, 1],
        }
    )
    scores = [0.9, 0.1, 0.2, 0.9, 0.1, 0.5]
    mean, daily = card_precision_top_k(frame, scores, k=1)
    # Day 0: card 1 caught. Day 1: card 1 is removed, card 3 is next and is fraud.
    assert daily == [1.0, 1.0] and mean == 1.0
    metrics = fraud_metrics(frame, scores, k=1)
    assert metrics["cp1"] == 1.0 and 0 < metrics["ap"] <= 1


@pytest.mark.slow
def test_default_simulation_meets_the_targets() -> None:
    result = run_protocol(load_config(torch={"num_threads": 1}), progress=False)
    # The targets are AP >= 0.70 and CP@100 >= 0.30. Measured once, on the default world's
    # seed 0 (the bench's protocol.json, 2026-11-30): ensemble AP 0.720, CP@100 0.449, LightGBM AP
    # 0.708. The test always runs that seed; other seeds' spread was not measured (one run of the
    # default world takes minutes), so the margins are a guess: 0.02-0.05.
    assert result["ensemble"]["ap"] >= 0.70
    assert result["ensemble"]["cp100"] >= 0.40
    assert result["lightgbm"]["ap"] >= 0.68  # the baseline, reported beside it
