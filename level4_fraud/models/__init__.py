"""Stage 2, models: FraudNet (with the one training loop), LightGBM, anomaly detector, ensemble."""
