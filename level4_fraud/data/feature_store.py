"""Serving the features through Feast: offline store for training joins, sqlite online store.

- :class:`SnapshotWriter` appends each day's start-of-day snapshots (customer spending, terminal
  risk with the label delay) to the offline store's parquet files as the days arrive.
- :func:`open_store` builds the :class:`feast.FeatureStore` (registry, sqlite online store, file
  offline store) with every path under ``artifacts/level4/feast`` and applies the definitions of
  :mod:`level4_fraud.data.feature_repo`.
- :func:`training_frame` is the point-in-time join: each transaction gets the snapshot valid at
  its timestamp (``get_historical_features``); :func:`~level4_fraud.data.features.combine` then adds
  the intraday part. A test checks it reproduces the streaming builder's features exactly.
- :func:`push_online` writes a day's snapshots to the online store (what ``materialize`` does for
  a time range, without re-reading the parquet files); :func:`online_snapshot` reads one
  customer's and one terminal's values for the scoring service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from level4_fraud.data.feature_repo import CUSTOMER_VIEW, TERMINAL_VIEW, definitions
from level4_fraud.data.features import CUSTOMER_SNAPSHOT, TERMINAL_SNAPSHOT, FeatureBuilder, combine
from ml_common.paths import level_dir

SNAPSHOT_COLUMNS = CUSTOMER_SNAPSHOT + TERMINAL_SNAPSHOT
# Feast's "view:feature" references of every snapshot column (joins and online reads).
FEATURE_REFS = [f"{CUSTOMER_VIEW}:{c}" for c in CUSTOMER_SNAPSHOT] + [
    f"{TERMINAL_VIEW}:{c}" for c in TERMINAL_SNAPSHOT
]


def feast_dir() -> Path:
    """``artifacts/level4/feast``."""
    return level_dir(4) / "feast"


def open_store(root: Path | None = None, apply: bool = True) -> Any:
    """A Feast store rooted at ``root`` (default :func:`feast_dir`), definitions applied."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    root = Path(root or feast_dir())
    (root / "data").mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="level4_fraud",
        provider="local",
        registry=str(root / "registry.db"),
        online_store={"type": "sqlite", "path": str(root / "online.db")},
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
        repo_path=str(root),
    )
    store = FeatureStore(config=config)
    if apply:
        store.apply(definitions(root / "data"))
    return store


class SnapshotWriter:
    """Collects daily snapshots and writes them to the offline store's parquet files."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or feast_dir())
        self._customer: list[pd.DataFrame] = []
        self._terminal: list[pd.DataFrame] = []

    def add_day(self, builder: FeatureBuilder, day: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Take ``day``'s start-of-day snapshots from ``builder`` (call before transforming it)."""
        customer, terminal = builder.customer_snapshot(day), builder.terminal_snapshot(day)
        self._customer.append(customer)
        self._terminal.append(terminal)
        return customer, terminal

    def flush(self) -> None:
        """Write everything collected (atomically replaces the files)."""
        from ml_common.atomic import atomic_write

        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        for name, parts in ((CUSTOMER_VIEW, self._customer), (TERMINAL_VIEW, self._terminal)):
            if parts:
                with atomic_write(data / f"{name}.parquet", "wb") as handle:
                    pd.concat(parts, ignore_index=True).to_parquet(handle, index=False)


def training_frame(store: Any, transactions: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join of the snapshots onto ``transactions``, then the intraday features.

    Every payment keeps its row, however many share a customer (or terminal) and a second: Feast
    answers one row per distinct entity key and timestamp (two payments by one customer in the
    same second came back as one, and the join lost a payment). So each view is asked once per
    distinct ``(key, timestamp)`` and its answer is mapped back onto every payment by that key.

    Args:
        store: an opened Feast store whose offline files cover the transactions' days.
        transactions: raw transactions (simulator columns), any number of days.
    """
    values: dict[str, np.ndarray] = {}
    for view, key, columns in (
        (CUSTOMER_VIEW, "customer_id", CUSTOMER_SNAPSHOT),
        (TERMINAL_VIEW, "terminal_id", TERMINAL_SNAPSHOT),
    ):
        keys = transactions[[key, "tx_datetime"]].rename(columns={"tx_datetime": "event_timestamp"})
        entity_df = keys.drop_duplicates(ignore_index=True)
        refs = [f"{view}:{c}" for c in columns]
        joined = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
        joined["event_timestamp"] = _naive_utc(joined["event_timestamp"])
        keys = keys.assign(event_timestamp=_naive_utc(keys["event_timestamp"]))
        mapped = keys.merge(
            joined[[key, "event_timestamp", *columns]],
            on=[key, "event_timestamp"],
            how="left",
            validate="many_to_one",
        )
        if len(mapped) != len(transactions):  # cannot happen after validate; a guard, not a fix
            raise RuntimeError(f"the {view} join returned {len(mapped)} rows for {len(keys)}")
        for c in columns:
            values[c] = mapped[c].fillna(0.0).to_numpy(dtype=float)
    position = np.arange(len(transactions))
    parts = []
    for _, day in transactions.assign(_row=position).groupby("tx_time_days", sort=True):
        rows = day.pop("_row").to_numpy()
        parts.append(combine(day, {c: v[rows] for c, v in values.items()}))
    return pd.concat(parts, ignore_index=True)


def _naive_utc(stamps: pd.Series) -> pd.Series:
    """Timestamps as naive UTC (Feast answers tz-aware UTC; the simulator's are naive)."""
    stamps = pd.to_datetime(stamps)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.astype("datetime64[ns]")


def push_online(store: Any, customer: pd.DataFrame, terminal: pd.DataFrame) -> None:
    """Write one day's snapshots into the online store (newest values win)."""
    store.write_to_online_store(CUSTOMER_VIEW, customer)
    store.write_to_online_store(TERMINAL_VIEW, terminal)


def online_snapshot(store: Any, customer_id: int, terminal_id: int) -> dict[str, float | None]:
    """The online snapshot values of one customer and one terminal (``None`` where unknown)."""
    response = store.get_online_features(
        features=FEATURE_REFS,
        entity_rows=[{"customer_id": int(customer_id), "terminal_id": int(terminal_id)}],
    ).to_dict()
    return {c: response[c][0] for c in SNAPSHOT_COLUMNS}
