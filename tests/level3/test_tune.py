"""Model selection: validation carved from training data only, the test split never read."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from level3_recsys.data import TIMECUT, TIMESPLIT
from level3_recsys.settings import load
from level3_recsys.tune import (
    MODELS,
    TUNING_FILE,
    grids,
    load_or_tune,
    tune,
    validation_split,
)
from tests.level3.conftest import synthetic_interactions

SMALL_GRIDS = {
    "validation_per_user": 2,
    "ease_lambda": [1.0, 30.0],
    "half_life": [1.0, 1e9],
    "knn_neighbours": [2, 10],
    "als_factors": [2, 8],
    "als_regularization": [0.1, 10.0],
    "bpr_factors": [4],
    "bpr_learning_rate": [0.01, 0.1],
}


def small_settings(**tune_overrides):
    return load(
        None,
        tune={**SMALL_GRIDS, **tune_overrides},
        train={"als_iterations": 3, "bpr_iterations": 10},
        data={"min_item_positives": 1},
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Both protocols' folders with a training and a test file (the test file is separate)."""
    interactions = synthetic_interactions(users=60, seed=4)
    latest = interactions.groupby("user_id")["timestamp"].transform("max")
    for folder in (".", TIMECUT, TIMESPLIT):
        (tmp_path / folder).mkdir(exist_ok=True)
        interactions.loc[interactions.timestamp < latest].to_csv(
            tmp_path / folder / "train.csv", index=False
        )
        interactions.loc[interactions.timestamp == latest].to_csv(
            tmp_path / folder / "test.csv", index=False
        )
    return tmp_path


def without_timing(result: dict) -> dict:
    return {key: value for key, value in result.items() if key != "seconds"}


def test_poisoned_test_split_changes_nothing(data_dir, tmp_path):
    """Selection reads training data only: a test split replaced by every possible pair, then
    removed, leaves every validation score and every choice unchanged."""
    settings = small_settings()
    clean = tune(settings, data_dir, tmp_path / "clean")
    train = pd.read_csv(data_dir / "train.csv")
    every_pair = pd.MultiIndex.from_product(
        [train.user_id.unique(), np.arange(100, 130)], names=["user_id", "item_id"]
    ).to_frame(index=False)
    for folder in (".", TIMECUT, TIMESPLIT):
        every_pair.assign(timestamp=1).to_csv(data_dir / folder / "test.csv", index=False)
    poisoned = tune(settings, data_dir, tmp_path / "poisoned")
    assert without_timing(poisoned) == without_timing(clean)
    for folder in (".", TIMECUT, TIMESPLIT):
        (data_dir / folder / "test.csv").unlink()
    assert without_timing(tune(settings, data_dir, tmp_path / "none")) == without_timing(clean)
    # and the search did search: every model has its full grid and a best point
    for protocol in clean["protocols"].values():
        assert set(protocol["chosen"]) == set(MODELS)
        # the switch is part of what the poisoned test split left unchanged (compared above)
        assert set(protocol["switch"]) == {"light", "medium", "heavy"}
        for name, points in grids(settings).items():
            rows = protocol["scores"][name]
            assert [row["params"] for row in rows] == points
            best = max(row["ndcg@10"] for row in rows)
            assert (
                next(r for r in rows if r["params"] == protocol["chosen"][name])["ndcg@10"] == best
            )


def test_validation_is_each_users_latest_training_positives(data_dir):
    settings = small_settings()
    train = pd.read_csv(data_dir / "train.csv")
    fit_part, valid_part, item_ids = validation_split(train, settings)
    assert len(fit_part) + len(valid_part) == len(train)  # min_item_positives 1: nothing dropped
    assert valid_part.groupby("user_id").size().eq(2).all()
    for user, valid in valid_part.groupby("user_id"):
        assert fit_part.loc[fit_part.user_id == user, "timestamp"].max() <= valid.timestamp.min()
    assert set(item_ids) == set(fit_part.item_id)


def test_validation_catalogue_counts_fit_positives_only(data_dir):
    """An item seen only in users' validation positives is not in the validation catalogue."""
    settings = small_settings()
    train = pd.read_csv(data_dir / "train.csv")
    latest = train.groupby("user_id")["timestamp"].transform("max")
    rare = train.loc[train.timestamp == latest].head(1).assign(item_id=999, timestamp=10**7)
    fit_part, valid_part, item_ids = validation_split(pd.concat([train, rare]), settings)
    assert 999 in set(valid_part.item_id) and 999 not in set(item_ids)


def test_saved_search_is_reused_only_while_data_and_grids_match(data_dir, tmp_path):
    settings = small_settings()
    first = load_or_tune(settings, data_dir, tmp_path / "tuning")
    saved = (tmp_path / "tuning" / TUNING_FILE).read_text()
    again = load_or_tune(settings, data_dir, tmp_path / "tuning")
    assert again == json.loads(saved) and again["seconds"] == first["seconds"]
    wider = small_settings(ease_lambda=[1.0, 30.0, 300.0])
    rerun = load_or_tune(wider, data_dir, tmp_path / "tuning")
    assert rerun["fingerprint"] != first["fingerprint"]
    assert len(rerun["protocols"]["leave_last"]["scores"]["ease"]) == 3
    train = pd.read_csv(data_dir / "train.csv")
    train.iloc[:-1].to_csv(data_dir / "train.csv", index=False)  # new training data
    assert load_or_tune(wider, data_dir, tmp_path / "tuning")["fingerprint"] != rerun["fingerprint"]


def test_missing_training_data_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.csv: file not found; run .*prepare"):
        tune(small_settings(), tmp_path, tmp_path / "out")


def test_switch_takes_a_peer_only_in_the_groups_where_it_wins_clearly_on_validation():
    import numpy as np

    from level3_recsys.tune import OURS, choose_switch

    rng = np.random.default_rng(0)
    groups = np.array(["light"] * 200 + ["medium"] * 200 + ["heavy"] * 200)
    ours = rng.uniform(0, 0.2, 600)
    knn = ours.copy()
    knn[:200] += 0.05  # clearly better for every light user
    knn[200:400] += rng.normal(0.002, 0.05, 200)  # a hair better on average, within the noise
    per_user = {OURS: ours, "itemknn": knn, "ease": ours - 0.01}
    switch, detail = choose_switch(per_user, groups, resamples=500)
    assert switch == {"light": "itemknn", "medium": OURS, "heavy": OURS}
    assert detail["light"]["lead_over_ours_ci"]["itemknn"][0] > 0
    low, high = detail["medium"]["lead_over_ours_ci"]["itemknn"]
    assert low < 0 < high
    assert choose_switch(per_user, np.array(["heavy"] * 600))[0]["light"] == OURS  # nobody there
