"""``make bench-level3``: the offline comparison and the load test, in one benchmark file.

Runs the DVC stages' code (prepare, train), the nightly batch, then the load test, and writes
``artifacts/bench/level3.json`` with the issue's keys (plus ``seconds``, ``machine``),
and the comparison figure ``artifacts/level3/figures/offline_ndcg.png``.
"""

from __future__ import annotations

from typing import Any

from level3_recsys.evaluate import GROUPS
from level3_recsys.loadtest.run import update_readme
from level3_recsys.settings import Level3Settings
from level3_recsys.tune import OURS, SWITCHED
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
    ndcg = [models[n][f"ndcg@{k}"] for n in names]
    low = [v - models[n][f"ndcg@{k}_ci"][0] for v, n in zip(ndcg, names, strict=True)]
    high = [models[n][f"ndcg@{k}_ci"][1] - v for v, n in zip(ndcg, names, strict=True)]
    ax.barh(
        [i + 0.2 for i in y], ndcg, 0.4, xerr=[low, high], capsize=3, label=f"NDCG@{k} (95% CI)"
    )
    ax.barh(
        [i - 0.2 for i in y], [models[n][f"recall@{k}"] for n in names], 0.4, label=f"Recall@{k}"
    )
    ax.set_yticks(list(y), names)
    ax.set_xlabel("score on the held-out latest 5 positives per user (full ranking)")
    ax.set_title("MovieLens ml-latest-small, leave-last-5 split")
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, level_dir(3) / "figures" / "offline_ndcg.png")


