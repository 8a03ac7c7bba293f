"""From the simulator to feature frames: stream days through the feature builder.

Training periods are collected here; with ``use_feast`` the training rows are instead joined from
the Feast offline store (see :mod:`level4_fraud.feature_store`), which gives the same values.
"""

from __future__ import annotations

import pandas as pd

from level4_fraud.features import FeatureBuilder, build_features
from level4_fraud.simulate import SimulationConfig, TransactionSimulator


def new_builder(sim_config: SimulationConfig, delay_days: int = 7) -> FeatureBuilder:
    """A feature builder sized for the simulated world."""
    return FeatureBuilder(
        sim_config.n_customers, sim_config.n_terminals, delay_days, sim_config.start_date
    )


def collect_period(
    simulator: TransactionSimulator,
    builder: FeatureBuilder,
    start: int,
    stop: int,
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """Feature rows of days ``start … stop − 1`` (earlier days only feed the builder)."""
    frames = build_features(simulator, start, stop, builder, progress=progress)
    return pd.concat(list(frames), ignore_index=True)
