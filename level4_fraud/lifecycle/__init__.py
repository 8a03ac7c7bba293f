"""Stage 4, lifecycle: drift detection, Prometheus metrics, retraining with a gate, the replay."""
