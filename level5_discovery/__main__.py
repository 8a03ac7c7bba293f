"""Command line of level 5: ``run`` a discovery session (``--interactive`` to steer), ``bench``.

python -m level5_discovery run                 # make level5: one session, scripted reviewer
python -m level5_discovery run --interactive   # you approve / reject / edit each experiment
python -m level5_discovery bench               # make bench-level5
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import torch

from level5_discovery.human import DecisionLog, TerminalReviewer
from level5_discovery.settings import load
from ml_common.atomic import write_json, write_text
from ml_common.bench import stopwatch, write_bench
from ml_common.config import ConfigError, dump_settings
from ml_common.logs import setup_logging
from ml_common.paths import level_dir
from ml_common.seeding import seed_everything


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m level5_discovery",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="YAML settings (default: the packaged config.yaml)")
    parser.add_argument("--interactive", action="store_true",
                        help="a person reviews each proposed experiment (with `run`)")  # fmt: skip
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="one discovery session on a fresh world")
    run.add_argument("--seed", type=int, help="world seed (default: from the config)")
    run.add_argument("--interactive", action="store_true", help="steer the session yourself")
    bench = sub.add_parser("bench", help="benchmark over held-out worlds -> artifacts/bench")
    bench.add_argument("--worlds", type=int, help="number of held-out worlds (default: config)")
    bench.add_argument("--no-session-timing", action="store_true",
                       help="skip timing a full `run` in a subprocess")  # fmt: skip
    bench.add_argument("--no-matrix", action="store_true",
                       help="skip the genes x noise x wrong-sign matrix")  # fmt: skip
    bench.add_argument("--matrix-only", action="store_true",
                       help="only the matrix (merged with a --no-matrix run)")  # fmt: skip
    sub.add_parser("figures", help="draw the README figures into level5_discovery/docs")
    return parser


def cmd_figures(args: argparse.Namespace) -> int:
    """Draw the PNGs from the latest bench and session outputs."""
    from pathlib import Path

    from level5_discovery.figures import draw

    for path in draw(Path(__file__).parent / "docs"):
        print(f"wrote {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """One full discovery session, printing the story; outputs in artifacts/level5."""
    from level5_discovery.session import discover
    from level5_discovery.train import lm_model, rl_policy

    settings = load(args.config)
    seed = settings.seed if args.seed is None else args.seed
    seed_everything(seed)
    out = level_dir(5)
    write_json(out / "config.json", {**dump_settings(settings), "seed": seed})
    lm = lm_model(settings)
    policy = rl_policy(settings)
    log = DecisionLog(out / "decisions.jsonl")
    reviewer = TerminalReviewer() if args.interactive else None
    story: list[str] = []

    def echo(line: str) -> None:
        story.append(line)
        print(line, flush=True)

    echo(f"=== level 5 discovery session, world seed {seed} ===")
    result, seconds = discover(seed, settings, lm, policy, reviewer, log, echo)
    echo(f"session wall time {seconds:.1f} s; decisions logged to {log.path}")
    write_text(out / "session_story.txt", "\n".join(story) + "\n")
    s = result.scores
    write_json(out / "metrics.json", {
        "seed": seed, "experiments": result.experiments,
        "experiments_to_target": result.experiments_to_target, "precision": s.precision,
        "recall": s.recall, "f1": s.f1, "sign_accuracy": s.sign_accuracy,
        "f1_curve": result.f1_curve, "wrong_literature_rejected": result.wrong_rejected,
        "wrong_literature_total": result.wrong_total, "seconds": seconds,
    })  # fmt: skip
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Benchmark; writes artifacts/bench/level5.json, artifacts/level5/bench_details.json and
    the README's tables (artifacts/level5/bench_tables.md)."""
    from level5_discovery.benchmark import run_benchmark

    settings = load(args.config)
    if args.worlds is not None:
        settings.bench.worlds = args.worlds
    seed_everything(settings.seed)
    if args.matrix_only:
        return _bench_matrix_only(settings)
    with stopwatch() as timer:
        keys, details = run_benchmark(settings, session_seconds=not args.no_session_timing,
                                      matrix=not args.no_matrix)  # fmt: skip
    keys["seconds_main"] = round(timer["seconds"], 1)
    details = {**keys, **details, "config": dump_settings(settings)}
    write_json(level_dir(5) / "bench_details.json", details)
    path = _write_level5_bench(details, timer["seconds"])
    if args.no_matrix:
        _merge_matrix()
    print(json.dumps(keys, indent=2))
    print(f"wrote {path}")
    return 0


