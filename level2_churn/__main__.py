"""Command line: ``python -m level2_churn <command>`` (``--help`` on any command).

- ``run``       the Prefect flow on every dataset in the config, then a summary table
- ``bench``     ``run`` and write ``artifacts/bench/level2.json``
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
    return keys


def bench_keys(results: dict[str, Any], cfg: Level2Settings) -> dict[str, Any]:
    """Flat benchmark keys for every dataset the config ran, prefixed by the dataset's name,
    plus ``tables_in_matrix`` and ``tables_where_champion_below_best_baseline`` (goal: 0)."""
    keys: dict[str, Any] = {}
    tables = [n for n, r in results.items() if isinstance(r, dict)]
    for name in tables:
        keys |= table_keys(name, results[name]["metrics"], cfg.selection.alpha)
    keys["tables_in_matrix"] = len(tables)
    keys["tables_where_champion_below_best_baseline"] = sum(
        bool(keys[f"{n}_champion_below_best_baseline"]) for n in tables
    )
    if "telco" in results:
        keys["business_profit_at_best_threshold"] = keys["telco_test_profit"]
    keys["pipeline_seconds"] = round(results["pipeline_seconds"], 1)
    keys["optuna_trials"] = cfg.tune.n_trials
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
