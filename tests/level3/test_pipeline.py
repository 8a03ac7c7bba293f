"""The real pipeline on MovieLens: split → tuning on validation → seven models → MLflow
registry → batch by alias.

Floors sit just under the figures measured on this code (README, "The offline evaluation"):
the models are seeded and single-threaded, so the figures reproduce exactly on one machine;
the margins (0.003 NDCG) absorb BLAS rounding elsewhere, far below the 95% intervals' width.
"""

import json

import numpy as np
import pytest

from level3_recsys.batch import nightly_batch, nightly_deployment
from level3_recsys.bundle import ItemScorer
from level3_recsys.data import load_dataset, prepare
from level3_recsys.models import EASE
from level3_recsys.settings import load
from level3_recsys.store import SqliteStore
from level3_recsys.train import CHALLENGER_MODEL, OURS, default_dirs, train
from level3_recsys.tune import TUNING_FILE
from ml_common.tracking import alias_version


@pytest.fixture(scope="module")
def trained():
    settings = load()
    data_dir, models_dir, serving_dir = default_dirs()
    stats = prepare(settings.data, data_dir)
    summary = train(settings, data_dir, models_dir)
    return settings, stats, summary, serving_dir


def test_split_statistics(trained):
    _, stats, summary, _ = trained
    assert stats["users"] > 600 and stats["items"] > 2000
    # held-out positives outside the training catalogue are dropped: at most 5 per user
    assert stats["test_interactions"] <= 5 * stats["test_users"]
    assert summary["users"] == stats["test_users"] == 650
    assert summary["timecut"]["users"] == stats["timecut"]["test_users"] == 19
    assert summary["timesplit"]["users"] == stats["timesplit"]["test_users"] == 667


def test_per_user_time_cut_decides_and_the_lead_does_not_survive_it(trained):
    """667 users: intervals a quarter as wide as the global time cut's. Ours still beats BPR,
    item-kNN and popularity, but ties the best peer (plain EASE, measured +0.0037 [-0.0058,
    +0.0142]) and ALS (+0.0072 [-0.0026, +0.0179])."""
    _, _, summary, _ = trained
    timesplit = summary["timesplit"]
    low, high = timesplit["models"][OURS]["ndcg@10_ci"]
    assert high - low < 0.03 and timesplit["models"][OURS]["ndcg@10"] >= 0.108  # 0.1119
    assert timesplit["best_peer"] == "ease"
    lead = timesplit["lead_vs_best_peer"]
    assert lead["ci"][0] < 0 < lead["ci"][1]
    for beaten in ("bpr", "itemknn", "popularity"):
        assert timesplit["lead_vs"][beaten]["ci"][0] > 0, beaten


def test_user_groups_and_the_switch_chosen_on_validation(trained):
    """Groups fixed before looking (activity < 20, 20-49, >= 50; head = 20% most popular).
    The switch keeps ours everywhere (no peer's validation lead is clear); on leave-last-5 no
    group lies wholly below its best peer, on the per-user time cut the tail items do (BPR)."""
    _, _, summary, _ = trained
    groups = summary["groups"]
    assert [groups[g]["users"] for g in ("light", "medium", "heavy")] == [208, 181, 261]
    assert groups["head"]["users"] + groups["tail"]["users"] > 650  # users with both count twice
    for protocol in (summary, summary["timesplit"]):
        assert set(protocol["switch"].values()) == {OURS}
    below = {g for g, entry in groups.items() if entry["lead_switch"]["ci"][1] < 0}
    assert below == set()
    assert groups["heavy"]["lead_ease_recency"]["estimate"] > 0.012  # +0.0172 over ALS
    split_groups = summary["timesplit"]["groups"]
    below = {g for g, entry in split_groups.items() if entry["lead_switch"]["ci"][1] < 0}
    assert below == {"tail"} and split_groups["tail"]["best_peer"] == "bpr"  # -0.0080


