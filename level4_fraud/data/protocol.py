"""The evaluation protocol's data: periods, walk-forward folds, and the feature frames they cut.

- :func:`protocol_periods` — the handbook's train period, feedback delay and test week;
- :func:`known_compromised_removed` — the handbook's test set: cards already known to be
  compromised (a labelled fraud past the delay) dropped from each test day;
- :func:`walk_forward_folds` — the prequential folds inside a training window, written once and
  used by model selection (:mod:`level4_fraud.training.train`) and tuning
  (:mod:`level4_fraud.training.tune`);
- :func:`collect_period` — stream days through the feature builder (with ``use_feast`` the
  training rows are instead joined from the Feast offline store, see
  :mod:`level4_fraud.data.feature_store`, which gives the same values);
- :func:`prepare_data` — part 2's world cut into its windows (:class:`Splits`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from level4_fraud.config import IndustrialSettings, Level4Settings, SimulationConfig
from level4_fraud.data.features import FEATURES, LABEL, FeatureBuilder, build_features
from level4_fraud.data.simulate import TransactionSimulator
from ml_common.config import ConfigError


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


def protocol_periods(settings: Level4Settings) -> tuple[int, int, int, int]:
    """``(train_start, train_stop, test_start, test_stop)`` of the handbook protocol (stops
    exclusive): ``train_days`` from ``train_start_day``, ``delay_days`` skipped, ``test_days``."""
    p = settings.protocol
    train_stop = p.train_start_day + p.train_days
    test_start = train_stop + p.delay_days
    return p.train_start_day, train_stop, test_start, test_start + p.test_days


def day_slice(frame: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    """Rows of days ``start … stop − 1``."""
    days = frame["tx_time_days"]
    return frame[(days >= start) & (days < stop)]


def known_compromised_removed(
    frame: pd.DataFrame, train_start: int, test_start: int, test_stop: int, delay_days: int
) -> pd.DataFrame:
    """The handbook's test set: days ``test_start … test_stop − 1`` without known-compromised cards.

    As ``get_train_test_set`` in the Fraud Detection Handbook (chapter "Baseline fraud detection
    system"): a card is known compromised on test day ``t`` when it had a fraud on a day from
    ``train_start`` up to ``t − delay_days − 1``, i.e. a fraud already labelled once the feedback
    delay has passed; its payments of day ``t`` are dropped (it would have been blocked). Labels of
    the delay period enter day by day, never the test day's own. ``frame`` must hold every day
    from ``train_start`` to ``test_stop − 1`` (``customer_id``, ``tx_time_days``, ``tx_fraud``).
    """
    days = frame["tx_time_days"].to_numpy()
    fraud = frame["tx_fraud"].to_numpy() == 1
    cards = frame["customer_id"].to_numpy()
    kept = []
    for day in range(test_start, test_stop):
        known_until = day - delay_days  # exclusive: labels of earlier days are known on ``day``
        known = np.unique(cards[fraud & (days >= train_start) & (days < known_until)])
        today = days == day
        kept.append(np.flatnonzero(today & ~np.isin(cards, known)))
    return frame.iloc[np.concatenate(kept)] if kept else frame.iloc[:0]


def walk_forward_folds(
    train_start: int, train_days: int, n_folds: int, delay_days: int, test_days: int
) -> list[tuple[int, int, int, int]]:
    """Prequential folds inside a training window, as day ranges (stops exclusive).

    Fold ``i`` tests on the ``test_days`` ending ``i`` test-periods before the window's end, and
    trains on the ``train_days − delay_days − test_days`` days that end ``delay_days`` before its
    test (clipped at ``train_start``): the label delay sits between them, as in production.
    Returns ``(train_start, train_stop, test_start, test_stop)`` per fold, newest first; folds
    with no training day are left out.
    """
    end = train_start + train_days
    folds = []
    for fold in range(n_folds):
        test_stop = end - fold * test_days
        test_start = test_stop - test_days
        fold_train_stop = test_start - delay_days
        fold_train_start = max(train_start, fold_train_stop - (train_days - delay_days - test_days))
        if fold_train_stop > fold_train_start and test_start >= train_start:
            folds.append((fold_train_start, fold_train_stop, test_start, test_stop))
    return folds


@dataclass
class Splits:
    """Feature matrices of the time line's windows (float32 rows, 0/1 labels)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray  # old patterns only, before the switch
    y_test: np.ndarray
    X_adapt: np.ndarray  # first days of the new pattern, labelled
    y_adapt: np.ndarray
    X_new: np.ndarray  # later new-pattern days: legitimate rows and new-pattern frauds only
    y_new: np.ndarray
    features: list[str]
    day_train: np.ndarray | None = None  # each training row's day (walk-forward tuning)


def prepare_data(settings: IndustrialSettings) -> Splits:
    """Simulate the world and cut it into the time line's windows."""
    from level4_fraud.data.features import features_frame

    w = settings.world
    train_start = w.warmup_days
    test_start = train_start + w.train_days + w.delay_days
    if test_start + w.test_days > w.new_pattern_day:
        raise ConfigError("world: the old-pattern test window must end before new_pattern_day")
    adapt_end = w.new_pattern_day + w.adapt_days
    new_start = adapt_end + w.delay_days
    n_days = new_start + w.test_days
    simulator = TransactionSimulator(
        SimulationConfig(
            seed=settings.seed,
            n_customers=w.n_customers,
            n_terminals=w.n_terminals,
            n_days=n_days,
            new_pattern_day=w.new_pattern_day,
        )
    )
    frame = features_frame(simulator, 0, n_days)
    day = frame["tx_time_days"].to_numpy()
    scenario = frame["tx_fraud_scenario"].to_numpy()
    X = frame[FEATURES].to_numpy(dtype=np.float32)
    y = frame[LABEL].to_numpy(dtype=np.float32)

    def window(start: int, stop: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        keep = (day >= start) & (day < stop)
        if mask is not None:
            keep &= mask
        return np.ascontiguousarray(X[keep]), y[keep]

    new_only = (scenario == 0) | (scenario == 4)
    splits = Splits(
        *window(train_start, train_start + w.train_days),
        *window(test_start, test_start + w.test_days),
        *window(w.new_pattern_day, adapt_end),
        *window(new_start, new_start + w.test_days, new_only),
        features=list(FEATURES),
        day_train=day[(day >= train_start) & (day < train_start + w.train_days)],
    )
    if splits.y_new.sum() == 0 or splits.y_test.sum() == 0:
        raise ConfigError("the simulated windows hold no fraud: enlarge the world or the windows")
    return splits
