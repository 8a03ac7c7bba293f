"""Case functions for the matrix runner's tests (module level, so Dask workers import them)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from ml_common.matrix import case_seed


def noisy_mean(params: dict[str, Any]) -> dict[str, Any]:
    """A small real computation seeded by the case key: the same key gives the same figures."""
    rng = np.random.default_rng(case_seed(params["key"]))
    sample = rng.normal(params["mu"], 1.0, size=params.get("n", 2000))
    return {"mean": float(sample.mean()), "std": float(sample.std()), "pid": None}


def flaky(params: dict[str, Any]) -> dict[str, Any]:
    """Raises on its first attempt (a marker file remembers), succeeds on the next."""
    marker = Path(params["marker"])
    if not marker.exists():
        marker.write_text("tried")
        raise RuntimeError("first attempt fails on purpose")
    return {"ok": True}


def always_fails(params: dict[str, Any]) -> dict[str, Any]:
    raise ValueError(f"case {params['key']} cannot be computed")


def hangs(params: dict[str, Any]) -> dict[str, Any]:
    time.sleep(3600)
    return {}


def dies_once(params: dict[str, Any]) -> dict[str, Any]:
    """Kills its own process on the first attempt (as the OOM killer would), then succeeds."""
    marker = Path(params["marker"])
    if not marker.exists():
        marker.write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    return {"survived": True}


def slow_case(params: dict[str, Any]) -> dict[str, Any]:
    """Sleeps a while (long enough to be killed mid-case), then answers from its key."""
    time.sleep(params.get("seconds", 20))
    return {"seed": case_seed(params["key"])}


def dispatch(params: dict[str, Any]) -> dict[str, Any]:
    """Run the case function named in ``params["fn"]`` (lets one matrix mix behaviours)."""
    from ml_common.matrix import _resolve

    return _resolve(params["fn"])(params["params"])
