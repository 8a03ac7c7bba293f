"""Command line: ``python -m level2_churn <command>`` (``--help`` on any command).

- ``run``       the Prefect flow on every dataset in the config, then a summary table
- ``bench``     ``run`` and write ``artifacts/bench/level2.json``
- ``generate``  write the messy multi-source data (any size) to a folder
- ``stage``     one stage for one dataset (what ``dvc repro`` calls)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from level2_churn.settings import DEFAULT_CONFIG, EventDataset, Level2Settings, load_config
from ml_common.atomic import write_json
from ml_common.bench import stopwatch, write_bench
from ml_common.cli import report_error, run_main
from ml_common.config import ConfigError, dump_settings
from ml_common.datasets import DataError
from ml_common.logs import get_logger, setup_logging
from ml_common.paths import level_dir

log = get_logger("level2_churn")
STAGES = ("generate", "prepare", "train", "register")


def _settings(args: argparse.Namespace) -> Level2Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "trials", None) is not None:
        overrides["tune"] = {"n_trials": args.trials}
    if getattr(args, "customers", None) is not None:
        overrides["datasets"] = {"generated": {"generator": {"n_customers": args.customers}}}
    if getattr(args, "dataset", None):
        overrides["run"] = args.dataset
    return load_config(args.config, **overrides)


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(dataset, model, evaluation, ROC AUC, AP) rows for the summary table."""
    rows = []
    for name, result in results.items():
        if not isinstance(result, dict):
            continue
        metrics = result["metrics"]
        if "cv" in metrics:
            protocol = metrics["protocol"]
            evaluation = f"{protocol['cv_repeats']}x{protocol['cv_folds']}-fold CV (dev part)"
            for model, s in metrics["cv"].items():
                rows.append(
                    (
                        name,
                        model,
                        evaluation,
                        f"{s['auc_mean']:.4f} ± {s['auc_std']:.4f}",
                        f"{s['ap_mean']:.4f} ± {s['ap_std']:.4f}",
                    )
                )
            holdout = metrics["holdout"]
            rows.append(
                (
                    name,
                    "champion",
                    "test part, once",
                    f"{holdout['test_auc']:.4f}",
                    f"{holdout['test_ap']:.4f}",
                )
            )
        else:
            for model, s in metrics["walk_forward"].items():
                rows.append(
                    (
                        name,
                        model,
                        "walk-forward",
                        f"{s['auc_mean']:.4f}",
                        f"{s['ap_mean']:.4f} ± {s['ap_std']:.4f}",
                    )
                )
    return rows


def bench_keys(results: dict[str, Any], cfg: Level2Settings) -> dict[str, Any]:
    """Flat benchmark keys for every dataset the config ran, prefixed by the dataset's name.

    Snapshot datasets give ``<name>_lgbm_auc_mean`` ... ``<name>_corrected_p_ap``; event datasets
    ``<name>_walk_forward_ap_mean``; a ``telco`` run also gives the historical
    ``business_profit_at_best_threshold``.
    """
    keys: dict[str, Any] = {}
    for name, result in results.items():
        if not isinstance(result, dict):
            continue
        metrics = result["metrics"]
        if "cv" in metrics:
            cv, diff = metrics["cv"], metrics["paired_difference_lgbm_minus_lr"]
            tuned = metrics["paired_difference_lgbm_minus_lgbm_default"]
            for model in ("lgbm", "lgbm_default", "lr"):
                keys[f"{name}_{model}_auc_mean"] = round(cv[model]["auc_mean"], 4)
                keys[f"{name}_{model}_ap_mean"] = round(cv[model]["ap_mean"], 4)
            keys |= {
                f"{name}_corrected_p_auc": round(diff["auc"]["p_value"], 4),
                f"{name}_corrected_p_ap": round(diff["ap"]["p_value"], 4),
                f"{name}_tuned_vs_default_corrected_p_ap": round(tuned["ap"]["p_value"], 4),
                f"{name}_best_imbalance_method": metrics["best_imbalance_method"],
                f"{name}_test_auc": round(metrics["holdout"]["test_auc"], 4),
                f"{name}_test_ap": round(metrics["holdout"]["test_ap"], 4),
                f"{name}_test_profit": round(metrics["holdout"]["test_profit"], 2),
            }
        else:
            walk = metrics["walk_forward"]
            keys[f"{name}_walk_forward_ap_mean"] = round(walk["lgbm"]["ap_mean"], 4)
            keys[f"{name}_lr_walk_forward_ap_mean"] = round(walk["lr"]["ap_mean"], 4)
            keys[f"{name}_mechanism_gain_share"] = round(metrics["mechanism_gain_share"], 4)
    if "telco" in results:
        keys["business_profit_at_best_threshold"] = keys["telco_test_profit"]
    keys["pipeline_seconds"] = round(results["pipeline_seconds"], 1)
    for name, result in results.items():  # measured: the trials that ran, not the configured n
        tuning = result.get("metrics", {}).get("tuning") if isinstance(result, dict) else None
        if tuning:
            keys[f"{name}_optuna_trials"] = tuning["n_trials"]
            keys[f"{name}_optuna_trials_pruned"] = tuning["n_pruned"]
    return keys


