"""``python -m ml_common.matrix_bench``: the matrix runner's own benchmark and cross-runner check.

The same matrix (``--cases`` small gradient-boosting fits on synthetic data, each seeded by its
key) runs on a 1-worker and a 2-worker LocalCluster, and on a separately started cluster when
``--dask-address`` names one (``.ci/run`` starts a ``dask scheduler`` and two ``dask worker``
processes for it). Writes ``artifacts/bench/matrix_runner.json``: ``cases``,
``seconds_1_worker``, ``seconds_2_workers``, ``speedup_2_workers``, ``seconds_cluster`` (or
null), ``identical_across_runners`` (the results files compared byte for byte), ``retried_cases``,
``failed_cases``. Exits 1 when the files differ or a case failed.

The speed-up on a 2-core machine is at most 2 and less in practice: both workers share the
cores with the scheduler, the Prefect API server and this process, and each run pays a fixed
start (a flow run, the cluster, each worker's first import of Prefect).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from ml_common.atomic import write_json
from ml_common.bench import machine_info
from ml_common.matrix import MatrixSettings, case_seed, run_matrix, shared_prefect_api
from ml_common.paths import bench_dir


def fit_one(params: dict[str, Any]) -> dict[str, Any]:
    """One case: fit a small gradient-boosting model on synthetic data; its test accuracy."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    seed = case_seed(params["key"])
    x, y = make_classification(
        n_samples=params["rows"], n_features=20, n_informative=8, random_state=seed
    )
    x_train, x_test, y_train, y_test = train_test_split(x, y, random_state=seed)
    model = HistGradientBoostingClassifier(max_iter=params["trees"], random_state=seed)
    model.fit(x_train, y_train)
    return {"accuracy": round(float(model.score(x_test, y_test)), 6)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml_common.matrix_bench", description=__doc__)
    parser.add_argument("--cases", type=int, default=8, help="cases in the matrix (default 8)")
    parser.add_argument("--rows", type=int, default=20_000, help="rows per case's data set")
    parser.add_argument("--dask-address", help="also run on this Dask scheduler and compare")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.rows < 100:
        parser.error("--cases must be >= 1 and --rows >= 100")
    cases = {
        f"case{i:02d}": {"key": f"case{i:02d}", "rows": args.rows, "trees": 100}
        for i in range(args.cases)
    }
    runs = {"1_worker": MatrixSettings(workers=1), "2_workers": MatrixSettings(workers=2)}
    if args.dask_address:
        runs["cluster"] = MatrixSettings(address=args.dask_address)
    seconds: dict[str, float] = {}
    files: dict[str, bytes] = {}
    retried: set[str] = set()
    failed: set[str] = set()
    # Prefect's temporary server starts once, before the clocks: the first run must not pay it.
    with tempfile.TemporaryDirectory() as tmp, shared_prefect_api():
        for label, settings in runs.items():
            out = Path(tmp) / f"{label}.json"
            result = run_matrix(
                fit_one, cases, settings, name=f"matrix-bench-{label}", out_path=out
            )
            seconds[label] = result.seconds
            files[label] = out.read_bytes()
            retried |= set(result.retried)
            failed |= set(result.failed)
    identical = len(set(files.values())) == 1
    figures = {
        "cases": args.cases,
        "rows_per_case": args.rows,
        "seconds_1_worker": seconds["1_worker"],
        "seconds_2_workers": seconds["2_workers"],
        "speedup_2_workers": round(seconds["1_worker"] / seconds["2_workers"], 2),
        "seconds_cluster": seconds.get("cluster"),
        "runners_compared": ", ".join(runs),
        "identical_across_runners": identical,
        "retried_cases": len(retried),
        "failed_cases": len(failed),
    }
    figures["seconds"] = round(sum(seconds.values()), 1)
    figures["machine"] = machine_info()
    path = bench_dir() / "matrix_runner.json"
    write_json(path, figures)
    print(f"wrote {path}: {figures}")
    if not identical or failed:
        print("error: the runners' results differ or cases failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
