"""Stage 3, training: the protocol, evaluation, the registry, tuning, distributed training."""
