"""Native thread pools are sized by ml_common: one thread per pool unless ML_THREADS says more."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from threadpoolctl import threadpool_info

from ml_common.paths import PROJECT_ROOT
from ml_common.threads import THREAD_VARIABLES, limit_threads, thread_count

# Run in a fresh interpreter: pools are sized when a library loads, once per process.
PROBE = """
import json, sys
order = sys.argv[1]
if order == "numpy-first":
    import numpy  # loaded before ml_common: threadpoolctl must resize its pool
import ml_common  # noqa
import numpy, scipy.linalg, lightgbm, torch  # noqa
from threadpoolctl import threadpool_info
print(json.dumps({
    "pools": [[p["internal_api"], p["num_threads"]] for p in threadpool_info()],
    "torch": torch.get_num_threads(),
}))
"""


def probe(order: str, threads: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (*THREAD_VARIABLES, "ML_THREADS")}
    if threads is not None:
        env["ML_THREADS"] = threads
    done = subprocess.run(
        [sys.executable, "-c", PROBE, order], env=env, cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("order", ["ml_common-first", "numpy-first"])
def test_every_native_pool_has_one_thread_by_default(order: str) -> None:
    seen = probe(order, None)
    apis = {api for api, _ in seen["pools"]}
    assert "openblas" in apis or "mkl" in apis, seen  # a BLAS pool was found, so it was checked
    assert "openmp" in apis, seen
    assert all(n == 1 for _, n in seen["pools"]), seen
    assert seen["torch"] == 1


def test_ml_threads_overrides_the_default() -> None:
    seen = probe("numpy-first", "2")
    assert all(n == 2 for _, n in seen["pools"]), seen
    assert seen["torch"] == 2


def test_this_test_process_is_sized_by_conftest() -> None:
    assert thread_count() == int(os.environ.get("ML_THREADS", "1"))
    assert os.environ["OMP_NUM_THREADS"] == str(thread_count())
    assert all(p["num_threads"] == thread_count() for p in threadpool_info())


def test_limit_threads_resizes_for_a_block_and_restores() -> None:
    import torch

    before = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    torch_before = torch.get_num_threads()
    with limit_threads(2):
        assert all(p["num_threads"] == 2 for p in threadpool_info())
        assert torch.get_num_threads() == 2
    assert {p["filepath"]: p["num_threads"] for p in threadpool_info()} == before
    assert torch.get_num_threads() == torch_before


def test_a_bad_ml_threads_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_THREADS", "many")
    with pytest.raises(ValueError, match="ML_THREADS must be a whole number"):
        thread_count()
