"""The real pipeline on MovieLens: split → five models → MLflow registry → batch by alias.

Asserts the quality floor the issue sets: the project's model beats implicit ALS by >= 10%
NDCG@10 on the same split, and every model beats popularity's coverage.
"""

import json

import pytest

from level3_recsys.batch import nightly_batch, nightly_deployment
from level3_recsys.bundle import ItemScorer
from level3_recsys.data import prepare
from level3_recsys.settings import load
from level3_recsys.store import SqliteStore
from level3_recsys.train import CHALLENGER_MODEL, OURS, default_dirs, train
from ml_common.tracking import alias_version


@pytest.fixture(scope="module")
def trained():
    settings = load(None, train={"bpr_iterations": 30})
    data_dir, models_dir, serving_dir = default_dirs()
    stats = prepare(settings.data, data_dir)
    summary = train(settings, data_dir, models_dir)
    return settings, stats, summary, serving_dir


def test_split_statistics(trained):
    _, stats, _, _ = trained
    assert stats["users"] > 600 and stats["items"] > 2000
    assert stats["test_interactions"] == 5 * stats["users"]


def test_ours_beats_als_by_ten_percent(trained):
    _, _, summary, _ = trained
    models = summary["models"]
    ndcg = {name: m["ndcg@10"] for name, m in models.items()}
    assert ndcg[OURS] >= 1.10 * ndcg["als"], ndcg
    assert ndcg[OURS] > max(ndcg["itemknn"], ndcg["bpr"], ndcg["ease"], ndcg["popularity"])
    assert ndcg["popularity"] > 0.02  # the popularity baseline is not broken either
    assert models[OURS]["coverage"] > models["popularity"]["coverage"]
    assert 0 < models[OURS]["map@10"] < models[OURS]["recall@10"] <= 1
    # the half-life is chosen on validation, never on test
    assert summary["half_life"] in (2.5, 5.0, 10.0, 20.0, 40.0, 1e9)


def test_registered_by_alias(trained):
    settings, _, summary, _ = trained
    name = settings.train.model_name
    assert alias_version(name, "champion") == summary["registered"]["champion"]
    assert alias_version(name, "challenger") == summary["registered"]["challenger"]


def test_nightly_batch_exports_by_alias_and_fills_the_store(trained):
    settings, stats, summary, serving_dir = trained
    result = nightly_batch(settings, serving_dir)
    assert result["users"] == stats["users"]
    champion = ItemScorer.load(serving_dir / "champion")
    assert champion.name == OURS and champion.version == str(summary["registered"]["champion"])
    assert ItemScorer.load(serving_dir / "challenger").name == CHALLENGER_MODEL
    stored = SqliteStore(serving_dir / "store.sqlite", read_only=True).get(2)
    assert stored.model_version == champion.version and len(stored.items) == 50
    assert json.loads((serving_dir / "batch.json").read_text())["model_version"] == champion.version


def test_deployment_has_the_nightly_cron_schedule(tmp_path):
    settings = load()
    deployment = nightly_deployment(settings, tmp_path)
    assert deployment.name == "level3-nightly"
    crons = [s.schedule.cron for s in deployment.schedules]
    assert crons == [settings.batch.cron] == ["0 3 * * *"]
    assert deployment.parameters["serving_dir"] == str(tmp_path)
