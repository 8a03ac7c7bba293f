"""Splits, and the leak test: no feature of a cut-off uses data from after it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from level2_churn import clean, features, split
from level2_churn.stages import event_cutoffs
from tests.level2.conftest import small_config


def test_stratified_holdout_keeps_the_churn_rate() -> None:
    y = pd.Series(np.r_[np.ones(300), np.zeros(700)].astype(int))
    parts = split.stratified_holdout(y, 0.2, 0.2, seed=0)
    assert sorted(np.r_[parts.train, parts.valid, parts.test].tolist()) == list(range(1000))
    for part in (parts.train, parts.valid, parts.test):
        assert abs(y.iloc[part].mean() - 0.3) < 0.01


def test_walk_forward_trains_only_on_earlier_cutoffs() -> None:
    cutoffs = pd.Series(np.repeat([10, 11, 12, 13, 14], 4))
    folds = split.walk_forward(cutoffs, test_months=2)
    assert [f[0] for f in folds] == [13, 14]
    for month, train, test in folds:
        assert (cutoffs.iloc[train] < month).all() and (cutoffs.iloc[test] == month).all()
    with pytest.raises(ValueError, match="cut-offs"):
        split.walk_forward(cutoffs, test_months=5)


def test_walk_forward_before_a_month_never_sees_it() -> None:
    """The tuning folds: walk-forward on the cut-offs before the first test month only."""
    cutoffs = pd.Series(np.repeat([10, 11, 12, 13, 14], 4))
    folds = split.walk_forward(cutoffs, test_months=2, window=2, before=13)
    assert [f[0] for f in folds] == [11, 12]
    for month, train, test in folds:
        assert set(cutoffs.iloc[train]) == {m for m in (month - 2, month - 1) if m >= 10}
        assert (cutoffs.iloc[test] == month).all()


def _truncate(raw: Path, out: Path, cutoff: pd.Timestamp, poison: bool) -> Path:
    """Copy the sources keeping only what had been loaded before ``cutoff``; optionally add
    absurd future records (huge usage, floods of cancel tickets) after it."""
    out.mkdir()
    for name in ("billing", "tickets", "usage"):
        frame = pd.read_csv(raw / f"{name}.csv", dtype=str)
        keep = pd.to_datetime(frame["loaded_at"]) < cutoff
        future = frame[~keep]
        frame = frame[keep]
        if poison and len(future):
            future = future.copy()
            if name == "usage":
                future["minutes"] = "999"
            if name == "tickets":
                future["subject"] = "how do I cancel my plan"
            frame = pd.concat([frame, future])
        frame.to_csv(out / f"{name}.csv", index=False)
    shutil.copy(raw / "customers.csv", out / "customers.csv")
    return out


@pytest.mark.parametrize("poison", [False, True], ids=["future-deleted", "future-poisoned"])
def test_features_use_nothing_after_their_cutoff(small_raw: Path, tmp_path: Path, poison) -> None:
    cfg = small_config()
    dataset = cfg.datasets["generated"]
    cutoff = event_cutoffs(dataset)[1]  # a cut-off with future data after it
    start = clean.month_start(cutoff)
    tz = dataset.generator.local_timezone
    full = features.event_features(clean.clean_sources(small_raw, tz), cutoff)
    cut = _truncate(small_raw, tmp_path / "cut", start, poison)
    truncated = features.event_features(clean.clean_sources(cut, tz), cutoff)
    label = "churn"  # the label is *meant* to come from after the cut-off
    pd.testing.assert_frame_equal(full.drop(columns=label), truncated.drop(columns=label))
    assert full["usage_minutes_m1"].sum() > 0


def test_late_records_are_invisible_until_loaded(small_raw: Path) -> None:
    """A record from before the cut-off that was loaded after it must not count."""
    cfg = small_config()
    tz = cfg.datasets["generated"].generator.local_timezone
    sources = clean.clean_sources(small_raw, tz)
    cutoff = event_cutoffs(cfg.datasets["generated"])[2]
    usage = sources.usage_monthly
    late = usage[(usage["month"] == cutoff - 1) & (usage["loaded_month"] >= cutoff)]
    assert len(late) > 0
    feats = features.event_features(sources, cutoff)
    visible = usage[(usage["month"] == cutoff - 1) & (usage["loaded_month"] < cutoff)]
    expected = visible.groupby("customer_id")["minutes"].sum().reindex(feats.index).fillna(0)
    np.testing.assert_allclose(feats["usage_minutes_m1"], expected)
