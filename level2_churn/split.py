"""Split: stratified train/validation/test and K folds for snapshots; walk-forward for events.

Walk-forward: to score the cut-off of month *t*, a model may learn only from cut-offs whose label
month had ended by then (cut-off < *t*), exactly what would have been known in production.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold, train_test_split

Fold = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class HoldoutSplit:
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def stratified_holdout(
    y: pd.Series, test_size: float, valid_size: float, seed: int
) -> HoldoutSplit:
    """Positions of a stratified train / validation / test split (sizes are shares of all rows)."""
    positions = np.arange(len(y))
    rest, test = train_test_split(positions, test_size=test_size, stratify=y, random_state=seed)
    train, valid = train_test_split(
        rest, test_size=valid_size / (1 - test_size), stratify=y.iloc[rest], random_state=seed
    )
    return HoldoutSplit(np.sort(train), np.sort(valid), np.sort(test))


def stratified_folds(y: pd.Series | np.ndarray, k: int, seed: int) -> list[Fold]:
    """K stratified, shuffled folds as (train positions, test positions)."""
    y = np.asarray(y)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def repeated_stratified_folds(
    y: pd.Series | np.ndarray, k: int, repeats: int, seed: int
) -> list[Fold]:
    """``repeats`` rounds of K stratified folds, reshuffled each round (``repeats * k`` folds)."""
    y = np.asarray(y)
    if repeats == 1:
        return stratified_folds(y, k, seed)
    splitter = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def walk_forward(
    cutoffs: pd.Series, test_months: int, window: int | None = None, before: int | None = None
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(test cut-off, train positions, test positions) for each of the last ``test_months``.

    Training rows are cut-offs strictly before the test cut-off (their label month is over),
    the last ``window`` of them when a window is given (a sliding window bounds cost and memory).
    With ``before``, only cut-offs earlier than it are used: tuning folds that never see the
    test months.
    """
    values = cutoffs.to_numpy()
    months = np.unique(values if before is None else values[values < before])
    if len(months) <= test_months:
        raise ValueError(
            f"walk-forward needs more than {test_months} cut-offs, found {len(months)}"
        )
    folds = []
    for month in months[-test_months:]:
        earliest = month - window if window else -np.inf
        train = np.flatnonzero((values < month) & (values >= earliest))
        folds.append((int(month), train, np.flatnonzero(values == month)))
    return folds
