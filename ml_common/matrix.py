"""The matrix runner: a Prefect flow that maps one case function over many cases on Dask.

Every level's claims rest on matrices of independent cases (level 2's tables, level 3's protocol
× bucket grid, level 4's drift scenarios, level 5's literature cells). They all run here, on one
real engine instead of a home-made pool:

- **Prefect** orchestrates: one flow run per matrix, one task run per case, retries per config,
  every case's state in the Prefect UI / API like any other flow.
- **Dask** (``prefect-dask``'s ``DaskTaskRunner``) executes. By default :func:`run_matrix` starts
  an embedded ``distributed.LocalCluster`` (``workers`` processes, ``threads_per_worker`` threads,
  a memory limit) and prints its dashboard address; given a scheduler address (``address`` in
  config, ``--dask-address`` on the command line or ``ML_DASK_ADDRESS``) the same call runs on an
  existing cluster: a ``dask scheduler`` and ``dask worker`` processes on other machines, or a
  Dask cluster on Kubernetes.
- **Isolation**: with ``isolate`` (the default) each case runs in a fresh Python subprocess of the
  worker, with its own artifacts folder and sqlite MLflow registry under a scratch folder, so a
  case's promotions cannot move another's ``@champion``, a crash or a hang costs that case only
  (a hung case is killed after ``case_timeout_s``), and native thread pools start sized.
- **Same figures wherever it ran**: results are gathered by case key, never by finishing order;
  each case seeds itself from its key (:func:`case_seed`); the results file holds no timings, so
  1 worker, 2 workers and a separate scheduler with its workers write byte-identical files.

A case function is a module-level function ``case_fn(params: dict) -> dict`` (JSON-able in and
out). It is passed by reference (``module:qualname``), so workers import it; it must not rely on
state set up by the caller's process.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ml_common.atomic import write_json
from ml_common.config import ConfigError

#: Environment variable naming a Dask scheduler; overrides the config's ``address``.
ADDRESS_ENV = "ML_DASK_ADDRESS"

CaseFn = Callable[[dict[str, Any]], dict[str, Any]]


class MatrixSettings(BaseModel):
    """How a matrix runs: where, how wide, how forgiving (a level's YAML block ``matrix:``)."""

    model_config = ConfigDict(extra="forbid")

    workers: int = Field(2, ge=1, le=256, description="processes of the embedded LocalCluster")
    threads_per_worker: int = Field(1, ge=1, le=64, description="cases at once per process")
    memory_limit: str = Field("auto", description="per worker process, e.g. '4GiB' or 'auto'")
    address: str | None = Field(None, description="a running Dask scheduler, e.g. tcp://h:8786")
    retries: int = Field(1, ge=0, le=10, description="extra attempts for a case that raises")
    case_timeout_s: float | None = Field(None, gt=0, description="kill a case after this long")
    isolate: bool = Field(True, description="each case in its own subprocess (see module doc)")
    connect_timeout_s: float = Field(10.0, gt=0, le=120, description="scheduler must answer")


class SchedulerUnreachable(ConfigError):
    """The configured Dask scheduler did not answer: a user error (exit 2)."""


class MatrixFailed(RuntimeError):
    """Some cases failed after their retries; the message names them."""


class CaseFailed(RuntimeError):
    """One case raised, crashed or was killed; the message is its one-line reason."""


class CaseTimedOut(CaseFailed):
    """One case ran past ``case_timeout_s`` and was killed (not retried: it would hang again)."""


@dataclass
class MatrixResult:
    """What a matrix produced. ``rows`` and ``failed`` are keyed and ordered like the cases."""

    name: str
    rows: dict[str, dict[str, Any]]
    failed: dict[str, str]
    retried: list[str] = field(default_factory=list)
    seconds: float = 0.0
    where: str = ""

    def raise_if_failed(self) -> None:
        """Raise :class:`MatrixFailed` naming every failed case (call after writing outputs)."""
        if self.failed:
            names = ", ".join(f"{key} ({reason})" for key, reason in self.failed.items())
            raise MatrixFailed(f"{len(self.failed)} of {self.total} cases failed: {names}")

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.failed)

    def results_payload(self) -> dict[str, Any]:
        """The deterministic part: no timings, no retry counts, nothing about where it ran."""
        return {"cases": self.rows, "failed": self.failed}