def test_offline_figures_with_intervals(trained):
    _, _, summary, _ = trained
    models = summary["models"]
    ndcg = {name: m["ndcg@10"] for name, m in models.items()}
    assert ndcg[OURS] >= 0.087  # measured 0.0900 [0.0785, 0.1016]
    assert ndcg[OURS] > max(ndcg[name] for name in ("popularity", "itemknn", "als", "bpr", "ease"))
    for name, m in models.items():
        low, high = m["ndcg@10_ci"]
        assert low < m["ndcg@10"] < high, name
    low, high = models[OURS]["ndcg@10_ci"]
    assert 0.015 < high - low < 0.035  # measured width 0.023 with 650 users
    assert ndcg["popularity"] > 0.04  # the popularity baseline is not broken either
    assert models[OURS]["coverage"] > models["popularity"]["coverage"]
    assert 0 < models[OURS]["map@10"] < models[OURS]["recall@10"] <= 1
    # ours − best peer (ALS), paired over the same users: measured +0.0124 [+0.0025, +0.0223]
    assert summary["best_peer"] == "als"
    lead = summary["lead_vs_best_peer"]
    assert lead["estimate"] >= 0.0095 and lead["ci"][0] > 0
    assert lead["ci"][0] < lead["estimate"] < lead["ci"][1]


def test_time_cut_is_too_small_to_separate_the_models(trained):
    """19 users: every interval is wide, and the lead over the best peer includes zero."""
    _, _, summary, _ = trained
    timecut = summary["timecut"]
    lead = timecut["lead_vs_best_peer"]
    assert lead["ci"][0] < 0 < lead["ci"][1]
    low, high = timecut["models"][OURS]["ndcg@10_ci"]
    assert high - low > 0.06  # measured 0.0800 [0.0357, 0.1257]


def test_served_models_use_the_settings_chosen_on_validation(trained):
    settings, _, summary, _ = trained
    data_dir, models_dir, _ = default_dirs()
    tuning = json.loads((models_dir.parent / "tuning" / TUNING_FILE).read_text())
    chosen = tuning["protocols"]["leave_last"]["chosen"]
    assert summary["chosen"] == chosen
    for name in (OURS, CHALLENGER_MODEL):
        meta = json.loads((models_dir / name / "model.json").read_text())
        assert meta["half_life"] == chosen[name]["half_life"]
    served = np.load(models_dir / OURS / "weights.npy")
    refit = EASE(chosen[OURS]["l2"]).fit(load_dataset(data_dir).train).weights
    np.testing.assert_allclose(served, refit, atol=1e-6)
    # every choice is the validation optimum of its grid, never a test figure
    for name, rows in tuning["protocols"]["leave_last"]["scores"].items():
        best = max(rows, key=lambda row: row["ndcg@10"])
        assert best["params"] == chosen[name]
        assert summary["validation_ndcg"][name] == best["ndcg@10"]


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


def test_bench_offline_keys_and_readme_table(trained):
    from level3_recsys.bench import offline_keys, offline_table

    _, _, summary, _ = trained
    keys = offline_keys(summary)
    issue_keys = {
        "ndcg10_ours_ci_low",
        "ndcg10_ours_ci_high",
        "ndcg10_lead_vs_best_peer",
        "ndcg10_lead_ci_low",
        "ndcg10_lead_ci_high",
        "timecut_users",
        "timecut_ndcg10_ours",
        "timecut_ndcg10_best_peer",
    }
    assert issue_keys <= set(keys)
    assert keys["ndcg10_ours_ci_low"] < keys["ndcg10_ours"] < keys["ndcg10_ours_ci_high"]
    assert (
        keys["ndcg10_lead_ci_low"] < keys["ndcg10_lead_vs_best_peer"] < keys["ndcg10_lead_ci_high"]
    )
    assert keys["ndcg10_best_peer"] == keys["ndcg10_als"]
    assert keys["timecut_users"] == 19
    assert keys["timesplit_users"] == 667 and keys["buckets_below_best_peer"] == 0
    assert keys["timesplit_buckets_below_best_peer"] == 1
    for group in ("light", "medium", "heavy", "head", "tail"):
        low, high = keys[f"bucket_{group}_lead_ci_low"], keys[f"bucket_{group}_lead_ci_high"]
        assert low < keys[f"bucket_{group}_lead"] < high
    assert keys["timesplit_lead_ci_low"] < keys["timesplit_lead"] < keys["timesplit_lead_ci_high"]
    table = offline_table(summary)
    assert f"| ease_recency | {keys['ndcg10_ours']:.4f} [" in table
    assert table.count("(best peer)") == 3
