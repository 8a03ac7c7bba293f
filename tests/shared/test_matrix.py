"""The matrix runner (ml_common.matrix): real Prefect flows on real Dask clusters.

Each ``run_matrix`` call here starts a Prefect flow run and a Dask cluster (a LocalCluster, or a
separately started ``dask scheduler`` with two ``dask worker`` processes), so the tests are few and
each checks several behaviours of one run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ml_common.matrix import (
    MatrixFailed,
    MatrixSettings,
    SchedulerUnreachable,
    case_seed,
    function_ref,
    run_matrix,
)
from ml_common.services import free_port
from tests.shared import matrix_cases

CASES = {f"mu={mu}": {"key": f"mu={mu}", "mu": mu} for mu in (0, 1, 2, 3)}


def test_case_seed_is_stable_and_spread() -> None:
    assert case_seed("a") == case_seed("a")
    seeds = {case_seed(f"case{i}") for i in range(1000)}
    assert len(seeds) == 1000
    assert all(0 <= s < 2**31 for s in seeds)


def test_function_ref_refuses_what_a_worker_cannot_import() -> None:
    assert function_ref(matrix_cases.noisy_mean) == "tests.shared.matrix_cases:noisy_mean"
    with pytest.raises(TypeError, match="module level"):
        function_ref(lambda params: params)


@pytest.fixture(scope="module")
def dask_processes(tmp_path_factory: pytest.TempPathFactory):
    """A separately started ``dask scheduler`` and two ``dask worker`` processes (real ones)."""
    bin_dir = Path(sys.executable).parent
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask")
    with open(logs / "scheduler.log", "w") as log:
        scheduler = subprocess.Popen(
            [
                bin_dir / "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                "127.0.0.1:0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    with open(logs / "workers.log", "w") as log:
        workers = subprocess.Popen(
            [
                bin_dir / "dask",
                "worker",
                address,
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    from distributed import Client

    try:
        with Client(address, timeout="120s") as client:
            client.wait_for_workers(2, timeout=180)
        yield address
    finally:
        for proc in (workers, scheduler):
            proc.terminate()
        for proc in (workers, scheduler):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_same_files_on_one_worker_two_workers_and_a_separate_cluster(
    tmp_path: Path, dask_processes: str
) -> None:
    runs = {
        "one": MatrixSettings(workers=1),
        "two": MatrixSettings(workers=2),
        "cluster": MatrixSettings(address=dask_processes),
    }
    lines: list[str] = []
    for label, settings in runs.items():
        result = run_matrix(
            matrix_cases.noisy_mean,
            CASES,
            settings,
            name=f"test-{label}",
            out_path=tmp_path / f"{label}.json",
            progress=lines.append,
        )
        assert list(result.rows) == list(CASES)  # gathered by key, in the cases' order
        assert not result.failed
    files = {label: (tmp_path / f"{label}.json").read_bytes() for label in runs}
    assert files["one"] == files["two"] == files["cluster"]
    rows = json.loads(files["one"])["cases"]
    assert [round(rows[k]["mean"]) for k in CASES] == [0, 1, 2, 3]  # real computation
    # One progress line per finished case, with done/total and time left, per run.
    case_lines = [line for line in lines if " cases, mu=" in line]
    assert len(case_lines) == 3 * len(CASES)
    assert any("4/4 cases" in line and "left" in line for line in case_lines)
    assert any("LocalCluster of 2 worker" in line and "dashboard http" in line for line in lines)
    assert any(f"scheduler at {dask_processes}" in line for line in lines)


@pytest.mark.slow  # a 45 s hang and retries: ~2 min idle, ~8 min at load 14
def test_failures_retries_hangs_and_killed_cases(tmp_path: Path) -> None:
    cases = {
        "fine": {"key": "fine", "mu": 5},
        "flaky": {"marker": str(tmp_path / "flaky.marker")},
        "broken": {"key": "broken"},
        "killed": {"marker": str(tmp_path / "killed.marker")},
        "hung": {},
    }
    functions = {
        "fine": matrix_cases.noisy_mean,
        "flaky": matrix_cases.flaky,
        "broken": matrix_cases.always_fails,
        "killed": matrix_cases.dies_once,
        "hung": matrix_cases.hangs,
    }
    # One function per matrix: the dispatcher case picks the behaviour by key.
    dispatch = {k: {"fn": function_ref(fn), "params": cases[k]} for k, fn in functions.items()}
    settings = MatrixSettings(workers=2, retries=1, case_timeout_s=45)
    started = time.monotonic()
    result = run_matrix(
        matrix_cases.dispatch,
        dispatch,
        settings,
        name="test-faults",
        out_path=tmp_path / "faults.json",
        log_dir=tmp_path / "logs",
    )
    assert time.monotonic() - started < 600  # the hung case did not hold the matrix
    assert set(result.rows) == {"fine", "flaky", "killed"}
    assert result.rows["killed"] == {"survived": True}
    assert set(result.retried) >= {"flaky", "killed", "broken"}
    assert result.failed["broken"] == "ValueError: case broken cannot be computed"
    assert result.failed["hung"] == "killed after 45 s"
    written = json.loads((tmp_path / "faults.json").read_text())
    assert set(written["failed"]) == {"broken", "hung"}  # written before anyone raises
    with pytest.raises(MatrixFailed, match=r"2 of 5 cases failed: broken .*hung"):
        result.raise_if_failed()
    # Each case's own output went to its log: the broken case's traceback is there.
    logs = "\n".join(p.read_text() for p in (tmp_path / "logs").glob("broken-*.log"))
    assert "ValueError: case broken cannot be computed" in logs


def test_a_dead_scheduler_address_is_one_line_within_ten_seconds() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(SchedulerUnreachable, match=f"scheduler at {address} did not answer"):
        run_matrix(
            matrix_cases.noisy_mean, CASES, MatrixSettings(address=address, connect_timeout_s=5)
        )
    assert time.monotonic() - started < 10


@pytest.mark.slow  # ~1.5 min idle, 8.5 min at load 26
def test_a_worker_killed_mid_case_costs_that_case_a_retry_not_the_run() -> None:
    import threading

    import psutil

    killed: list[int] = []

    def kill_the_worker_of_the_first_running_case() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            time.sleep(0.5)
            for child in psutil.Process().children(recursive=True):
                try:
                    running_a_case = "ml_common.matrix" in " ".join(child.cmdline())
                    worker = child.parent()
                except psutil.Error:
                    continue
                if running_a_case and worker is not None:
                    worker.kill()  # the Dask worker process, as the OOM killer would
                    killed.append(worker.pid)
                    return

    cases = {f"slow{i}": {"key": f"slow{i}", "seconds": 10} for i in range(3)}
    killer = threading.Thread(target=kill_the_worker_of_the_first_running_case, daemon=True)
    killer.start()
    result = run_matrix(matrix_cases.slow_case, cases, MatrixSettings(workers=2), name="test-kill")
    assert killed, "no case process was seen running"
    assert not result.failed
    assert result.rows == {k: {"seed": case_seed(k)} for k in cases}
    assert len(result.retried) == 1
