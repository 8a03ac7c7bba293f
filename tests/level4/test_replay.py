"""The replay on a short simulation: the alarm fires after the switch and not before."""

from __future__ import annotations

import json

from level4_fraud.config import load_config
from level4_fraud.lifecycle.replay import print_summary, run_replay


def test_replay_alarms_after_the_switch_only(tmp_path) -> None:
    settings = load_config(
        None,
        simulation={
            "n_customers": 2000,
            "n_terminals": 4000,
            "seed": 1,
            "n_days": 70,
            "seasonal_day": 52,
            "new_pattern_day": 62,
        },
        replay={"first_train_day": 31, "first_train_days": 14, "monitor_start_day": 52},
        retrain={
            "train_days": 10,
            "holdout_days": 3,
            "schedule_days": 100,
            "after_alarm_every_days": 100,
        },
        torch={"epochs": 2, "num_threads": 1},
        lightgbm={"n_estimators": 60},
        ensemble={"isolation_trees": 100},
        model_name="level4-fraud-test-replay",
        use_feast=False,
    )
    out = tmp_path / "replay"
    result = run_replay(settings, out, progress=False)
    summary = result["summary"]
    assert summary["false_alarms_stable"] == 0
    assert summary["false_alarms_harmless"] == 0
    assert summary["alarm_days"] and summary["alarm_days"][0] >= 62
    # Measured delay over world seeds 0-2: 0 / 0 / 1 days (0 on the test's seed 1).
    assert summary["alarm_delay_days"] is not None and summary["alarm_delay_days"] <= 2
    # Measured AP of the first champion before the switch: 0.693-0.701 over world seeds 0-2.
    assert summary["ap_before_drift"] >= 0.68
    # The alarm started the retraining flow; its decision is recorded (no labels of the new
    # pattern exist yet because of the delay, so the gate must not promote on noise).
    retrains = [d for d in result["days"] if d["retrain"] == "drift"]
    assert len(retrains) == 1 and retrains[0]["day"] == summary["alarm_days"][0]
    decisions = [json.loads(x) for x in (out / "decisions.jsonl").read_text().splitlines()]
    assert len(decisions) == 1 and decisions[0]["trigger"] == "drift"
    assert decisions[0]["promoted"] is False  # measured: no promotion on world seeds 0-2
    timeline = json.loads((out / "timeline.json").read_text())
    assert [d["day"] for d in timeline["days"]] == list(range(52, 70))
    assert (out / "timeline.png").stat().st_size > 10_000
    prom = (out / "metrics.prom").read_text()
    assert "fraud_drift_alarm 1.0" in prom and "fraud_feature_psi{" in prom
    assert "alarm delay" in print_summary(result)


def test_cli_reports_bad_config_in_one_message(tmp_path, capsys) -> None:
    from level4_fraud.__main__ import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("simulation:\n  n_customers: -5\n")
    assert main(["--config", str(bad), "replay"]) == 2
    err = capsys.readouterr().err
    assert "n_customers" in err and err.count("\n") == 1
    assert main(["--config", str(tmp_path / "missing.yaml"), "replay"]) == 2
    assert not (tmp_path / "replay").exists()


def _record(day: int, settings, alarm: bool = False, by: str | None = None) -> dict:
    from level4_fraud.lifecycle.replay import period_of

    return {
        "day": day,
        "period": period_of(day, settings),
        "alarm": alarm,
        "alarm_by": by if alarm else None,
        "ap": 0.7,
        "promoted": False,
        "retrain": None,
        "champion_trained_on": [0, 50],
    }


def test_summarise_knows_every_event_an_alarm_inside_any_fraud_event_is_a_detection() -> None:
    from level4_fraud.lifecycle.replay import summarise

    settings = load_config(
        None,
        simulation={
            "n_days": 100,
            "seasonal_day": None,
            "new_pattern_day": None,
            "drift_events": [
                {"kind": "seasonal", "start_day": 55},
                {"kind": "terminal_wave", "start_day": 60, "duration_days": 5},
                {"kind": "card_testing", "start_day": 95},
            ],
        },
    )
    # The wave's span: days 60-64 drawn, terminals stay compromised 28 days: to day 91.
    alarms = {58: "tail rate", 80: "suspect terminals", 93: "tail rate", 96: "suspect cards"}
    records = [_record(d, settings, d in alarms, alarms.get(d)) for d in range(50, 100)]
    assert records[0]["period"] == "stable" and records[8]["period"] == "harmless"
    assert records[30]["period"] == "fraud_drift" and records[43]["period"] == "harmless"
    summary = summarise(records, [], settings)
    wave, testing = summary["fraud_events"]
    assert wave["kind"] == "terminal_wave" and (wave["start_day"], wave["last_day"]) == (60, 91)
    # Day 80 is 20 days into the wave: a (late) detection, not a false alarm.
    assert wave["alarm_delay_days"] == 20 and wave["alarm_by"] == "suspect terminals"
    assert testing["alarm_delay_days"] == 1 and testing["alarm_by"] == "suspect cards"
    assert summary["false_alarms_stable"] == 0
    assert summary["false_alarms_harmless"] == 2  # days 58 and 93: outside every fraud event
    assert summary["drift_day"] == 60 and summary["alarm_delay_days"] == 20
    assert summary["days_without_pattern"] == 50 - 32 - 5  # monitored days outside both spans
