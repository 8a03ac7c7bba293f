"""Command line: ``python -m level2_churn <command>`` (``--help`` on any command).

- ``run``       the Prefect flow on every dataset in the config, then a summary table
- ``bench``     the matrix of churn tables (one YAML each) -> ``artifacts/bench/level2.json``
- ``generate``  write the messy multi-source data (any size) to a folder
- ``stage``     one stage for one dataset (what ``dvc repro`` calls)
- ``predict``   score a CSV with a registered model (``--model models:/...@champion``)
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


def _case_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line settings applied to every benchmark table's own YAML."""
    overrides: dict[str, Any] = {}
    if args.trials is not None:
        overrides["tune"] = {"n_trials": args.trials}
    return overrides


def _settings(args: argparse.Namespace) -> Level2Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "trials", None) is not None:
        overrides["tune"] = {"n_trials": args.trials}
    if getattr(args, "customers", None) is not None:
        overrides["datasets"] = {"generated": {"generator": {"n_customers": args.customers}}}
    if getattr(args, "dataset", None) and args.command != "bench":  # bench: a table filter
        overrides["run"] = args.dataset
    return load_config(args.config, **overrides)


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(dataset, model, evaluation, ROC AUC, AP) rows for the summary table."""
    rows = []
    for name, result in results.items():
        if not isinstance(result, dict):
            continue
        metrics = result["metrics"]
        chosen = metrics["chosen_family"]
        if "cv" in metrics:
            protocol = metrics["protocol"]
            evaluation = f"{protocol['cv_repeats']}x{protocol['cv_folds']}-fold CV (dev part)"
            for model, s in metrics["cv"].items():
                rows.append(
                    (
                        name,
                        f"{model} (chosen)" if model == chosen else model,
                        evaluation,
                        f"{s['auc_mean']:.4f} ± {s['auc_std']:.4f}",
                        f"{s['ap_mean']:.4f} ± {s['ap_std']:.4f}",
                    )
                )
            holdout = metrics["holdout"]
            rows.append(
                (
                    name,
                    f"champion = {chosen}",
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
                        f"{model} (chosen)" if model == chosen else model,
                        "walk-forward",
                        f"{s['auc_mean']:.4f}",
                        f"{s['ap_mean']:.4f} ± {s['ap_std']:.4f}",
                    )
                )
    return rows


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
        selection = metrics["selection"]
        console.print(f"{name}: chosen family {metrics['chosen_family']}: {selection['reason']}")
        if "holdout" in metrics:
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
            "chosen": {
                name: {
                    "family": r["metrics"]["chosen_family"],
                    "reason": r["metrics"]["selection"]["reason"],
                    "rule": r["metrics"]["selection"]["rule"],
                }
                for name, r in results.items()
                if isinstance(r, dict)
            },
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
        ("bench", "every table of benchmark.tables (one YAML each) -> artifacts/bench/level2.json"),
    ):
        sub = commands.add_parser(name, help=text, parents=[config_after])
        sub.add_argument("--trials", type=int, help="Optuna trials (default: config)")
        sub.add_argument("--customers", type=int, help="generated customers (default: config)")
        sub.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    commands.choices["bench"].add_argument(
        "--dask-address", help="run the table matrix on this Dask scheduler (default: local)"
    )
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
    predict = commands.add_parser(
        "predict", help="score a CSV with a registered model", parents=[config_after]
    )
    predict.add_argument(
        "--model", required=True, help="model URI, e.g. models:/level2-churn-telco@champion"
    )
    predict.add_argument("--input", type=Path, required=True, help="CSV of customers to score")
    predict.add_argument("--output", type=Path, help="CSV to write (default: standard output)")
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
        elif args.command == "predict":
            from level2_churn.predict import predict_file

            cfg = load_config(args.config)
            scored = predict_file(args.model, args.input, cfg.experiment)
            if args.output:
                from ml_common.atomic import write_text

                write_text(args.output, scored.to_csv(index=False))
            else:
                sys.stdout.write(scored.to_csv(index=False))
        elif args.command == "stage":
            from level2_churn import stages

            cfg = load_config(args.config)
            if args.dataset not in cfg.datasets:
                raise ConfigError(f"unknown dataset {args.dataset!r}; known: {list(cfg.datasets)}")
            getattr(stages, f"{args.name}_stage")(cfg, args.dataset)
        else:
            cfg = _settings(args)
            if args.command == "bench":
                from level2_churn.benchmark import print_benchmark, run_benchmark

                with stopwatch() as timing:
                    keys = run_benchmark(
                        cfg, args.config, _case_overrides(args), args.dataset, args.dask_address
                    )
                path = write_bench(2, keys, timing["seconds"])
                from level2_churn.benchmark import readme_table
                from ml_common.atomic import write_text

                write_text(path.with_name("level2_tables.md"), readme_table(keys))
                print_benchmark(keys)
                print(f"benchmark written to {path}")
                if keys.get("tables_failed"):  # written above; the command still fails
                    print(f"error: tables failed: {keys['tables_failed']}", file=sys.stderr)
                    return 1
            else:
                results = run(cfg)
                _print_summary(results)
    except (DataError, ConfigError) as exc:
        report_error(exc, 2)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, level=2))
