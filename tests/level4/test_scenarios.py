"""The scenario matrix on a small matrix: every pattern case caught, no false alarm, outputs."""

from __future__ import annotations

import json

import pytest

from level4_fraud.config import load_config
from level4_fraud.lifecycle.scenarios import matrix_cases, run_matrix, summarise_matrix
from ml_common.tracking import CHAMPION, alias_version, setup_mlflow


def test_matrix_cases_cover_every_axis_and_the_no_pattern_cases() -> None:
    m = load_config(None).scenarios
    cases = matrix_cases(m)
    n_settings = len(m.seeds) * len(m.seasonal)
    assert len(cases) == n_settings * (1 + len(m.pattern_days) * len(m.volumes))
    assert sum(c["pattern_day"] is None for c in cases) == n_settings


def test_min_detectable_volume_is_the_smallest_of_an_unbroken_run() -> None:
    m = load_config(None).scenarios
    row = {"false_alarms": 0, "days_without_pattern": 10}
    rows = [
        {**row, "pattern_day": 70, "volume": 1.0, "detected_in_time": True, "alarm_delay_days": 2},
        {**row, "pattern_day": 80, "volume": 0.5, "detected_in_time": False, "alarm_delay_days": 9},
        {**row, "pattern_day": 70, "volume": 0.5, "detected_in_time": True, "alarm_delay_days": 5},
        {**row, "pattern_day": 70, "volume": 0.25, "detected_in_time": True, "alarm_delay_days": 7},
        {**row, "pattern_day": 80, "volume": 0.25, "detected_in_time": False},
        {**row, "pattern_day": None, "volume": 0.0, "detected_in_time": False},
    ]
    for r in rows:
        r.setdefault("alarm_delay_days", None)
    summary = summarise_matrix(rows, m)
    assert summary["min_detectable_volume"] == 1.0  # ¼ caught once by luck does not count
    assert summary["scenario_detected_share"] == pytest.approx(3 / 5)
    assert summary["scenario_false_alarms_per_100d"] == 0.0
    # Late alarms count as alarms here, with the median delay of those that fired.
    assert summary["alarms_by_volume"]["0.5"] == {
        "alarmed": 2,
        "cases": 2,
        "median_delay_days": 7.0,
    }
    assert summary["alarms_by_volume"]["0.25"]["alarmed"] == 1


@pytest.mark.slow
def test_small_matrix_detects_every_pattern_without_false_alarms(tmp_path) -> None:
    settings = load_config(None, model_name="level4-fraud-test-scenarios")
    setup_mlflow("level4-test-scenarios")  # the level's registry, which the cases must not touch
    m = settings.scenarios.model_copy(
        update={
            "seeds": [0],
            "pattern_days": [70],
            "volumes": [1.0, 0.5],
            "seasonal": [True],
            "n_days": 82,
        }
    )
    result = run_matrix(settings, m, tmp_path / "scenarios")  # two cases at once (workers: 2)
    summary, cases = result["summary"], result["cases"]
    # Each case registered its models in its own throw-away registry, not the level's.
    assert alias_version(f"{settings.model_name}-scenarios", CHAMPION) is None
    assert summary["scenario_cases"] == 3
    # Measured (seed 0, seasonal on): alarm after 3 days at volume 1, 4 at volume ½; no alarm
    # on the 22 pattern-free days of the no-pattern case nor before the pattern elsewhere.
    assert summary["scenario_false_alarms_per_100d"] == 0.0
    assert summary["scenario_detected_share"] == 1.0
    assert summary["min_detectable_volume"] == 0.5
    full = next(c for c in cases if c["volume"] == 1.0)
    assert full["alarm_delay_days"] <= 4
    assert full["ap_lost_unfixed"] >= 0.08  # measured 0.152: the pattern costs AP until fixed
    written = json.loads((tmp_path / "scenarios" / "cases.json").read_text())
    assert written["summary"] == json.loads(json.dumps(summary))
    assert "| seed |" in (tmp_path / "scenarios" / "table.md").read_text()
    assert (tmp_path / "scenarios" / "matrix.png").stat().st_size > 10_000
