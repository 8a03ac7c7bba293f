"""Test-wide set-up: outputs go to a temporary folder, markers decide skips.

- Native thread pools get one thread each (``ML_THREADS`` overrides; ``ml_common.threads``).
- Every test session writes its artifacts (and the MLflow sqlite file) under a temporary folder,
  never into the repository's ``artifacts/``.
- ``gpu`` tests skip with a reason when CUDA is absent.
- ``docker`` tests skip when no Docker engine answers, unless ``REQUIRE_DOCKER=1`` (set by CI),
  which turns that skip into a failure so CI can never pass by skipping the container tests.
"""

from __future__ import annotations

import functools
import os

# Before pytest imports any test module (and with it NumPy, PyTorch, implicit …): one thread per
# native pool, ML_THREADS to override; already-loaded libraries are resized too.
from ml_common.threads import apply_thread_limits

apply_thread_limits()

import pytest  # noqa: E402

from ml_common.services import docker_available  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _isolated_artifacts(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("artifacts")
    os.environ["ML_ARTIFACTS_DIR"] = str(root)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MPLBACKEND", "Agg")


@functools.cache
def docker_engine_answers() -> bool:
    """Whether ``docker info`` reaches a running engine (asked once per test session)."""
    return docker_available(timeout_s=20)


@functools.cache
def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if "docker" in item.keywords and not docker_engine_answers():
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail("REQUIRE_DOCKER=1 but no Docker engine answers (docker info fails)")
        pytest.skip("no Docker engine (docker info fails); CI sets REQUIRE_DOCKER=1")
    if "gpu" in item.keywords and not cuda_available():
        pytest.skip("no CUDA GPU on this machine (torch.cuda.is_available() is False)")
