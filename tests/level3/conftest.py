"""Level 3 fixtures: a tiny serving bundle built from synthetic interactions (fast), a Redis."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from level3_recsys import data as data_stage
from level3_recsys.batch import precompute
from level3_recsys.bundle import ItemScorer, UserHistories
from level3_recsys.models import EASE, ItemKNN
from level3_recsys.settings import load
from level3_recsys.store import SqliteStore
from level3_recsys.train import feature_reference, make_readable, save_model_folder, user_histories
from ml_common.services import free_port
from tests.conftest import require_system_tool


def synthetic_interactions(users: int = 40, items: int = 30, seed: int = 0) -> pd.DataFrame:
    """Two taste clusters: even users like items 100..114, odd users items 115..129."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, users + 1):
        pool = np.arange(100, 115) if user % 2 == 0 else np.arange(115, 100 + items)
        chosen = rng.choice(pool, size=8, replace=False)
        for t, item in enumerate(chosen):
            rows.append((user, int(item), 1_000_000 + 100 * t))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def build_bundle(dest: Path) -> Path:
    """A serving bundle (champion EASE v1, challenger item-kNN v2, store) in ``dest``."""
    train = synthetic_interactions()
    user_ids = np.sort(train["user_id"].unique())
    item_ids = np.arange(100, 130)
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": [f"Movie {i}" for i in item_ids],
            "genres": "Drama",
            "train_positives": 0,
        }
    )
    matrix = data_stage.to_matrix(train, user_ids, item_ids)
    dataset = data_stage.Dataset(user_ids, item_ids, matrix, matrix[:0], items)
    histories = user_histories(train, dataset)
    reference = feature_reference(dataset)
    for alias, model, name, version in (
        ("champion", EASE(10.0).fit(matrix), "ease_recency", "1"),
        ("challenger", ItemKNN(5).fit(matrix), "itemknn_recency", "2"),
    ):
        folder = dest / alias
        save_model_folder(folder, model, name, 5.0, dataset, histories, reference, {})
        meta = pd.read_json(folder / "model.json", typ="series").to_dict()
        meta.update({"version": version, "alias": alias})
        (folder / "model.json").write_text(pd.Series(meta).to_json())
    scorer = ItemScorer.load(dest / "champion")
    store = SqliteStore(dest / "store.sqlite")
    store.put_many(
        precompute(scorer, UserHistories.load(dest / "champion" / "users.npz"), 20), scorer.version
    )
    store.close()
    make_readable(dest)
    return dest


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture
def settings():
    return load(
        None,
        serve={
            "breaker_failures": 2,
            "breaker_reset_seconds": 0.3,
            "model_timeout_ms": 50,
            "store_timeout_ms": 50,
            "admin_token": "test-token",
            "drift_window": 500,
        },
    )


@pytest.fixture
def redis_url(tmp_path: Path):
    """A real redis-server on a free port (Debian's package), stopped after the test."""
    binary = require_system_tool("redis-server")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    client.close()
    process.terminate()
    process.wait(10)
