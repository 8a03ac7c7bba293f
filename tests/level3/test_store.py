"""Both store back ends, Redis against a real redis-server."""

import time

import pytest

from level3_recsys.settings import StoreSettings
from level3_recsys.store import RedisStore, SqliteStore, open_store


def check_roundtrip(store) -> None:
    assert store.get(7) is None
    assert store.put_many([(7, [3, 2, 1]), (8, [9])], "v5") == 2
    record = store.get(7)
    assert record.items == [3, 2, 1] and record.model_version == "v5"
    assert record.age_hours() < 0.01
    assert abs(record.computed_at - time.time()) < 60
    store.put_many([(7, [4])], "v6")  # a later batch replaces the list
    assert store.get(7).items == [4] and store.get(8).items == [9]
    assert store.ping()


def test_sqlite_store(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    check_roundtrip(store)
    store.close()
    reader = SqliteStore(tmp_path / "s.sqlite", read_only=True)
    assert reader.get(8).items == [9]
    with pytest.raises(Exception, match="readonly"):
        reader.put_many([(1, [1])], "v")


def test_redis_store(redis_url):
    store = open_store(StoreSettings(backend="redis", redis_url=redis_url), default_sqlite=None)
    assert isinstance(store, RedisStore)
    check_roundtrip(store)
    store.close()


def test_redis_down_raises_quickly():
    store = RedisStore("redis://127.0.0.1:1/0", timeout_s=0.05)
    start = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 (redis' ConnectionError)
        store.get(1)
    assert time.monotonic() - start < 5


def test_service_reads_precomputed_lists_from_redis(redis_url, settings, tiny_bundle):
    """The redis back end selected by config serves the batch's lists end to end."""
    from fastapi.testclient import TestClient

    from level3_recsys.batch import precompute
    from level3_recsys.bundle import ItemScorer, UserHistories
    from level3_recsys.serve import create_app

    config = StoreSettings(backend="redis", redis_url=redis_url)
    scorer = ItemScorer.load(tiny_bundle / "champion")
    histories = UserHistories.load(tiny_bundle / "champion" / "users.npz")
    writer = open_store(config, default_sqlite=None)
    writer.put_many(precompute(scorer, histories, 20), scorer.version)
    writer.close()
    redis_settings = settings.model_copy(update={"store": config})
    with TestClient(create_app(redis_settings, tiny_bundle)) as client:
        body = client.get("/recommendations/3?k=5").json()
        assert body["source"] == "precomputed" and len(body["items"]) == 5
        assert client.get("/ready").json()["store"] == "ok"
