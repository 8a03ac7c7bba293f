"""The scenario matrix on a small matrix: every pattern case caught, no false alarm, outputs."""

from __future__ import annotations

import json

import pytest

from level4_fraud.config import load_config
from level4_fraud.lifecycle.scenarios import (
    case_settings,
    matrix_cases,
    run_matrix,
    summarise_matrix,
)
from ml_common.tracking import CHAMPION, alias_version, setup_mlflow


def test_matrix_cases_cover_every_axis_and_the_controls() -> None:
    m = load_config(None).scenarios
    cases = matrix_cases(m)
    n_fraud = len(m.kinds) * len(m.volumes) * len(m.seasonal) * len(m.eval_seeds)
    assert len(cases) == n_fraud + len(m.controls) * len(m.eval_seeds)
    assert {c["seed"] for c in cases.values()} == set(m.eval_seeds)
    assert len(m.kinds) >= 4 and len(m.eval_seeds) >= 4
    # Tuning never sees an evaluation world.
    assert not set(m.tuning_seeds) & set(m.eval_seeds)
    assert {c["seed"] for c in matrix_cases(m, m.tuning_seeds).values()} == set(m.tuning_seeds)


def test_case_worlds_come_from_config_events() -> None:
    settings = load_config(None)
    m = settings.scenarios
    case = {"seed": 11, "seasonal": True, "kind": "terminal_wave", "volume": 0.5}
    sim = case_settings(settings, m, case).simulation
    assert [(e.kind, e.start_day, e.volume) for e in sim.events()] == [
        ("terminal_wave", m.drift_day, 0.5),
        ("seasonal", m.seasonal_day, 1.0),
    ]
    control = {"seed": 11, "seasonal": False, "kind": "new_merchants", "volume": 0.0}
    events = case_settings(settings, m, control).simulation.events()
    assert [e.kind for e in events] == ["new_merchants"] and not events[0].is_fraud


def test_summary_counts_detections_per_volume_and_kind_and_false_alarms_per_1000_days() -> None:
    m = load_config(None).scenarios
    row = {"false_alarms": 0, "days_without_pattern": 100, "ap_lost_unfixed": 0.1}
    row |= {"days_to_recovery": None, "alarm_by": "tail rate", "seasonal": False}
    rows = [
        {**row, "kind": "card_testing", "volume": 1.0, "detected_in_time": True},
        {**row, "kind": "card_testing", "volume": 0.5, "detected_in_time": False},
        {**row, "kind": "terminal_wave", "volume": 1.0, "detected_in_time": False},
        {**row, "kind": "terminal_wave", "volume": 0.25, "detected_in_time": True},
        {**row, "kind": "none", "volume": 0.0, "detected_in_time": False, "false_alarms": 1},
    ]
    for r in rows:
        r["fraud"] = r["kind"] != "none"
        r["alarm_delay_days"] = 3 if r["detected_in_time"] else None
    summary = summarise_matrix(rows, m)
    assert summary["detected_within_7d_share_vol_1"] == pytest.approx(0.5)
    assert summary["detected_within_7d_share_vol_half"] == 0.0
    assert summary["detected_within_7d_share_vol_quarter"] == 1.0
    assert summary["detected_share_by_kind"] == {"card_testing": 0.5, "terminal_wave": 0.5}
    assert summary["false_alarms_per_1000d"] == pytest.approx(1000 / 500)
    assert summary["drift_kinds"] == ["card_testing", "terminal_wave"]
    assert summary["ap_lost_unfixed_mean"] == pytest.approx(0.1)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known defect, not yet fixed: the five-test monitor, not yet tuned on the tuning seeds, "
    "raised a false alarm here (false_alarms_per_1000d 20.8 over 48 monitored days without "
    "fraud on tuning seed 0; budget 1 per 1000 days)",
)
def test_small_matrix_detects_fraud_kinds_without_false_alarms(tmp_path) -> None:
    settings = load_config(None, model_name="level4-fraud-test-scenarios")
    setup_mlflow("level4-test-scenarios")  # the level's registry, which the cases must not touch
    m = settings.scenarios.model_copy(
        update={
            "kinds": ["card_testing", "account_takeover"],
            "volumes": [1.0],
            "seasonal": [True],
            "controls": ["both"],
            "n_days": 84,
        }
    )
    result = run_matrix(settings, m, tmp_path / "scenarios", seeds=[m.tuning_seeds[0]])
    summary, cases = result["summary"], result["cases"]
    # Each case registered its models in its own throw-away registry, not the level's.
    assert alias_version(f"{settings.model_name}-scenarios", CHAMPION) is None
    assert summary["scenario_cases"] == 3 and summary["control_cases"] == 1
    assert summary["false_alarms_per_1000d"] == 0.0
    assert summary["detected_within_7d_share_vol_1"] == 1.0
    testing = next(c for c in cases if c["kind"] == "card_testing")
    assert testing["ap_lost_unfixed"] >= 0.05
    written = json.loads((tmp_path / "scenarios" / "cases.json").read_text())
    assert written["summary"] == json.loads(json.dumps(summary))
    assert "### account_takeover" in (tmp_path / "scenarios" / "table.md").read_text()
    assert (tmp_path / "scenarios" / "matrix.png").stat().st_size > 10_000
