"""Level 4 command line: ``python -m level4_fraud <command>`` (``--help`` lists them)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ml_common.cli import USER_ERRORS, report_error, run_main
from ml_common.logs import setup_logging


def _settings(args: argparse.Namespace):  # noqa: ANN202 - Level4Settings, imported lazily
    from level4_fraud.config import load_config

    return load_config(args.config)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Stream the simulation to a parquet file."""
    from level4_fraud.data.simulate import simulate_to_parquet
    from ml_common.paths import level_dir

    settings = _settings(args)
    sim = settings.simulation.model_copy(update={"n_days": args.days or settings.simulation.n_days})
    path = Path(args.out) if args.out else level_dir(4) / "transactions.parquet"
    rows = simulate_to_parquet(sim, str(path))
    print(f"wrote {rows:,} transactions to {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """The handbook protocol: train, delay, test week; register the ensemble as champion."""
    from level4_fraud.training.train import train_and_register

    summary = train_and_register(_settings(args))
    print(json.dumps({k: summary[k] for k in ("ensemble", "lightgbm", "fraudnet")}, indent=2))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Run the drift / retrain / recovery story and print its timeline."""
    from level4_fraud.lifecycle.replay import print_summary, run_replay
    from ml_common.paths import level_dir

    result = run_replay(_settings(args))
    print(print_summary(result))
    print(f"timeline: {level_dir(4) / 'replay' / 'timeline.png'} (and timeline.json beside it)")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    """One retraining cycle (what the Kubernetes CronJob runs), with the champion from the registry.

    Rebuilds the recent labelled days from the simulator (only days before DAY − delay_days:
    labels arrive late), trains a challenger, scores it and the champion on the same later
    holdout, promotes it only if the gate passes (the old champion keeps the alias ``rollback``),
    appends the decision to artifacts/level4/retrain/decisions.jsonl and prints it. Needs a
    registered champion: without one it exits 2 and asks for ``python -m level4_fraud train``
    (a scheduled job should not silently install an unvetted first model).
    """
    from level4_fraud.lifecycle.retrain import format_decision, run_retrain_cycle
    from ml_common.paths import level_dir

    settings = _settings(args)
    decision = run_retrain_cycle(settings, args.day, args.trigger)
    print(format_decision(decision))
    print(f"decision appended to {level_dir(4) / 'retrain' / 'decisions.jsonl'}")
    if args.export_onnx is not None:  # the CronJob: publish whatever @champion is now
        from level4_fraud.serving.export import export_from_registry

        meta = export_from_registry(settings, args.export_onnx)
        print(f"champion {meta['champion']['uri']} exported to {args.export_onnx}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the scoring service (uses the Feast online store and the champion)."""
    from level4_fraud.serving.service import main as serve_main

    return serve_main(_settings(args), port=args.port)


def cmd_scenarios(args: argparse.Namespace) -> int:
    """Replay the drift story on the scenario matrix (config ``scenarios``); write its table."""
    from level4_fraud.lifecycle.scenarios import run_matrix
    from ml_common.paths import level_dir

    settings = _settings(args)
    m = settings.scenarios
    seeds = m.tuning_seeds if args.seeds == "tuning" else m.eval_seeds
    out = level_dir(4) / ("scenarios-tuning" if args.seeds == "tuning" else "scenarios")
    result = run_matrix(settings, m, out, seeds, address=args.dask_address)
    print((out / "table.md").read_text())
    print(json.dumps(result["summary"], indent=2))
    return 0


def cmd_handbook(args: argparse.Namespace) -> int:
    """The handbook's exact protocol (7 days train, 7 delay, 7 test, known-compromised cards
    removed) with its baseline models beside ours; writes artifacts/level4/handbook/."""
    from level4_fraud.training.handbook import markdown_table, run_handbook
    from ml_common.paths import level_dir

    settings = _settings(args)
    result = run_handbook(settings)
    print(markdown_table(result, settings.handbook.top_k))
    for key, value in result["bench"].items():
        print(f"{key:24s} {value:.4f}")
    print(f"results: {level_dir(4) / 'handbook' / 'results.json'}")
    return 0


def cmd_industrial(args: argparse.Namespace) -> int:
    """Part 2: DDP, quantization, distillation, LoRA and the A/B test, measured in one run."""
    from level4_fraud.experiments.report import markdown_tables, run_industrial
    from ml_common.paths import level_dir

    report = run_industrial(_settings(args))
    print(markdown_tables(report))
    for key, value in report["bench"].items():
        print(f"{key:32s} {value}")
    print(f"report: {level_dir(4) / 'industrial' / 'report.json'}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """Optuna search over FraudNet's hyperparameters on part 2's training window."""
    from level4_fraud.data.protocol import prepare_data
    from level4_fraud.training.tune import tune
    from ml_common.atomic import write_json
    from ml_common.config import dump_settings
    from ml_common.paths import level_dir

    settings = _settings(args)
    result = tune(settings.industrial, prepare_data(settings.industrial), n_trials=args.trials)
    path = write_json(level_dir(4) / "tune" / "trials.json", result)
    write_json(path.with_name("config.json"), dump_settings(settings))
    for trial in result["trials"]:
        print(trial)
    print(f"best walk-forward AP {result['best_value']:.4f} with {result['best_params']}")
    print(f"trials: {path}; MLflow parent run {result['parent_run_id']}")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """Export the registered champion's scoring path as the ONNX bundle the scoring image serves.

    Reads ``models:/<model_name>@<alias>`` (default ``champion``) from the MLflow registry,
    compiles FraudNet + LightGBM and their weights into one ONNX graph carrying the version and
    run id, checks its scores against the registered ensemble's (1e-5) and replaces ``--out``
    atomically (a running scoring service picks the new bundle up).
    """
    from level4_fraud.serving.export import export_from_registry

    meta = export_from_registry(_settings(args), args.out, alias=args.alias)
    champion = meta["champion"]
    print(
        f"exported {champion['uri']} (run {champion['run_id']}, weights {champion['weights']}) "
        f"to {args.out}; ONNX vs registered scores: max |diff| "
        f"{champion['check']['max_abs_diff']:.1e} on {champion['check']['rows']} rows"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Write artifacts/bench/level4.json."""
    from level4_fraud.bench import run_bench

    path = run_bench(_settings(args))
    print(path.read_text())
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "simulate": (cmd_simulate, "stream the simulated transactions to parquet"),
    "train": (cmd_train, "handbook protocol + Feast training join + MLflow registry"),
    "replay": (cmd_replay, "stable → seasonal → new fraud → alarm → retrain → recovery"),
    "retrain": (cmd_retrain, "one retraining cycle: challenger vs champion, gate, aliases"),
    "serve": (cmd_serve, "FastAPI scoring service on 127.0.0.1"),
    "scenarios": (cmd_scenarios, "the replay on a matrix: drift kind x volume x season x seed"),
    "handbook": (cmd_handbook, "the handbook's exact protocol: its baseline models beside ours"),
    "bench": (cmd_bench, "measure everything into artifacts/bench/level4.json"),
    "industrial": (cmd_industrial, "part 2: DDP, quantization, distillation, LoRA, A/B test"),
    "tune": (cmd_tune, "Optuna search over FraudNet's hyperparameters"),
    "export-onnx": (
        cmd_export_onnx,
        "ONNX scoring bundle exported from the registry (@champion)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per stage."""
    parser = argparse.ArgumentParser(prog="python -m level4_fraud", description=__doc__)
    parser.add_argument(
        "--config", default=None, help="YAML settings (default: packaged config.yaml)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (func, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=func.__doc__)
        p.set_defaults(func=func)
        if name == "simulate":
            p.add_argument("--days", type=int, default=None, help="days to simulate")
            p.add_argument("--out", default=None, help="parquet path")
        if name == "retrain":
            p.add_argument(
                "--day",
                type=int,
                default=None,
                help="simulated day of the cycle (default: simulation.n_days, the config's end)",
            )
            p.add_argument(
                "--trigger",
                choices=["schedule", "drift"],
                default="schedule",
                help="why the cycle runs (recorded with the decision)",
            )
            p.add_argument(
                "--export-onnx",
                type=Path,
                default=None,
                help="then export @champion's ONNX bundle to this folder (what scoring pods read)",
            )
        if name == "serve":
            p.add_argument("--port", type=int, default=8004)
        if name == "scenarios":
            p.add_argument(
                "--seeds",
                choices=["eval", "tuning"],
                default="eval",
                help="evaluation seeds (reported) or tuning seeds (for choosing the monitor)",
            )
            p.add_argument(
                "--dask-address",
                default=None,
                help="a running Dask scheduler (tcp://host:8786); default: scenarios.matrix",
            )
        if name == "tune":
            p.add_argument("--trials", type=int, default=10)
        if name == "export-onnx":
            p.add_argument(
                "--out", type=Path, required=True, help="folder the scoring image mounts"
            )
            p.add_argument("--alias", default="champion", help="registry alias to export")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run one command; user errors exit 2 with one message."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    args = build_parser().parse_args(argv)
    setup_logging()  # the stages' progress lines (industrial, tune) go through logging
    try:
        return args.func(args)
    except USER_ERRORS as exc:  # what a user can fix; anything else is a bug: run_main, exit 1
        report_error(exc, 4)
        return 2


if __name__ == "__main__":
    sys.exit(run_main(main, level=4))
