"""The README's part-1 tables are rendered from a bench run's own files."""

from __future__ import annotations

import json

from level4_fraud.bench import part1_tables


def _metrics(ap: float) -> dict[str, float]:
    return {"auc": 0.88, "ap": ap, "cp100": 0.44}


def test_part1_tables_quote_the_run_files(tmp_path) -> None:
    (tmp_path / "replay").mkdir()
    protocol = {
        "periods": {"train": [37, 72], "test": [79, 86]},
        "n_train": 342_101,
        "n_test": 68_535,
        "fraud_rate_test": 0.009,
        "weights": {"lightgbm": 0.5, "fraudnet": 0.5, "isolation_forest": 0.0},
        **{
            n: _metrics(ap)
            for n, ap in [
                ("ensemble", 0.7213),
                ("lightgbm", 0.708),
                ("fraudnet", 0.704),
                ("isolation_forest", 0.179),
            ]
        },
    }
    summary = {
        "drift_day": 120,
        "alarm_delay_days": 4,
        "alarm_by": "suspect cards",
        "false_alarms_stable": 0,
        "false_alarms_harmless": 0,
        "ap_before_drift": 0.713,
        "ap_drift_unfixed": 0.454,
        "fix_day": 130,
        "fixed_by": "drift",
        "ap_after_recovery": 0.77,
        "ap_recovery_ratio": 1.08,
        "retrains": 3,
        "promotions": 2,
    }
    (tmp_path / "protocol.json").write_text(json.dumps(protocol))
    (tmp_path / "replay" / "timeline.json").write_text(json.dumps({"summary": summary}))
    decisions = [
        {
            "day": 124,
            "trigger": "drift",
            "champion": {"ap": 0.70},
            "challenger": {"ap": 0.75},
            "promoted": True,
            "reason": "challenger better by 0.05",
        },
        {
            "day": 80,
            "trigger": "first",
            "champion": {},
            "challenger": {"ap": 0.7},
            "promoted": True,
            "reason": "no champion yet",
        },
    ]
    (tmp_path / "replay" / "decisions.jsonl").write_text(
        "\n".join(json.dumps(d) for d in decisions) + "\n"
    )
    (tmp_path / "latency.json").write_text(
        json.dumps({"requests": 2000, "p50_ms": 2.5, "p99_ms": 3.1})
    )
    (tmp_path / "deployed.json").write_text(
        json.dumps({"version": 5, "rows": 512, "max_abs_diff": 2e-7, "matches": True})
    )
    text = part1_tables(tmp_path)
    assert "| ensemble | 0.880 | 0.721 | 0.440 |" in text
    assert "| alarm delay (days) | 4 (test: suspect cards) |" in text
    assert "| 124 | drift | 0.700 | 0.750 | promoted: challenger better by 0.05 |" in text
    assert "| 80 | first | — | 0.700 | promoted: no champion yet |" in text
    assert "p99 3.1 ms" in text and "version 5" in text and "matches: true" in text
