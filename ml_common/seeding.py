"""One call that makes a run repeatable: Python's ``random``, NumPy, and PyTorch if installed."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int, deterministic_torch: bool = False) -> np.random.Generator:
    """Seed every random number generator the levels use and return a fresh NumPy ``Generator``.

    Args:
        seed: the seed; the same seed gives the same numbers on the same machine and versions.
        deterministic_torch: also ask PyTorch for deterministic kernels (slower on GPU).
    """
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - legacy global state, still used by some libraries
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
        if deterministic_torch:
            torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)
