"""Alert rules: unit-tested with promtool, and they only read metrics that are really exported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from level4_fraud.lifecycle import alerts
from level4_fraud.lifecycle.alerts import PROMETHEUS_DIR, RULE_FILES, alert_rules, metric_names
from level4_fraud.lifecycle.metrics import FraudMetrics
from level4_fraud.serving.onnx_service import ServiceMetrics


def _exported(registry) -> set[str]:
    text = generate_latest(registry).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


@pytest.mark.requires("promtool")
def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    count = alerts.tested_alert_rules()
    assert count == sum(len(alert_rules(PROMETHEUS_DIR / name)) for name in RULE_FILES) == 10


@pytest.mark.requires("promtool")
def test_promtool_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests are not vacuous: a rule with a changed threshold makes promtool fail."""
    shutil.copytree(PROMETHEUS_DIR, tmp_path / "prometheus")
    rules = tmp_path / "prometheus" / "fraud-rules.yml"
    rules.write_text(rules.read_text().replace("> 0.05\n", "> 5\n", 1))
    with pytest.raises(RuntimeError, match="promtool test rules"):
        alerts.tested_alert_rules(tmp_path / "prometheus")


def test_rules_read_only_metrics_that_are_exported() -> None:
    service = ServiceMetrics()
    service.latency.labels("1").observe(0.001)
    service.requests.labels("champion", "allow", "1").inc()
    service.info.labels("champion", "level4-fraud", "1", "run").set(1)
    exported = _exported(service.registry)
    for rule in alert_rules(PROMETHEUS_DIR / "fraud-rules.yml"):
        assert metric_names(rule["expr"]) <= exported, rule["alert"]
    monitor = FraudMetrics()
    monitor.feature_psi.labels("tx_amount").set(0.1)
    written = _exported(monitor.registry)  # what the replay writes to metrics.prom
    for rule in alert_rules(PROMETHEUS_DIR / "lifecycle" / "fraud-lifecycle-rules.yml"):
        assert metric_names(rule["expr"]) and metric_names(rule["expr"]) <= written, rule["alert"]


def test_without_promtool_the_bench_figure_is_not_measured_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ml_common.bench import optional_figure

    monkeypatch.setenv("PATH", "/nonexistent")  # a machine without Debian's prometheus package
    figure = optional_figure("alert_rules_tested", alerts.tested_alert_rules)
    reason = "promtool not found (install: Debian package prometheus)"
    assert figure == {"alert_rules_tested": None, "alert_rules_tested_not_measured": reason}
