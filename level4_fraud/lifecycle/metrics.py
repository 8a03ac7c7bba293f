"""Prometheus metrics of the fraud system, shared by the scoring service and the replay.

The service exposes them at ``/metrics``; the replay writes them to a text file
(``artifacts/level4/metrics.prom``, the node-exporter textfile format) after each day. The alert
rules in ``docker/prometheus/fraud-rules.yml`` read these names:

- ``fraud_drift_tail_ratio`` / ``fraud_drift_alarm`` — the anomaly-tail drift test and its alarm;
- ``fraud_feature_psi{feature=…}`` — feature drift; ``fraud_score_ks`` — score drift;
- ``fraud_delayed_ap`` / ``fraud_delayed_cp100`` — the latest day whose labels have arrived,
  ``fraud_reference_ap`` — the champion's AP at deployment (performance-drop alert);
- ``fraud_champion_version``, ``fraud_promotions_total``, ``fraud_retrain_decisions_total``;
- ``fraud_scoring_requests_total{decision=…, model_version=…}``,
  ``fraud_scoring_latency_seconds{model_version=…}`` (part 1's service; the ONNX tier exports the
  same names, with ``arm``, plus ``fraud_model_info`` and ``fraud_model_reloads_total``).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, write_to_textfile


class FraudMetrics:
    """One registry with every level-4 metric (a fresh one per service or replay)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.tail_ratio = Gauge(
            "fraud_drift_tail_ratio", "anomaly tail rate / expected", registry=r
        )
        self.drift_alarm = Gauge(
            "fraud_drift_alarm", "1 while the drift alarm is active", registry=r
        )
        self.feature_psi = Gauge("fraud_feature_psi", "PSI vs reference", ["feature"], registry=r)
        self.score_ks = Gauge("fraud_score_ks", "KS statistic of champion scores", registry=r)
        self.delayed_ap = Gauge("fraud_delayed_ap", "AP on the latest labelled day", registry=r)
        self.delayed_cp = Gauge("fraud_delayed_cp100", "CP@100, latest labelled day", registry=r)
        self.reference_ap = Gauge("fraud_reference_ap", "champion AP at deployment", registry=r)
        self.champion_version = Gauge("fraud_champion_version", "registry version", registry=r)
        self.promotions = Counter("fraud_promotions", "challengers promoted", registry=r)
        self.decisions = Counter(
            "fraud_retrain_decisions", "retraining decisions", ["outcome"], registry=r
        )
        self.requests = Counter(
            "fraud_scoring_requests",
            "scored transactions",
            ["decision", "model_version"],
            registry=r,
        )
        self.latency = Histogram(
            "fraud_scoring_latency_seconds",
            "scoring latency",
            ["model_version"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )

    def write_textfile(self, path: str | Path) -> None:
        """Write the current values in Prometheus text format (atomically)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), self.registry)
