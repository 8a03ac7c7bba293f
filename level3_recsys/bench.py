"""``make bench-level3``: the offline comparison and the load test, in one benchmark file.

Runs the DVC stages' code (prepare, train), the nightly batch, then the load test, and writes
``artifacts/bench/level3.json`` with exactly the issue's keys (plus ``seconds``, ``machine``),
and the comparison figure ``artifacts/level3/figures/offline_ndcg.png``.
"""

from __future__ import annotations

from typing import Any

from level3_recsys.settings import Level3Settings
from ml_common.bench import stopwatch, write_bench
from ml_common.logs import get_logger
from ml_common.paths import level_dir

log = get_logger(__name__)


def offline_figure(summary: dict[str, Any]) -> None:
    """Bar chart of NDCG@k / Recall@k per model."""
    import matplotlib.pyplot as plt

    from ml_common.plots import save_figure

    k = summary["k"]
    models = summary["models"]
    names = sorted(models, key=lambda n: models[n][f"ndcg@{k}"])
    fig, ax = plt.subplots(figsize=(7, 3.6))
    y = range(len(names))
    ax.barh([i + 0.2 for i in y], [models[n][f"ndcg@{k}"] for n in names], 0.4, label=f"NDCG@{k}")
    ax.barh(
        [i - 0.2 for i in y], [models[n][f"recall@{k}"] for n in names], 0.4, label=f"Recall@{k}"
    )
    ax.set_yticks(list(y), names)
    ax.set_xlabel("score on the held-out latest 5 positives per user (full ranking)")
    ax.set_title("MovieLens ml-latest-small, temporal split")
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, level_dir(3) / "figures" / "offline_ndcg.png")


def offline_table(summary: dict[str, Any]) -> str:
    """The README's offline table (markdown rows), best NDCG first."""
    k = summary["k"]
    models = summary["models"]
    rows = ["| model | NDCG@10 | Recall@10 | MAP@10 | coverage |", "|---|---:|---:|---:|---:|"]
    for name in sorted(models, key=lambda n: -models[n][f"ndcg@{k}"]):
        m = models[name]
        rows.append(
            f"| {name} | {m[f'ndcg@{k}']:.4f} | {m[f'recall@{k}']:.4f} | "
            f"{m[f'map@{k}']:.4f} | {m['coverage']:.3f} |"
        )
    return "\n".join(rows) + "\n"


def bench(settings: Level3Settings, duration_s: int | None = None) -> dict[str, Any]:
    from level3_recsys.batch import nightly_batch
    from level3_recsys.data import prepare
    from level3_recsys.deploy import reload_deployed
    from level3_recsys.fuzz import service_checks
    from level3_recsys.loadtest.run import run_loadtest, update_readme
    from level3_recsys.train import OURS, default_dirs, train

    with stopwatch() as timing:
        data_dir, models_dir, serving_dir = default_dirs()
        prepare(settings.data, data_dir)
        summary = train(settings, data_dir, models_dir)
        offline_figure(summary)
        update_readme(offline_table(summary), section="offline")
        nightly_batch(settings, serving_dir)
        reload_deployed(settings)
        load = run_loadtest(settings, duration_s=duration_s)
        hostile = service_checks(settings, serving_dir)
    k = summary["k"]
    models = summary["models"]
    results = {
        "ndcg10_popularity": models["popularity"][f"ndcg@{k}"],
        "ndcg10_itemknn": models["itemknn"][f"ndcg@{k}"],
        "ndcg10_als": models["als"][f"ndcg@{k}"],
        "ndcg10_bpr": models["bpr"][f"ndcg@{k}"],
        "ndcg10_ours": models[OURS][f"ndcg@{k}"],
        "recall10_ours": models[OURS][f"recall@{k}"],
        "map10_ours": models[OURS][f"map@{k}"],
        "coverage_ours": models[OURS]["coverage"],
        "loadtest_rps": load["loadtest_rps"],
        "loadtest_p50_ms": load["loadtest_p50_ms"],
        "loadtest_p99_ms": load["loadtest_p99_ms"],
        "loadtest_error_rate": load["loadtest_error_rate"],
        "throughput_ratio_vs_bare_endpoint": load["throughput_ratio_vs_bare_endpoint"],
        "fuzz_requests": hostile["fuzz"]["requests"],
        "fuzz_failures": hostile["fuzz"]["failures"],
        "feedback_flood_series_growth": hostile["flood"]["series_growth"],
    }
    path = write_bench(
        3, {key: round(float(v), 4) for key, v in results.items()}, timing["seconds"]
    )
    log.info("wrote %s", path)
    return results
