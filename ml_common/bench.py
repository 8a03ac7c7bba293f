"""The benchmark convention: ``make bench-levelN`` writes ``artifacts/bench/levelN.json``.

One flat JSON object: the keys the level's issue names (numbers or booleans), plus ``seconds``
(wall time of the benchmark) and ``machine`` (cores, RAM, GPU name or null).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ml_common.atomic import write_json
from ml_common.paths import bench_dir


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