def _print_summary(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Level 2 churn: model comparison")
    for column in ("dataset", "model", "evaluation", "ROC AUC", "AP"):
        table.add_column(column)
    for row in summary_rows(results):
        table.add_row(*row)
    console = Console()
    console.print(table)
    for name, result in results.items():
        if not isinstance(result, dict):
            continue
        metrics, reg = result["metrics"], result["registered"]
        if "holdout" in metrics:
            for label, key in (
                ("LightGBM tuned - LR", "paired_difference_lgbm_minus_lr"),
                ("LightGBM tuned - default", "paired_difference_lgbm_minus_lgbm_default"),
            ):
                diff = metrics[key]
                console.print(
                    f"{name}: {label}: AUC {diff['auc']['mean']:+.4f} (corrected p="
                    f"{diff['auc']['p_value']:.3f}), AP {diff['ap']['mean']:+.4f} (corrected p="
                    f"{diff['ap']['p_value']:.3f})"
                )
            console.print(
                f"{name}: imbalance method chosen on the development part: "
                f"{metrics['best_imbalance_method']}; threshold "
                f"{metrics['holdout']['threshold']:.3f} chosen on validation; "
                f"test profit {metrics['holdout']['test_profit']:,.0f}"
            )
        else:
            top = ", ".join(list(metrics["top_features"])[:5])
            console.print(f"{name}: top features {top}")
        console.print(f"{name}: registered {reg['model_name']} v{reg['version']} @{reg['alias']}")
    console.print(f"pipeline wall time: {results['pipeline_seconds']:.1f} s")


def run(cfg: Level2Settings) -> dict[str, Any]:
    """Run the Prefect flow and store the summary beside the outputs."""
    from level2_churn.flow import churn_flow

    results = churn_flow(cfg)
    write_json(
        level_dir(2) / "summary.json",
        {
            "config": dump_settings(cfg),
            "rows": summary_rows(results),
            "pipeline_seconds": results["pipeline_seconds"],
        },
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m level2_churn",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="YAML config file")
    # --config is accepted after the command too (``run --config x.yaml``); SUPPRESS keeps the
    # value given before the command when it is not repeated after it.
    config_after = argparse.ArgumentParser(add_help=False)
    config_after.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, help="YAML config file"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "run the Prefect flow on every configured dataset"),
        ("bench", "run, then write artifacts/bench/level2.json"),
    ):
        sub = commands.add_parser(name, help=text, parents=[config_after])
        sub.add_argument("--trials", type=int, help="Optuna trials (default: config)")
        sub.add_argument("--customers", type=int, help="generated customers (default: config)")
        sub.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    gen = commands.add_parser(
        "generate", help="write the messy multi-source data to a folder", parents=[config_after]
    )
    gen.add_argument("--customers", type=int, help="number of customers (default: config)")
    gen.add_argument("--out", type=Path, required=True, help="output folder")
    stage = commands.add_parser(
        "stage", help="run one stage for one dataset (used by DVC)", parents=[config_after]
    )
    stage.add_argument("name", choices=STAGES)
    stage.add_argument("--dataset", required=True)
    args = parser.parse_args(argv)

    setup_logging()
    try:
        if args.command == "generate":
            from level2_churn.generate import generate

            cfg = _settings(args)
            events = [d for d in cfg.datasets.values() if isinstance(d, EventDataset)]
            if not events:
                raise ConfigError(f"{args.config}: no generated (kind: events) dataset to write")
            paths = generate(args.out, events[0].generator, cfg.seed)
            print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
        elif args.command == "stage":
            from level2_churn import stages

            cfg = load_config(args.config)
            if args.dataset not in cfg.datasets:
                raise ConfigError(f"unknown dataset {args.dataset!r}; known: {list(cfg.datasets)}")
            getattr(stages, f"{args.name}_stage")(cfg, args.dataset)
        else:
            cfg = _settings(args)
            with stopwatch() as timing:
                results = run(cfg)
            _print_summary(results)
            if args.command == "bench":
                path = write_bench(2, bench_keys(results, cfg), timing["seconds"])
                print(f"benchmark written to {path}")
    except (DataError, ConfigError) as exc:
        report_error(exc, 2)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, level=2))
