"""A benchmark keeps what it measured: a missing tool costs its figure only, a failing step the
figures after it, never the file."""

from __future__ import annotations

import json

import pytest

from ml_common.bench import BenchRun, optional_figure
from ml_common.paths import bench_dir
from ml_common.report import render_table
from ml_common.system_tools import ToolMissing


def missing_promtool() -> int:
    raise ToolMissing("promtool", "promtool not found (install: Debian package prometheus)")


def read(level: int) -> dict:
    return json.loads((bench_dir() / f"level{level}.json").read_text())


def test_a_missing_tool_costs_only_its_figure() -> None:
    with BenchRun(9) as bench:
        bench.record({"ap": 0.7})
        bench.record(optional_figure("alert_rules_tested", missing_promtool))
        bench.record(optional_figure("promotions", lambda: 2))
    saved = read(9)
    assert saved["ap"] == 0.7 and saved["promotions"] == 2
    assert saved["alert_rules_tested"] is None
    assert saved["alert_rules_tested_not_measured"].endswith("Debian package prometheus)")
    assert "incomplete" not in saved
    assert saved["seconds"] >= 0 and "machine" in saved


def test_a_failing_step_keeps_the_figures_before_it() -> None:
    with pytest.raises(ZeroDivisionError), BenchRun(8) as bench:
        bench.record({"ap": 0.7})
        assert read(8)["incomplete"] == BenchRun.RUNNING  # written after each step
        bench.record({"auc": 1 / 0})
    saved = read(8)
    assert saved["ap"] == 0.7 and "auc" not in saved
    assert saved["incomplete"] == "stopped by ZeroDivisionError: division by zero"


def test_a_broken_measurement_is_not_a_missing_tool() -> None:
    def broken() -> int:
        raise RuntimeError("promtool test rules failed")

    with pytest.raises(RuntimeError, match="rules failed"):
        optional_figure("alert_rules_tested", broken)


def test_the_readme_table_says_not_measured(tmp_path) -> None:  # noqa: ANN001
    figures = {"alert_rules_tested": None, "alert_rules_tested_not_measured": "no promtool"}
    (tmp_path / "level4.json").write_text(json.dumps({**figures, "seconds": 1.0}))
    table = render_table(tmp_path)
    assert "`alert_rules_tested` | not measured |" in table
    assert "`alert_rules_tested_not_measured` | no promtool |" in table
