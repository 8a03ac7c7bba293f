"""The serving store: each user's precomputed top-N list, written by the nightly batch.

Two back ends with one interface: :class:`SqliteStore` (embedded default, one file) and
:class:`RedisStore` (selected by config ``store.backend: redis``). A record is the ranked item ids,
the model version that produced them and when (Unix seconds), so the service can tell a fresh
list from a stale one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from level3_recsys.settings import StoreSettings


@dataclass(frozen=True)
class StoredList:
    items: list[int]
    model_version: str
    computed_at: float

    def age_hours(self, now: float | None = None) -> float:
        return ((now or time.time()) - self.computed_at) / 3600.0


class RecommendationStore(Protocol):
    def put_many(self, lists: Iterable[tuple[int, list[int]]], model_version: str) -> int: ...

    def get(self, user_id: int) -> StoredList | None: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


class SqliteStore:
    """One table ``recommendations(user_id PRIMARY KEY, items JSON, model_version, computed_at)``.

    Connections are per thread (sqlite objects must stay in the thread that made them).
    ``read_only`` opens the file with ``mode=ro`` (the container mounts the bundle read-only).
    ``busy_timeout_s`` bounds how long a read waits on a locked file (the service passes its
    store timeout, well under the latency budget: a locked store fails fast to the fallback).
    """

    def __init__(self, path: Path, read_only: bool = False, busy_timeout_s: float = 5.0) -> None:
        self.path, self.read_only, self.busy_timeout_s = Path(path), read_only, busy_timeout_s
        self._local = threading.local()
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS recommendations ("
                    "user_id INTEGER PRIMARY KEY, items TEXT NOT NULL, "
                    "model_version TEXT NOT NULL, computed_at REAL NOT NULL)"
                )

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.read_only:
                conn = sqlite3.connect(
                    f"file:{self.path}?mode=ro",
                    uri=True,
                    timeout=self.busy_timeout_s,
                )
            else:
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s)
            self._local.conn = conn
        return conn

    def put_many(self, lists: Iterable[tuple[int, list[int]]], model_version: str) -> int:
        now = time.time()
        rows = [(int(u), json.dumps(items), model_version, now) for u, items in lists]
        conn = self._connect()
        with conn:
            conn.executemany("INSERT OR REPLACE INTO recommendations VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def get(self, user_id: int) -> StoredList | None:
        row = (
            self._connect()
            .execute(
                "SELECT items, model_version, computed_at FROM recommendations WHERE user_id = ?",
                (int(user_id),),
            )
            .fetchone()
        )
        if row is None:
            return None
        return StoredList(json.loads(row[0]), row[1], float(row[2]))

    def ping(self) -> bool:
        """Reads the table (so a missing file, a missing table or a lock all fail)."""
        self._connect().execute("SELECT 1 FROM recommendations LIMIT 1").fetchall()
        return True

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class RedisStore:
    """Key ``<prefix>:<user_id>`` → JSON ``{"items", "model_version", "computed_at"}``."""

    def __init__(self, url: str, prefix: str = "level3:recs", timeout_s: float = 0.05) -> None:
        import redis

        self.prefix = prefix
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=max(timeout_s, 0.5)
        )

    def put_many(self, lists: Iterable[tuple[int, list[int]]], model_version: str) -> int:
        now, count = time.time(), 0
        pipe = self.client.pipeline(transaction=False)
        for user_id, items in lists:
            record = {"items": items, "model_version": model_version, "computed_at": now}
            pipe.set(f"{self.prefix}:{int(user_id)}", json.dumps(record))
            count += 1
            if count % 1000 == 0:
                pipe.execute()
        pipe.execute()
        return count

    def get(self, user_id: int) -> StoredList | None:
        raw = self.client.get(f"{self.prefix}:{int(user_id)}")
        if raw is None:
            return None
        record = json.loads(raw)
        return StoredList(record["items"], record["model_version"], float(record["computed_at"]))

    def ping(self) -> bool:
        return bool(self.client.ping())

    def close(self) -> None:
        self.client.close()


def open_store(
    cfg: StoreSettings, default_sqlite: Path, read_only: bool = False, timeout_s: float = 5.0
) -> RecommendationStore:
    """The store the config selects (``backend: sqlite | redis``); ``timeout_s`` bounds a call."""
    if cfg.backend == "redis":
        return RedisStore(cfg.redis_url, timeout_s=timeout_s)
    path = Path(cfg.sqlite_path) if cfg.sqlite_path else default_sqlite
    return SqliteStore(path, read_only, busy_timeout_s=timeout_s)