def case_seed(key: str) -> int:
    """A seed in [0, 2**31) derived from the case key alone: stable across runs and machines."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") >> 1


def function_ref(fn: CaseFn) -> str:
    """``module:qualname`` of a module-level function; refuse what a worker could not import."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if module == "__main__":  # `python -m package.module`: importable under its real name
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else None
    if not module or "<" in qualname:
        raise TypeError(f"case function must be defined at module level, importable: {fn!r}")
    return f"{module}:{qualname}"


def _resolve(ref: str) -> CaseFn:
    module, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_address(settings: MatrixSettings, override: str | None = None) -> str | None:
    """The scheduler to use: the command line's, else ``ML_DASK_ADDRESS``, else the config's."""
    return override or os.environ.get(ADDRESS_ENV) or settings.address


def check_scheduler(address: str, timeout_s: float) -> None:
    """Raise :class:`SchedulerUnreachable` (one line) unless a Dask scheduler answers in time."""
    from distributed import Client

    try:
        client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerUnreachable(
            f"the Dask scheduler at {address} did not answer within {timeout_s:g} s "
            f"({type(exc).__name__}); start one (`dask scheduler`) or drop --dask-address"
        ) from None
    client.close()


# --- one case --------------------------------------------------------------------------------


def _run_in_subprocess(
    ref: str,
    key: str,
    params: dict[str, Any],
    settings: MatrixSettings,
    scratch: Path,
    log_path: Path | None,
) -> dict[str, Any]:
    """Run ``ref(params)`` in a fresh interpreter; its own artifacts, registry and log."""
    # A folder per attempt: a rerun never shares files with an earlier attempt's process.
    scratch.mkdir(parents=True, exist_ok=True)
    case_dir = Path(tempfile.mkdtemp(prefix=f"{_safe_name(key)}-", dir=scratch))
    artifacts = case_dir / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    in_path, out_path = case_dir / "params.json", case_dir / "result.json"
    in_path.write_text(json.dumps({"ref": ref, "params": params}))
    env = dict(os.environ)
    env.update(
        ML_ARTIFACTS_DIR=str(artifacts),
        MLFLOW_TRACKING_URI=f"sqlite:///{artifacts / 'mlflow.db'}",
        ML_THREADS=str(settings.threads_per_worker),
        PYTHONHASHSEED=str(case_seed(key)),
    )
    log_path = log_path or case_dir / "case.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "ml_common.matrix", str(in_path), str(out_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=os.getcwd(),
                timeout=settings.case_timeout_s,
                check=False,
                preexec_fn=_die_with_parent,
            )
        except subprocess.TimeoutExpired:
            raise CaseTimedOut(f"killed after {settings.case_timeout_s:g} s") from None
    if out_path.exists():
        outcome = json.loads(out_path.read_text())
        if "error" in outcome:
            raise CaseFailed(outcome["error"])
        return outcome["result"]
    raise CaseFailed(f"the case's process died (exit {proc.returncode}; log {log_path})")


def _load_prctl() -> Callable[..., int] | None:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux / glibc
        return None


_PRCTL = _load_prctl()  # loaded here: nothing may be imported between fork and exec