def _write_level5_bench(details: dict, seconds: float):  # noqa: ANN202
    from level5_discovery.benchmark import markdown_tables

    keys = {k: v for k, v in details.items() if isinstance(v, (int, float, str, bool))}
    path = write_bench(5, keys, seconds)
    # The issue asks for the ablation as one object (part -> experiments without it); the flat
    # ablation_without_* keys carry the same numbers for the results table.
    bench = json.loads(path.read_text())
    bench["ablation"] = {p: v["mean"] for p, v in details["ablation"].items()}
    write_json(path, bench)
    write_text(level_dir(5) / "bench_tables.md", markdown_tables(details, details))
    return path


def _bench_matrix_only(settings) -> int:  # noqa: ANN001
    """The matrix cells other than the default, in their own process (it can run next to
    `bench --no-matrix`); merged into the main run's outputs by whichever finishes last."""
    from level5_discovery.benchmark import run_matrix
    from level5_discovery.logic import BUDGET_EVENTS
    from level5_discovery.train import lm_model, rl_policy

    with stopwatch() as timer:
        cells = run_matrix(settings, lm_model(settings), rl_policy(settings), None)
    write_json(level_dir(5) / "bench_matrix.json", {
        "cells": cells, "config": dump_settings(settings), "seconds": timer["seconds"],
        "z3_budget_exhausted": BUDGET_EVENTS["rlimit"],
        "z3_wallclock_safety_net_fired": BUDGET_EVENTS["wall"],
    })  # fmt: skip
    print(json.dumps(cells, indent=2))
    _merge_matrix()
    return 0


def _merge_matrix() -> None:
    """Add the matrix of `bench --matrix-only` to the main run's outputs (same settings)."""
    from level5_discovery.benchmark import matrix_keys

    main_path, matrix_path = level_dir(5) / "bench_details.json", level_dir(5) / "bench_matrix.json"
    if not (main_path.is_file() and matrix_path.is_file()):
        return
    details, matrix = json.loads(main_path.read_text()), json.loads(matrix_path.read_text())
    main_config = {k: v for k, v in details["config"].items() if k != "bench"}
    if main_config != {k: v for k, v in matrix["config"].items() if k != "bench"}:
        print("matrix and main benchmark used different settings: not merged", file=sys.stderr)
        return
    cells = [details["default_cell"], *matrix["cells"]]
    details["matrix"] = cells
    settings = load()
    details.update(matrix_keys(cells, settings.model_copy(update={"n_genes": details["n_genes"]})))
    details["seconds_matrix"] = round(matrix["seconds"], 1)
    for key in ("z3_budget_exhausted", "z3_wallclock_safety_net_fired"):
        details[key] = details[key] + matrix[key]
    write_json(main_path, details)
    _write_level5_bench(details, details["seconds_main"] + matrix["seconds"])
    print(f"merged the matrix into {main_path}")


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    setup_logging()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    # One intra-op thread: the models are tiny and extra threads only contend on 2 shared cores.
    torch.set_num_threads(1)
    if args.command is None:
        if args.interactive:
            args.command, args.seed = "run", None
        else:
            _parser().print_help()
            return 0
    try:
        commands = {"run": cmd_run, "bench": cmd_bench, "figures": cmd_figures}
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
