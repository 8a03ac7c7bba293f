"""The temporal split: latest positives held out, catalogue and user filters applied."""

import pandas as pd
import pytest

from level3_recsys.data import global_time_split, temporal_split
from level3_recsys.settings import DataSettings
from ml_common.datasets import DataError


def ratings_frame() -> pd.DataFrame:
    rows = []
    # user 1 rates items 10..16 at times 1..7, all >= 4; user 2 has only two positives.
    for t, item in enumerate(range(10, 17), start=1):
        rows.append((1, item, 5.0, t))
    rows += [(2, 10, 4.0, 1), (2, 11, 4.5, 2), (2, 12, 2.0, 3)]
    rows += [(3, 10, 4.0, 1), (3, 11, 4.0, 2), (3, 13, 4.0, 3), (3, 14, 4.0, 4)]
    frame = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    frame["title"] = "t" + frame["movieId"].astype(str)
    frame["genres"] = "Drama"
    return frame


def test_latest_positives_are_held_out():
    cfg = DataSettings(
        min_rating=4.0, min_item_positives=1, holdout_per_user=2, min_train_per_user=1
    )
    train, test, items = temporal_split(ratings_frame(), cfg)
    assert sorted(test.loc[test.user_id == 3, "item_id"]) == [13, 14]
    assert sorted(train.loc[train.user_id == 1, "item_id"]) == [10, 11, 12, 13, 14]
    # user 1's latest two (15, 16) are held out; nobody trains on them: not in the catalogue
    assert 1 not in set(test.user_id) and not {15, 16} & set(items.item_id)
    # user 2: two positives, needs 2 held out + 1 train → dropped; the 2.0 rating never counts.
    assert 2 not in set(train.user_id) | set(test.user_id)
    for user in set(test.user_id):
        assert (
            train.loc[train.user_id == user, "timestamp"].max()
            <= test.loc[test.user_id == user, "timestamp"].min()
        )
    assert items.set_index("item_id").loc[10, "train_positives"] == 2


def test_catalogue_counts_training_positives_only():
    """Item 14 has two positives, but one is user 3's held-out latest: it is not in the
    catalogue, and held-out items outside the catalogue leave the test set."""
    cfg = DataSettings(
        min_rating=4.0, min_item_positives=2, holdout_per_user=1, min_train_per_user=1
    )
    train, test, items = temporal_split(ratings_frame(), cfg)
    # training positives: 10 x3, 11 x2, 13 x2, 12/14/15 x1 (14's second positive is held out)
    assert set(items.item_id) == {10, 11, 13}
    assert set(train.item_id) <= {10, 11, 13} and set(test.item_id) <= {10, 11, 13}
    assert test[["user_id", "item_id"]].values.tolist() == [[2, 11]]
    assert items.set_index("item_id")["train_positives"].to_dict() == {10: 3, 11: 2, 13: 2}
    # users 1 and 3 keep training (they inform the models) although nothing of theirs is tested
    assert set(train.user_id) == {1, 2, 3}


def test_global_time_cut_trains_strictly_before_the_cut():
    cfg = DataSettings(min_rating=4.0, min_item_positives=1, holdout_per_user=1)
    frame = ratings_frame()
    train, test, items = global_time_split(frame, cfg, quantile=0.75)
    assert train.timestamp.max() < test.timestamp.min()
    assert set(test.user_id) <= set(train.user_id)
    assert set(test.item_id) <= set(train.item_id) == set(items.item_id)
    positives = frame.loc[frame.rating >= 4.0]
    cut = positives.timestamp.quantile(0.75)
    assert len(train) == (positives.timestamp < cut).sum()


def test_no_positive_is_a_clear_error():
    frame = ratings_frame().assign(rating=1.0)
    with pytest.raises(DataError, match="no rating >= 4.0"):
        temporal_split(frame, DataSettings())


def test_per_user_time_cut_holds_out_each_users_latest_share_by_time():
    from level3_recsys.data import user_time_split

    cfg = DataSettings(min_rating=4.0, min_item_positives=1, timesplit_holdout_fraction=0.3)
    frame = ratings_frame()
    # user 4 trains on 14, 15, 16 (and 10) first, so user 1's latest items are in the catalogue
    later = pd.DataFrame(
        [
            (4, item, 5.0, t, f"t{item}", "Drama")
            for t, item in enumerate([14, 15, 16, 10, 11, 12, 13], 1)
        ],
        columns=frame.columns,
    )
    train, test, _ = user_time_split(pd.concat([frame, later], ignore_index=True), cfg)
    # user 1: 7 positives at t=1..7, cut at index floor(0.7 * 7) = 4 → t >= 5 held out
    assert sorted(test.loc[test.user_id == 1, "timestamp"]) == [5, 6, 7]
    assert sorted(train.loc[train.user_id == 1, "timestamp"]) == [1, 2, 3, 4]
    for user in set(test.user_id):  # everything held out is later than the user's training
        assert (
            train.loc[train.user_id == user, "timestamp"].max()
            < test.loc[test.user_id == user, "timestamp"].min()
        )


def test_per_user_time_cut_holds_out_ties_in_time_together():
    from level3_recsys.data import user_time_split

    frame = ratings_frame()
    frame.loc[(frame.userId == 1) & (frame.timestamp >= 4), "timestamp"] = 4  # one burst
    cfg = DataSettings(min_rating=4.0, min_item_positives=1, timesplit_holdout_fraction=0.3)
    train, test, _ = user_time_split(frame, cfg)
    # the cut-off (index 4 of 7) falls inside the burst at t=4: all of it is held out, none trains
    assert sorted(train.loc[train.user_id == 1, "timestamp"]) == [1, 2, 3]
