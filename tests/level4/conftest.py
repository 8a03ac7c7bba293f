"""Tiny simulated worlds shared by level 4 tests (part 1)."""

from __future__ import annotations

import pandas as pd
import pytest

from level4_fraud.config import SimulationConfig
from level4_fraud.data.features import features_frame
from level4_fraud.data.simulate import TransactionSimulator

TINY = {"n_customers": 400, "n_terminals": 800, "seed": 3}


@pytest.fixture(scope="session")
def tiny_sim() -> TransactionSimulator:
    """400 customers, 800 terminals, 60 days, no drift."""
    return TransactionSimulator(SimulationConfig(**TINY, n_days=60))


@pytest.fixture(scope="session")
def tiny_features(tiny_sim: TransactionSimulator) -> pd.DataFrame:
    """Feature rows of days 0–59 of the tiny world."""
    return features_frame(tiny_sim, 0, 60)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Tiny models train fastest on one thread; more threads crawl on a busy 2-core runner."""
    import torch

    torch.set_num_threads(1)
