"""From the simulator to feature frames: stream days through the feature builder.

Training periods are collected here; with ``use_feast`` the training rows are instead joined from
the Feast offline store (see :mod:`level4_fraud.feature_store`), which gives the same values.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from tqdm import tqdm

from level4_fraud.features import FeatureBuilder
from level4_fraud.simulate import SimulationConfig, TransactionSimulator


def new_builder(sim_config: SimulationConfig, delay_days: int = 7) -> FeatureBuilder:
    """A feature builder sized for the simulated world."""
    return FeatureBuilder(
        sim_config.n_customers, sim_config.n_terminals, delay_days, sim_config.start_date
    )


def stream_days(
    simulator: TransactionSimulator,
    builder: FeatureBuilder,
    stop: int,
    *,
    progress: bool = False,
    desc: str = "days",
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(day, features)`` for each day after the builder's last one up to ``stop − 1``."""
    first = builder.last_day + 1 if builder.last_day is not None else 0
    for day in tqdm(range(first, stop), desc=desc, unit="day", disable=not progress):
        yield day, builder.transform_day(simulator.day(day))


def collect_period(
    simulator: TransactionSimulator,
    builder: FeatureBuilder,
    start: int,
    stop: int,
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """Feature rows of days ``start … stop − 1`` (earlier days only feed the builder)."""
    frames = [
        frame
        for day, frame in stream_days(simulator, builder, stop, progress=progress, desc="features")
        if day >= start
    ]
    return pd.concat(frames, ignore_index=True)
