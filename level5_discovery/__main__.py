"""Command line of level 5: ``run`` a discovery session (``--interactive`` to steer), ``review``
(the same session reviewed on a web page), ``bench``, ``figures``.

python -m level5_discovery run                 # make level5: one session, scripted reviewer
python -m level5_discovery run --interactive   # you approve / reject / edit each experiment
python -m level5_discovery review              # ... on a web page (prints its address)
python -m level5_discovery bench               # make bench-level5 (redraws the README's PNGs)
python -m level5_discovery figures             # latest outputs' PNGs -> artifacts/level5/figures
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from level5_discovery.human import DecisionLog, Reviewer, TerminalReviewer
from level5_discovery.settings import Level5Settings, load
from ml_common.atomic import write_json, write_text
from ml_common.bench import stopwatch, write_bench
from ml_common.cli import report_error, run_main
from ml_common.config import ConfigError, dump_settings
from ml_common.logs import setup_logging
from ml_common.paths import level_dir
from ml_common.seeding import seed_everything

if TYPE_CHECKING:
    from level5_discovery.loop import SessionResult


def _port(text: str) -> int:
    """A TCP port number for argparse (0: pick a free one)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r} (0-65535)")
    return port


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
                       help="skip the literature x lab-size matrix")  # fmt: skip
    bench.add_argument("--matrix-only", action="store_true",
                       help="only the matrix (merged with a --no-matrix run)")  # fmt: skip
    bench.add_argument("--dask-address",
                       help="run the matrix's cells on this Dask scheduler (default: a local one)")
    review = sub.add_parser("review", help="one session reviewed on a web page")
    review.add_argument("--seed", type=int, help="world seed (default: from the config)")
    review.add_argument("--host", default="127.0.0.1", help="address to listen on")
    review.add_argument("--port", type=_port, default=0,
                        help="port (default: a free one, printed)")  # fmt: skip
    sub.add_parser("figures", help="draw the latest outputs' PNGs into artifacts/level5/figures")
    calibrate = sub.add_parser("calibrate",
                               help="calibrate the stopping probability on the tuning worlds")
    calibrate.add_argument("--cells", type=int, help="only the first N cells (default: all)")
    calibrate.add_argument("--worlds", type=int, help="tuning worlds per cell (default: config)")
    return parser


def cmd_figures(args: argparse.Namespace) -> int:
    """Draw the PNGs from the latest bench and session outputs into artifacts/level5/figures."""
    from level5_discovery.figures import draw, figures_dir

    written = draw(figures_dir())
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"nothing to draw: run `python -m level5_discovery run` or `bench` first "
              f"(outputs in {level_dir(5)})")  # fmt: skip
    return 0


def _reviewed_session(
    settings: Level5Settings,
    seed: int,
    reviewer: Reviewer | None,
    reviewer_name: str,
    echo_to: Callable[[str], None],
) -> tuple[SessionResult, Path]:
    """Train or load the models, run one session, save config, story, metrics and decisions."""
    from level5_discovery.session import discover, save_session
    from level5_discovery.train import lm_model, rl_policy

    seed_everything(seed)
    out = level_dir(5)
    write_json(out / "config.json", {**dump_settings(settings), "seed": seed})
    lm = lm_model(settings)
    policy = rl_policy(settings)
    log = DecisionLog(out / "decisions.jsonl")
    story: list[str] = []

    def echo(line: str) -> None:
        story.append(line)
        echo_to(line)

    echo(f"=== level 5 discovery session, world seed {seed} ===")
    result, seconds = discover(seed, settings, lm, policy, reviewer, log, echo)
    echo(f"session wall time {seconds:.1f} s; decisions logged to {log.path}")
    stopped_by = getattr(reviewer, "ended_by", None)
    save_session(out, seed, story, result, seconds, reviewer_name, stopped_by)
    return result, out