def offline_table(summary: dict[str, Any]) -> str:
    """The README's offline tables (markdown): both protocols, intervals, the paired leads."""
    k = summary["k"]
    key = f"ndcg@{k}"
    main, timecut, timesplit = summary, summary["timecut"], summary["timesplit"]
    rows = [
        f"Leave-last-5: {main['users']} test users. Time cut: {timecut['users']} test users "
        f"({timecut['train_users']} users train). Per-user time cut: {timesplit['users']} test "
        f"users. Bootstrap {summary['bootstrap']['resamples']} resamples of users, 95% "
        "percentile intervals.",
        "",
        f"| model | NDCG@{k} [95% CI] | Recall@{k} | MAP@{k} | coverage "
        f"| time cut NDCG@{k} [95% CI] | per-user time cut NDCG@{k} [95% CI] |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(m: dict[str, Any]) -> str:
        return f"{m[key]:.4f} [{m[f'{key}_ci'][0]:.4f}, {m[f'{key}_ci'][1]:.4f}]"

    for name in sorted(main["models"], key=lambda n: -main["models"][n][key]):
        m = main["models"][name]
        if name not in timecut["models"] or "coverage" not in m:
            continue  # the switch: in the group tables
        rows.append(
            f"| {name} | {cell(m)} | {m[f'recall@{k}']:.4f} | {m[f'map@{k}']:.4f} | "
            f"{m['coverage']:.3f} | {cell(timecut['models'][name])} | "
            f"{cell(timesplit['models'][name])} |"
        )
    rows += [
        "",
        f"Paired difference in NDCG@{k}, ours (ease_recency) − other, same users:",
        "",
        "| other | leave-last-5 [95% CI] | time cut [95% CI] | per-user time cut [95% CI] |",
        "|---|---:|---:|---:|",
    ]
    reports = (main, timecut, timesplit)
    for other in main["lead_vs"]:
        cells = [
            _interval(report["lead_vs"][other])
            + (" (best peer)" if report["best_peer"] == other else "")
            for report in reports
        ]
        rows.append(f"| {other} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def groups_table(summary: dict[str, Any]) -> str:
    """The README's per-group tables, leave-last-5 and the per-user time cut."""
    rows: list[str] = []
    for label, report in (("Leave-last-5", summary), ("Per-user time cut", summary["timesplit"])):
        rows += [*group_table(label, report, summary["k"]), ""]
    return "\n".join(rows)


def _interval(value: dict[str, Any]) -> str:
    return f"{value['estimate']:+.4f} [{value['ci'][0]:+.4f}, {value['ci'][1]:+.4f}]"


def group_table(label: str, report: dict[str, Any], k: int) -> list[str]:
    """Markdown rows: per user group, ours, the switch, the best peer on test and the leads."""
    switch = report["switch"]
    lead = report["switch_lead_vs_best_peer"]
    rows = [
        f"{label}, by user group ({report['users']} test users; switch chosen on validation: "
        + ", ".join(f"{group} → {model}" for group, model in switch.items())
        + f"; switch − best peer ({report['best_peer']}) over all users: {_interval(lead)}):",
        "",
        f"| group | users | ours NDCG@{k} | switch (served) | best peer on test "
        "| ours − best peer [95% CI] | switch − best peer [95% CI] |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for group in GROUPS:
        g = report["groups"][group]
        peer = g["best_peer"]
        rows.append(
            f"| {group} | {g['users']} | {g['ndcg'][OURS]:.4f} | {g['ndcg'][SWITCHED]:.4f} | "
            f"{peer} {g['ndcg'][peer]:.4f} | {_interval(g[f'lead_{OURS}'])} | "
            f"{_interval(g[f'lead_{SWITCHED}'])} |"
        )
    return rows


def offline_keys(summary: dict[str, Any]) -> dict[str, float]:
    """The bench file's offline keys (leave-last-5 unless named ``timecut_``)."""
    k = summary["k"]
    key = f"ndcg@{k}"
    models, timecut = summary["models"], summary["timecut"]
    lead, timecut_lead = summary["lead_vs_best_peer"], timecut["lead_vs_best_peer"]
    return {
        "ndcg10_popularity": models["popularity"][key],
        "ndcg10_itemknn": models["itemknn"][key],
        "ndcg10_als": models["als"][key],
        "ndcg10_bpr": models["bpr"][key],
        "ndcg10_ease": models["ease"][key],
        "ndcg10_ours": models[OURS][key],
        "ndcg10_ours_ci_low": models[OURS][f"{key}_ci"][0],
        "ndcg10_ours_ci_high": models[OURS][f"{key}_ci"][1],
        "ndcg10_best_peer": models[summary["best_peer"]][key],
        "ndcg10_lead_vs_best_peer": lead["estimate"],
        "ndcg10_lead_ci_low": lead["ci"][0],
        "ndcg10_lead_ci_high": lead["ci"][1],
        "recall10_ours": models[OURS][f"recall@{k}"],
        "map10_ours": models[OURS][f"map@{k}"],
        "coverage_ours": models[OURS]["coverage"],
        "timecut_users": timecut["users"],
        "timecut_ndcg10_ours": timecut["models"][OURS][key],
        "timecut_ndcg10_best_peer": timecut["models"][timecut["best_peer"]][key],
        "timecut_lead_ci_low": timecut_lead["ci"][0],
        "timecut_lead_ci_high": timecut_lead["ci"][1],
        **group_keys(summary),
    }


def group_keys(summary: dict[str, Any]) -> dict[str, float]:
    """Per-group keys: ``bucket_<group>_ndcg10_ours`` is the served model (the switch) on
    leave-last-5, ``bucket_<group>_lead_ci_*`` its paired lead over the group's best peer;
    ``buckets_below_best_peer`` counts groups whose interval lies wholly below 0 (both
    protocols' counts are given); ``timesplit_*`` is protocol C."""
    timesplit = summary["timesplit"]
    keys: dict[str, float] = {}
    for group in GROUPS:
        g = summary["groups"][group]
        lead = g[f"lead_{SWITCHED}"]
        keys[f"bucket_{group}_ndcg10_ours"] = g["ndcg"][SWITCHED]
        keys[f"bucket_{group}_ndcg10_best_peer"] = g["ndcg"][g["best_peer"]]
        keys[f"bucket_{group}_lead"] = lead["estimate"]
        keys[f"bucket_{group}_lead_ci_low"], keys[f"bucket_{group}_lead_ci_high"] = lead["ci"]
        t_lead = timesplit["groups"][group][f"lead_{SWITCHED}"]
        keys[f"timesplit_bucket_{group}_lead_ci_low"] = t_lead["ci"][0]
        keys[f"timesplit_bucket_{group}_lead_ci_high"] = t_lead["ci"][1]

    def below(report: dict[str, Any]) -> int:
        return sum(report["groups"][g][f"lead_{SWITCHED}"]["ci"][1] < 0 for g in GROUPS)

    lead = timesplit["switch_lead_vs_best_peer"]
    keys.update(
        buckets_below_best_peer=below(summary),
        timesplit_buckets_below_best_peer=below(timesplit),
        timesplit_users=timesplit["users"],
        timesplit_ndcg10_ours=timesplit["models"][SWITCHED]["ndcg@10"],
        timesplit_ndcg10_best_peer=timesplit["models"][timesplit["best_peer"]]["ndcg@10"],
        timesplit_lead=lead["estimate"],
        timesplit_lead_ci_low=lead["ci"][0],
        timesplit_lead_ci_high=lead["ci"][1],
        switch_lead=summary["switch_lead_vs_best_peer"]["estimate"],
        switch_lead_ci_low=summary["switch_lead_vs_best_peer"]["ci"][0],
        switch_lead_ci_high=summary["switch_lead_vs_best_peer"]["ci"][1],
    )
    return keys


def bench(
    settings: Level3Settings, duration_s: int | None = None, loadtest: bool = True
) -> dict[str, Any]:
    """Every stage, then the issue's keys in ``artifacts/bench/level3.json``; ``loadtest=False``
    leaves out the load test and its keys (``loadtest_*``, the throughput ratio)."""
    from level3_recsys.batch import nightly_batch
    from level3_recsys.data import prepare
    from level3_recsys.deploy import reload_deployed
    from level3_recsys.fuzz import impression_bytes_per_item, impression_flood, service_checks
    from level3_recsys.loadtest.run import run_loadtest
    from level3_recsys.train import default_dirs, train

    with stopwatch() as timing:
        data_dir, models_dir, serving_dir = default_dirs()
        prepare(settings.data, data_dir)
        summary = train(settings, data_dir, models_dir)
        offline_figure(summary)
        update_readme(offline_table(summary), section="offline")
        update_readme(groups_table(summary), section="groups")
        nightly_batch(settings, serving_dir)
        reload_deployed(settings)
        load = run_loadtest(settings, duration_s=duration_s) if loadtest else {}
        hostile = service_checks(settings, serving_dir)
        flood = impression_flood(settings, serving_dir)
    results = {
        **offline_keys(summary),
        **{
            key: load[key]
            for key in (
                "loadtest_rps",
                "loadtest_p50_ms",
                "loadtest_p99_ms",
                "loadtest_error_rate",
                "throughput_ratio_vs_bare_endpoint",
            )
            if key in load
        },
        "fuzz_requests": hostile["fuzz"]["requests"],
        "fuzz_failures": hostile["fuzz"]["failures"],
        "feedback_flood_series_growth": hostile["flood"]["series_growth"],
        "impression_bytes_per_item": impression_bytes_per_item(),
        "flood_rss_mb": flood["rss_growth_mb"],
        "flood_impression_mb": flood["impression_mb"],
        "flood_budget_mb": flood["budget_mb"],
    }
    path = write_bench(
        3, {key: round(float(v), 4) for key, v in results.items()}, timing["seconds"]
    )
    log.info("wrote %s", path)
    update_readme(bench_table(path), section="bench")
    return results


def bench_table(path: Any) -> str:
    """The README's table of the issue's keys, read back from the bench file ``path``."""
    import json
    from pathlib import Path

    values = json.loads(Path(path).read_text())
    wanted = [
        *(
            f"bucket_{g}_{s}"
            for g in GROUPS
            for s in ("ndcg10_ours", "lead_ci_low", "lead_ci_high")
        ),
        "buckets_below_best_peer",
        "timesplit_buckets_below_best_peer",
        "switch_lead",
        "switch_lead_ci_low",
        "switch_lead_ci_high",
        "timesplit_users",
        "timesplit_lead",
        "timesplit_lead_ci_low",
        "timesplit_lead_ci_high",
        "impression_bytes_per_item",
        "flood_rss_mb",
        "flood_impression_mb",
        "flood_budget_mb",
        "throughput_ratio_vs_bare_endpoint",
        "fuzz_requests",
        "fuzz_failures",
    ]
    machine = values.get("machine", {})
    cores = machine.get("cores", "?") if isinstance(machine, dict) else "?"
    rows = [
        f"From `artifacts/bench/{Path(path).name}` ({values.get('seconds', 0):.0f} s on "
        f"{cores} cores):",
        "",
        "| key | value |",
        "|---|---:|",
    ]
    source = values.get("results", values)
    rows += [f"| `{key}` | {source[key]} |" for key in wanted if key in source]
    return "\n".join(rows) + "\n"
