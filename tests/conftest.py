"""Test-wide set-up: outputs go to a temporary folder, markers decide skips.

- Native thread pools get one thread each (``ML_THREADS`` overrides; ``ml_common.threads``).
- Every test session writes its artifacts (and the MLflow sqlite file) under a temporary folder,
  never into the repository's ``artifacts/``.
- A test that needs a system tool (markers ``docker``, ``gpu``, ``requires("promtool")``, or a
  call of :func:`require_system_tool` in a fixture) skips with one line naming the Debian package
  when the tool is absent, unless ``REQUIRE_SYSTEM_TOOLS=1`` (set by CI's ``.ci/run``: every
  tool CI installs, not the GPU; ``REQUIRE_SYSTEM_TOOLS=gpu`` on a GPU machine) turns that skip
  into a failure, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os

# Before pytest imports any test module (and with it NumPy, PyTorch, implicit …): one thread per
# native pool, ML_THREADS to override; already-loaded libraries are resized too.
from ml_common.threads import apply_thread_limits

apply_thread_limits()

import pytest  # noqa: E402

from ml_common.system_tools import (  # noqa: E402
    REQUIRE_VARIABLE,
    missing_tool,
    require_tool,
    tool_required,
)


@pytest.fixture(scope="session", autouse=True)
def _isolated_artifacts(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("artifacts")
    os.environ["ML_ARTIFACTS_DIR"] = str(root)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MPLBACKEND", "Agg")


def require_system_tool(tool: str) -> str | None:
    """Skip the running test (fail it when ``REQUIRE_SYSTEM_TOOLS=1``) when ``tool`` is absent,
    with one line naming what to install; else return its path (``ml_common.system_tools``)."""
    reason = missing_tool(tool)
    if reason is None:
        return require_tool(tool)
    if tool_required(tool):
        pytest.fail(f"{REQUIRE_VARIABLE} requires {tool}, but {reason}")
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # `docker` and `gpu` are markers of their own (pytest -m docker); `requires` names the others.
    needed = [name for name in ("docker", "gpu") if name in item.keywords]
    for marker in item.iter_markers("requires"):
        needed += list(marker.args)
    for tool in dict.fromkeys(needed):
        require_system_tool(tool)
