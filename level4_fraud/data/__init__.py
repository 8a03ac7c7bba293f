"""Stage 1, data: the simulated stream, time-aware features, the Feast store, protocol splits."""
