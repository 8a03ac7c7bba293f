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

from level2_churn.settings import DEFAULT_CONFIG, Level2Settings, load_config
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
            for model, s in metrics["cv"].items():
                rows.append(
                    (
                        name,
                        model,
                        "5-fold CV",
                        f"{s['auc_mean']:.4f} ± {s['auc_std']:.4f}",
                        f"{s['ap_mean']:.4f} ± {s['ap_std']:.4f}",
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
    """The flat benchmark keys of issue 4 from one run's results (``main`` checks both ran)."""
    telco = results["telco"]["metrics"]
    generated = results["generated"]["metrics"]
    return {
        "telco_lgbm_auc_mean": round(telco["cv"]["lgbm"]["auc_mean"], 4),
        "telco_lgbm_ap_mean": round(telco["cv"]["lgbm"]["ap_mean"], 4),
        "telco_lr_auc_mean": round(telco["cv"]["lr"]["auc_mean"], 4),
        "telco_lr_ap_mean": round(telco["cv"]["lr"]["ap_mean"], 4),
        "telco_best_imbalance_method": telco["best_imbalance_method"],
        "generated_walk_forward_ap_mean": round(generated["walk_forward"]["lgbm"]["ap_mean"], 4),
        "generated_lr_walk_forward_ap_mean": round(generated["walk_forward"]["lr"]["ap_mean"], 4),
        "business_profit_at_best_threshold": round(telco["holdout"]["test_profit"], 2),
        "pipeline_seconds": round(results["pipeline_seconds"], 1),
        "optuna_trials": cfg.tune.n_trials,
    }


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
            diff = metrics["paired_difference_lgbm_minus_lr"]
            console.print(
                f"{name}: LightGBM - LR paired over folds: AUC {diff['auc']['mean']:+.4f} "
                f"(p={diff['auc']['p_value']:.3f}), AP {diff['ap']['mean']:+.4f} "
                f"(p={diff['ap']['p_value']:.3f}); best imbalance method: "
                f"{metrics['best_imbalance_method']}; test profit at threshold "
                f"{metrics['holdout']['threshold']:.3f}: {metrics['holdout']['test_profit']:,.0f}"
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
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "run the Prefect flow on every configured dataset"),
        ("bench", "run, then write artifacts/bench/level2.json"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--trials", type=int, help="Optuna trials (default: config)")
        sub.add_argument("--customers", type=int, help="generated customers (default: config)")
        sub.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    gen = commands.add_parser("generate", help="write the messy multi-source data to a folder")
    gen.add_argument("--customers", type=int, help="number of customers (default: config)")
    gen.add_argument("--out", type=Path, required=True, help="output folder")
    stage = commands.add_parser("stage", help="run one stage for one dataset (used by DVC)")
    stage.add_argument("name", choices=STAGES)
    stage.add_argument("--dataset", required=True)
    args = parser.parse_args(argv)

    setup_logging()
    try:
        if args.command == "generate":
            from level2_churn.generate import generate

            cfg = _settings(args)
            dataset = cfg.datasets["generated"]
            paths = generate(args.out, dataset.generator, cfg.seed)  # type: ignore[union-attr]
            print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))
        elif args.command == "stage":
            from level2_churn import pipeline

            cfg = load_config(args.config)
            if args.dataset not in cfg.datasets:
                raise ConfigError(f"unknown dataset {args.dataset!r}; known: {list(cfg.datasets)}")
            getattr(pipeline, f"{args.name}_stage")(cfg, args.dataset)
        else:
            cfg = _settings(args)
            if args.command == "bench" and not {"telco", "generated"} <= set(cfg.run):
                raise ConfigError(f"bench needs telco and generated in run, got {cfg.run}")
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
