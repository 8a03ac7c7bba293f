"""The alert rules and their unit tests: which alerts are tested, firing and not firing.

The rules live in ``docker/prometheus/`` (``fraud-rules.yml``: the scoring service's metrics;
``lifecycle/fraud-lifecycle-rules.yml``: the drift monitor's), their ``promtool test rules``
files in ``docker/prometheus/tests/``. :func:`tested_alert_rules` runs promtool on every test
file and counts the alerts that have both a firing and a non-firing case (the bench key
``alert_rules_tested``); an alert without both, or a failing promtool run, raises.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ml_common.system_tools import require_tool

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "docker" / "prometheus"
RULE_FILES = ("fraud-rules.yml", "lifecycle/fraud-lifecycle-rules.yml")
TEST_FILES = ("tests/fraud-rules.test.yml", "tests/fraud-lifecycle-rules.test.yml")
METRIC = re.compile(r"\b(fraud_[a-z0-9_]+)\b")


def alert_rules(path: Path) -> list[dict[str, Any]]:
    """Every alerting rule of a Prometheus rule file."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def metric_names(expr: str) -> set[str]:
    """The ``fraud_*`` metric names an expression reads."""
    return set(METRIC.findall(expr))


def _coverage(test_file: Path) -> dict[str, set[bool]]:
    """alert name → {True if some case expects it firing, False if some case expects silence}."""
    cases: dict[str, set[bool]] = {}
    for test in yaml.safe_load(test_file.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    return cases


def tested_alert_rules(root: Path = PROMETHEUS_DIR, promtool: str | None = None) -> int:
    """Run ``promtool test rules`` on every test file; return how many alerts are covered.

    Raises:
        ToolMissing: promtool is not installed (a RuntimeError; the bench records the figure
            as not measured with this reason).
        RuntimeError: a promtool test fails.
        ValueError: an alert lacks a firing or a non-firing case.
    """
    promtool = promtool or require_tool("promtool")
    covered: dict[str, set[bool]] = {}
    for name in TEST_FILES:
        result = subprocess.run(
            [promtool, "test", "rules", str(root / name)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"promtool test rules {name} failed:\n{result.stdout}{result.stderr}"
            )
        for alert, kinds in _coverage(root / name).items():
            covered.setdefault(alert, set()).update(kinds)
    alerts = [rule["alert"] for name in RULE_FILES for rule in alert_rules(root / name)]
    missing = [a for a in alerts if covered.get(a) != {True, False}]
    if missing:
        raise ValueError(f"alerts without both a firing and a non-firing test: {missing}")
    return len(alerts)
