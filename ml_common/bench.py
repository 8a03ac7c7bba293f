"""The benchmark convention: ``make bench-levelN`` writes ``artifacts/bench/levelN.json``.

One flat JSON object: the keys the level's issue names (numbers or booleans), plus ``seconds``
(wall time of the benchmark) and ``machine`` (cores, RAM, GPU name or null).

Two rules keep a long benchmark's work from being lost:

- :class:`BenchRun` writes the file after every step it records, so a step that fails (or a run
  that is killed) costs only the figures not yet measured; until the run ends the file carries
  ``incomplete`` with the reason;
- :func:`optional_figure`: a figure that needs a system tool which is not installed
  (``ml_common.system_tools``) is recorded as ``null`` with ``<key>_not_measured`` saying why,
  and the run goes on.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from ml_common.atomic import write_json
from ml_common.paths import bench_dir
from ml_common.system_tools import ToolMissing

log = logging.getLogger(__name__)


def machine_info() -> dict[str, Any]:
    """Cores, memory in GiB and the CUDA GPU's name (``None`` without one)."""
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    ram_gib = None
    with suppress(ValueError, OSError, AttributeError):
        ram_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "gpu": gpu,
        "python": platform.python_version(),
    }


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """``with stopwatch() as t: ...`` then ``t["seconds"]`` holds the elapsed wall time."""
    timing: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield timing
    finally:
        timing["seconds"] = time.perf_counter() - start


def write_bench(level: int, results: Mapping[str, Any], seconds: float) -> Path:
    """Write ``artifacts/bench/level<level>.json``; nested values are rejected to keep it flat."""
    for key, value in results.items():
        if isinstance(value, (dict, list, tuple)):
            raise ValueError(
                f"benchmark key {key!r} must be a number, bool or str, not {type(value).__name__}"
            )
    payload = {**results, "seconds": round(seconds, 2), "machine": machine_info()}
    path = bench_dir() / f"level{level}.json"
    write_json(path, payload)
    return path


def not_measured(key: str, reason: str) -> dict[str, Any]:
    """``{key: None, "<key>_not_measured": reason}``: a figure this run could not measure."""
    return {key: None, f"{key}_not_measured": reason}


def optional_figure(key: str, measure: Callable[[], Any]) -> dict[str, Any]:
    """``{key: measure()}``; when ``measure`` needs a system tool that is not installed
    (:class:`~ml_common.system_tools.ToolMissing`), :func:`not_measured` with the reason.
    Any other error propagates: a broken measurement is not a missing tool."""
    try:
        return {key: measure()}
    except ToolMissing as missing:
        log.warning("%s not measured: %s", key, missing.reason)
        return not_measured(key, missing.reason)


class BenchRun:
    """A benchmark's figures, written to ``artifacts/bench/level<level>.json`` after each step.

    ``with BenchRun(4) as bench: bench.record({...})`` — every :meth:`record` rewrites the file
    with what is measured so far and ``incomplete`` saying the run goes on; a normal end writes
    it without ``incomplete``; an exception writes it with ``incomplete`` naming the error, then
    propagates.
    """

    RUNNING = "the run had not finished when this was written"

    def __init__(self, level: int) -> None:
        self.level = level
        self.results: dict[str, Any] = {}
        self.path = bench_dir() / f"level{level}.json"
        self._started = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Wall time since the run started."""
        return time.perf_counter() - self._started

    def record(self, figures: Mapping[str, Any]) -> None:
        """Add ``figures`` and rewrite the file (still marked incomplete)."""
        self.results.update(figures)
        self.write(incomplete=self.RUNNING)

    def write(self, incomplete: str | None = None) -> Path:
        """Write the figures so far; ``incomplete`` (a reason) marks a partial file."""
        extra = {} if incomplete is None else {"incomplete": incomplete}
        self.path = write_bench(self.level, {**self.results, **extra}, self.seconds)
        return self.path

    def __enter__(self) -> BenchRun:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            self.write()
            return
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        reason = f"stopped by {kind.__name__ if kind else 'an error'}: {first_line}".rstrip(": ")
        with suppress(Exception):  # the original error matters more than a failed write
            self.write(incomplete=reason)