def _die_with_parent() -> None:
    """In the case's process (Linux): SIGKILL it when its worker dies, so no orphan runs on
    beside the attempt Dask starts elsewhere. Elsewhere a no-op."""
    if _PRCTL is not None:
        _PRCTL(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


def _run_in_process(ref: str, key: str, params: dict[str, Any], settings: MatrixSettings) -> dict:
    from ml_common.threads import limit_threads

    os.environ["PYTHONHASHSEED"] = str(case_seed(key))  # for any subprocess the case starts
    with limit_threads(settings.threads_per_worker):
        return _resolve(ref)(params)


def _safe_name(key: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in key)[:80]
    return f"{cleaned}-{case_seed(key):08x}"


def _one_line(exc: BaseException) -> str:
    from ml_common.cli import one_line  # here: the CLI module loads pandas, cases may not need it

    return one_line(exc)


# --- the flow ----------------------------------------------------------------------------------


def _case_task(
    ref: str,
    key: str,
    params: dict[str, Any],
    settings_json: str,
    scratch: str,
    log_dir: str | None,
) -> dict[str, Any]:
    """The body of one task run: the case's result and the attempt that produced it."""
    from prefect.runtime import task_run

    settings = MatrixSettings.model_validate_json(settings_json)
    # Prefect counts its own retries; a worker that died mid-case makes Dask run the same task
    # again elsewhere, which only a mark left by the earlier start shows (same machine).
    marks = Path(scratch) / "attempts"
    marks.mkdir(parents=True, exist_ok=True)
    with open(marks / _safe_name(key), "a") as mark:
        mark.write(".")
    attempt = max(task_run.run_count, (marks / _safe_name(key)).stat().st_size)
    if settings.isolate:
        log_path = Path(log_dir) / f"{_safe_name(key)}.log" if log_dir else None
        result = _run_in_subprocess(ref, key, params, settings, Path(scratch), log_path)
    else:
        result = _run_in_process(ref, key, params, settings)
    return {"result": result, "attempt": attempt}


def _retry_unless_timeout(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except CaseTimedOut:
        return False
    except Exception:  # noqa: BLE001 - any other failure is worth the configured retry
        return True
    return False


def _matrix_flow(
    name: str,
    ref: str,
    cases: dict[str, dict[str, Any]],
    settings: MatrixSettings,
    scratch: str,
    log_dir: str | None,
    progress: Callable[[str], None],
) -> MatrixResult:
    from prefect import task
    from prefect.cache_policies import NO_CACHE
    from prefect.futures import as_completed

    case_task = task(
        _case_task,
        name=f"{name}-case",
        retries=settings.retries,
        retry_condition_fn=_retry_unless_timeout,
        cache_policy=NO_CACHE,
        persist_result=False,
    )
    settings_json = settings.model_dump_json()
    futures = {
        case_task.with_options(task_run_name=f"{name}[{key}]").submit(
            ref, key, params, settings_json, scratch, log_dir
        ): key
        for key, params in cases.items()
    }
    rows: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    retried: list[str] = []
    start = time.monotonic()
    for done, future in enumerate(as_completed(list(futures)), start=1):
        key = futures[future]
        try:
            outcome = future.result()
        except Exception as exc:  # noqa: BLE001 - a failed case is reported, the matrix goes on
            failed[key] = _one_line(exc)
            if settings.retries and not isinstance(exc, CaseTimedOut):
                retried.append(key)
            status = f"FAILED ({failed[key]})"
        else:
            rows[key] = outcome["result"]
            if outcome["attempt"] > 1:
                retried.append(key)
            status = "done" + (
                f" on attempt {outcome['attempt']}" if outcome["attempt"] > 1 else ""
            )
        elapsed = time.monotonic() - start
        left = elapsed / done * (len(futures) - done)
        progress(
            f"{name}: {done}/{len(futures)} cases, {key} {status}; "
            f"{elapsed:.0f} s so far, about {_duration(left)} left"
        )
    order = list(cases)
    return MatrixResult(
        name=name,
        rows={k: rows[k] for k in order if k in rows},
        failed={k: failed[k] for k in order if k in failed},
        retried=[k for k in order if k in retried],
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{math.ceil(seconds)} s"
    return f"{seconds / 60:.1f} min"


@contextlib.contextmanager
def _cluster(
    settings: MatrixSettings, address: str | None, progress: Callable[[str], None]
) -> Iterator[str]:
    """The scheduler address to submit to: the given one (checked), or a LocalCluster's."""
    if address:
        check_scheduler(address, settings.connect_timeout_s)
        progress(f"Dask: using the scheduler at {address}")
        yield address
        return
    from distributed import LocalCluster

    # Worker processes inherit the environment: ml_common sizes their pools from ML_THREADS;
    # Dask's own INFO chatter (every worker's start and stop) stays off the terminal.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    logging.getLogger("distributed.nanny").setLevel(logging.ERROR)  # "still alive … killing"
    with (
        _env({"ML_THREADS": str(settings.threads_per_worker), "DASK_LOGGING__DISTRIBUTED": "warn"}),
        LocalCluster(
            n_workers=settings.workers,
            threads_per_worker=settings.threads_per_worker,
            memory_limit=settings.memory_limit,
            processes=True,
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
            silence_logs=logging.WARNING,
        ) as cluster,
    ):
        progress(
            f"Dask: started a LocalCluster of {settings.workers} worker process(es) × "
            f"{settings.threads_per_worker} thread(s); dashboard {cluster.dashboard_link}"
        )
        yield cluster.scheduler_address


@contextlib.contextmanager
def shared_prefect_api() -> Iterator[None]:
    """Make every worker report to this process's Prefect API.

    Without ``PREFECT_API_URL`` Prefect starts a temporary server on the first flow, and so would
    every Dask worker process for its first task (one server each: a minute of start-up on two
    busy cores). Here the temporary server is started once, up front, and its URL goes into
    the settings that ``prefect-dask`` ships with each task and into the environment the
    LocalCluster's workers inherit. With ``PREFECT_API_URL`` set (a real server) nothing changes.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the same instance Prefect's own client would start
    server.start()
    with (
        temporary_settings({PREFECT_API_URL: server.api_url}),
        _env({"PREFECT_API_URL": server.api_url}),
    ):
        yield


@contextlib.contextmanager
def _env(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_matrix(
    case_fn: CaseFn,
    cases: Mapping[str, dict[str, Any]],
    settings: MatrixSettings | None = None,
    *,
    name: str = "matrix",
    address: str | None = None,
    out_path: str | Path | None = None,
    log_dir: str | Path | None = None,
    progress: Callable[[str], None] = _print_progress,
) -> MatrixResult:
    """Run ``case_fn`` on every case as one Prefect flow on Dask; gather results by case key.

    Args:
        case_fn: a module-level function ``params -> dict`` (JSON-able both ways).
        cases: case key → params; keys are unique names (they seed and label the case).
        settings: see :class:`MatrixSettings`; defaults to a 2-process LocalCluster.
        name: the flow run's and the progress lines' name.
        address: a scheduler address that overrides config and ``ML_DASK_ADDRESS``.
        out_path: where to write the deterministic results JSON (atomically), if anywhere.
        log_dir: where each case's output goes (``<key>-<hash>.log``) when isolated.
        progress: receives one line per finished case (done/total, time left) and the cluster's.

    Returns:
        :class:`MatrixResult`; failed cases are in ``failed`` (call ``raise_if_failed`` after
        writing what succeeded). Raises :class:`SchedulerUnreachable` when ``address`` is dead.
    """
    from prefect import flow
    from prefect_dask import DaskTaskRunner

    settings = settings or MatrixSettings()
    ref = function_ref(case_fn)
    cases = {str(k): dict(v) for k, v in cases.items()}
    if not cases:
        raise ValueError("a matrix needs at least one case")
    address = resolve_address(settings, address)
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix=f"{name}-") as scratch,
        shared_prefect_api(),
        _cluster(settings, address, progress) as scheduler,
    ):
        if log_dir is not None:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
        matrix_flow = flow(_matrix_flow, name=name, validate_parameters=False).with_options(
            task_runner=DaskTaskRunner(address=scheduler), log_prints=False
        )
        result = matrix_flow(
            name, ref, cases, settings, scratch, str(log_dir) if log_dir else None, progress
        )
    result.seconds = round(time.monotonic() - started, 1)
    result.where = address or f"LocalCluster({settings.workers}×{settings.threads_per_worker})"
    if out_path is not None:
        write_json(out_path, result.results_payload())
    progress(
        f"{name}: {len(result.rows)}/{result.total} cases succeeded in {result.seconds:.0f} s"
        + (f"; failed: {', '.join(result.failed)}" if result.failed else "")
    )
    return result


def _child_main(in_path: str, out_path: str) -> int:
    """Entry point of an isolated case: read params, run, write ``{"result"}`` or ``{"error"}``
    (atomically, NumPy values as plain numbers: ``ml_common.atomic.write_json``)."""
    request = json.loads(Path(in_path).read_text())
    try:
        write_json(out_path, {"result": _resolve(request["ref"])(request["params"])})
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the case's reason
        import traceback

        traceback.print_exc()
        write_json(out_path, {"error": f"{type(exc).__name__}: {_one_line(exc)}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1], sys.argv[2]))
