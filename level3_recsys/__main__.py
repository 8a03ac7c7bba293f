"""``python -m level3_recsys <command>``: every stage of level 3 from the command line.

prepare → tune → train → batch → serve / deploy → loadtest, plus drift (Evidently report), down,
bench.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Before Prefect and MLflow are imported (OpenBLAS threads: see the package's __init__).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _settings(args: argparse.Namespace):
    from level3_recsys.settings import load

    return load(args.config)


def cmd_prepare(args: argparse.Namespace) -> int:
    from level3_recsys.data import prepare
    from level3_recsys.train import default_dirs

    settings = _settings(args)
    out = Path(args.out) if args.out else default_dirs()[0]
    print(json.dumps(prepare(settings.data, out), indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from level3_recsys.train import default_dirs, train

    settings = _settings(args)
    data_dir, models_dir, _ = default_dirs()
    data_dir = Path(args.data) if args.data else data_dir
    models_dir = Path(args.out) if args.out else models_dir
    summary = train(settings, data_dir, models_dir)
    k = summary["k"]
    for name, metrics in summary["models"].items():
        print(
            f"{name:16s} ndcg@{k} {metrics[f'ndcg@{k}']:.4f}  recall@{k} "
            f"{metrics[f'recall@{k}']:.4f}  map@{k} {metrics[f'map@{k}']:.4f}  "
            f"coverage {metrics['coverage']:.3f}"
        )
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from level3_recsys.train import default_dirs
    from level3_recsys.tune import TUNING_FILE, tune

    settings = _settings(args)
    data_dir, models_dir, _ = default_dirs()
    data_dir = Path(args.data) if args.data else data_dir
    out_dir = Path(args.out) if args.out else models_dir.parent / "tuning"
    result = tune(settings, data_dir, out_dir)
    k = result["k"]
    for protocol, found in result["protocols"].items():
        print(f"{protocol}: {found['validation_users']} validation users")
        for name, params in found["chosen"].items():
            best = max(row[f"ndcg@{k}"] for row in found["scores"][name])
            print(f"  {name:16s} {json.dumps(params):42s} validation ndcg@{k} {best:.4f}")
    print(f"written to {out_dir / TUNING_FILE} ({result['seconds']:.0f} s)")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from level3_recsys.batch import nightly_batch, nightly_deployment
    from level3_recsys.train import default_dirs

    settings = _settings(args)
    serving_dir = default_dirs()[2]
    if args.serve_schedule:
        from prefect import serve

        serve(nightly_deployment(settings, serving_dir))
        return 0
    print(json.dumps(nightly_batch(settings, serving_dir), indent=2))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from level3_recsys.serve import create_app

    settings = _settings(args)
    uvicorn.run(
        create_app(settings),
        host=settings.serve.host,
        port=args.port or settings.serve.port,
        log_level="warning",
    )
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from level3_recsys.deploy import deploy

    use_docker = False if args.no_docker else None
    urls = deploy(_settings(args), use_docker=use_docker)
    print(f"\nTry it: {urls.pop('page')}")
    print(f"Level 3 recommender is up ({urls.pop('mode')}):")
    for name, url in urls.items():
        print(f"  {name:11s} {url}")
    print("Stop it with: make level3-down")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from level3_recsys.deploy import down

    stopped = down(_settings(args))
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from level3_recsys.batch import nightly_batch
    from level3_recsys.deploy import reload_deployed
    from level3_recsys.train import default_dirs
    from ml_common.cli import UsageError
    from ml_common.tracking import CHALLENGER, CHAMPION, alias_version, set_alias, setup_mlflow

    settings = _settings(args)
    setup_mlflow(settings.train.experiment)
    name = settings.train.model_name
    champion, challenger = alias_version(name, CHAMPION), alias_version(name, CHALLENGER)
    if champion is None or challenger is None:
        raise UsageError(f"{name} needs both aliases to swap them: run `train` first")
    set_alias(name, CHAMPION, challenger)
    set_alias(name, CHALLENGER, champion)
    nightly_batch(settings, default_dirs()[2])  # re-export by alias, refill the store
    reloaded = reload_deployed(settings)
    print(
        f"{name}: champion v{challenger}, challenger v{champion}"
        f"{'; running service reloaded' if reloaded else ''}"
    )
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from level3_recsys.batch import drift_report_flow
    from level3_recsys.deploy import deployed_admin_token
    from level3_recsys.train import default_dirs
    from ml_common.paths import level_dir

    settings = _settings(args)
    url = args.url or f"http://127.0.0.1:{settings.deploy.port}"
    out = level_dir(3) / "reports" / "drift.html"
    token = deployed_admin_token(settings)
    summary = drift_report_flow(settings, url, default_dirs()[2], out, token)
    print(f"Evidently drift report: {summary['html']}")
    return 0


def cmd_loadtest(args: argparse.Namespace) -> int:
    from level3_recsys.loadtest.run import run_loadtest

    settings = _settings(args)
    result = run_loadtest(settings, url=args.url, duration_s=args.duration)
    print(json.dumps(result, indent=2))
    return 0


def cmd_hostile(args: argparse.Namespace) -> int:
    from level3_recsys.bundle import default_serving_dir
    from level3_recsys.fuzz import service_checks

    result = service_checks(_settings(args), default_serving_dir(), args.flood, args.examples)
    print(json.dumps(result, indent=2))
    return 0 if result["fuzz"]["failures"] == 0 and result["flood"]["series_growth"] == 0 else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from level3_recsys.bench import bench

    print(json.dumps(bench(_settings(args), duration_s=args.duration), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m level3_recsys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="YAML config (default: level3_recsys/config.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="DVC stage 1: MovieLens → temporal split CSVs")
    p.add_argument("--out", help="output folder (default artifacts/level3/data)")
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser("tune", help="DVC stage 2: grid search of every model on validation data")
    p.add_argument("--data", help="prepared data folder")
    p.add_argument("--out", help="output folder (default artifacts/level3/tuning)")
    p.set_defaults(func=cmd_tune)
    p = sub.add_parser("train", help="DVC stage 3: fit with tuned settings, evaluate, register")
    p.add_argument("--data", help="prepared data folder")
    p.add_argument("--out", help="models folder (default artifacts/level3/models)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("batch", help="nightly Prefect flow: precompute top-N into the store")
    p.add_argument(
        "--serve-schedule",
        action="store_true",
        help="serve the cron deployment (long-running) instead of one run",
    )
    p.set_defaults(func=cmd_batch)
    p = sub.add_parser("serve", help="run the API in the foreground (uvicorn)")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("deploy", help="train if needed, batch, build + run the image (make level3)")
    p.add_argument("--no-docker", action="store_true", help="use uvicorn even if Docker answers")
    p.set_defaults(func=cmd_deploy)
    p = sub.add_parser("down", help="stop what deploy started (make level3-down)")
    p.set_defaults(func=cmd_down)
    p = sub.add_parser("promote", help="swap the champion and challenger aliases in MLflow")
    p.set_defaults(func=cmd_promote)
    p = sub.add_parser("drift", help="Evidently drift report of the running service's features")
    p.add_argument("--url", help="service URL (default http://127.0.0.1:<deploy.port>)")
    p.set_defaults(func=cmd_drift)
    p = sub.add_parser("loadtest", help="locust headless against the service (make loadtest)")
    p.add_argument("--url", help="service URL (default: the deployed one, else start one)")
    p.add_argument("--duration", type=int, help="seconds per phase (default from config)")
    p.set_defaults(func=cmd_loadtest)
    p = sub.add_parser(
        "hostile", help="schemathesis (all checks) + a forged-feedback flood on the serving bundle"
    )
    p.add_argument("--flood", type=int, default=10_000, help="forged /feedback requests")
    p.add_argument("--examples", type=int, default=100, help="schemathesis examples/operation")
    p.set_defaults(func=cmd_hostile)
    p = sub.add_parser("bench", help="offline metrics + load test → artifacts/bench/level3.json")
    p.add_argument("--duration", type=int, help="load-test seconds per phase")
    p.set_defaults(func=cmd_bench)
    args = parser.parse_args(argv)

    from ml_common.cli import USER_ERRORS, report_error
    from ml_common.logs import setup_logging

    setup_logging()
    try:
        return args.func(args)
    except USER_ERRORS as exc:  # what a user can fix; anything else is a bug: run_main, exit 1
        report_error(exc, 3)
        return 2


if __name__ == "__main__":
    from ml_common.cli import run_main

    sys.exit(run_main(main, level=3))