def cmd_run(args: argparse.Namespace) -> int:
    """One full discovery session, printing the story; outputs in artifacts/level5."""
    settings = load(args.config)
    seed = settings.seed if args.seed is None else args.seed
    reviewer = TerminalReviewer() if args.interactive else None
    name = "terminal" if reviewer is not None else "scripted"
    result, out = _reviewed_session(settings, seed, reviewer, name,
                                    lambda line: print(line, flush=True))  # fmt: skip
    if reviewer is not None and reviewer.ended_by:
        print(f"{reviewer.ended_by}: session stopped after {result.experiments} experiment(s); "
              f"story, metrics and decisions saved in {out}")  # fmt: skip
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """One session whose reviewer is the review page; serves it until Ctrl-C."""
    import socket
    import threading

    from level5_discovery.review import (
        ReviewState,
        WebReviewer,
        create_app,
        result_summary,
        serve,
    )
    from ml_common.services import free_port

    settings = load(args.config)
    seed = settings.seed if args.seed is None else args.seed
    state = ReviewState(seed)
    reviewer = WebReviewer(state)

    def session() -> None:
        def echo(line: str) -> None:
            state.say(line)
            print(line, flush=True)

        try:
            result, out = _reviewed_session(settings, seed, reviewer, "web", echo)
        except Exception as exc:  # shown on the page; the server keeps answering
            state.fail(f"the session failed: {type(exc).__name__}: {exc}")
            print(f"error: the session failed: {exc}", file=sys.stderr)
            return
        names = ("session_story.txt", "metrics.json", "decisions.jsonl", "config.json")
        state.finish(result_summary(result, settings.target_f1),
                     {name: str(out / name) for name in names})  # fmt: skip
        print(f"session finished; outputs in {out}; Ctrl-C stops the review page", flush=True)

    port = args.port or free_port()
    try:  # a clear one-line refusal before any model is loaded
        with socket.create_server((args.host, port)):
            pass
    except OSError as exc:
        print(f"error: cannot serve the review page on {args.host}:{port}: {exc.strerror or exc}",
              file=sys.stderr)  # fmt: skip
        return 2
    worker = threading.Thread(target=session, name="review-session", daemon=True)
    print(f"review page: http://{args.host}:{port}/  (Ctrl-C to stop)", flush=True)
    worker.start()
    serve(create_app(state), args.host, port)
    state.close()
    if worker.is_alive() and state.phase in ("waiting", "running"):
        print("saving what ran so far ...", flush=True)
        worker.join(timeout=300)
    print(f"review page stopped ({state.phase}); outputs in {level_dir(5)}", flush=True)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Calibrate stopping.probability on the tuning worlds -> artifacts/level5/calibration.json."""
    from level5_discovery.benchmark import calibrate

    settings = load(args.config)
    if args.worlds is not None:
        settings.bench.tuning_worlds = args.worlds
    result = calibrate(settings, args.cells)
    result["config"] = dump_settings(settings)
    write_json(level_dir(5) / "calibration.json", result)
    for row in result["table"]:
        print(f"threshold {row['threshold']:.2f}: stopped {row['stopped']}/{row['sessions']}, "
              f"share F1 >= {settings.target_f1:g}: {row['share_f1_ok']}, "
              f"experiments {row['experiments_mean']}")  # fmt: skip
    verdict = ("meets" if result["met"] else
               "does NOT meet (too few stops, or none safe enough; the configured value kept)")
    print(f"chosen stopping.probability {result['chosen']} ({verdict} the 95% goal on "
          f"{len(result['tuning_seeds'])} tuning worlds per cell); set it in config.yaml")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Benchmark; writes artifacts/bench/level5.json, artifacts/level5/bench_details.json and
    the README's tables (artifacts/level5/bench_tables.md)."""
    from level5_discovery.benchmark import run_benchmark

    settings = load(args.config)
    if args.worlds is not None:
        settings.bench.worlds = args.worlds
    if args.dask_address:
        settings.bench.runner = settings.bench.runner.model_copy(
            update={"address": args.dask_address}
        )
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
    from level5_discovery.figures import refresh_readme_figures

    for figure in refresh_readme_figures():
        print(f"wrote {figure}")
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
        commands = {"run": cmd_run, "bench": cmd_bench, "figures": cmd_figures,
                    "review": cmd_review, "calibrate": cmd_calibrate}  # fmt: skip
        return commands[args.command](args)
    except ConfigError as exc:
        report_error(exc, 5)
        return 2


if __name__ == "__main__":
    sys.exit(run_main(main, level=5))
