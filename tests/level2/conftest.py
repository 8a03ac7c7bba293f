"""Level 2 fixtures: a small generated dataset (written once per session) and small configs.

The Prefect flow tests share one temporary Prefect server for the session
(``prefect_test_harness``), with ``PREFECT_HOME`` in a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from level2_churn.settings import Level2Settings, load_config
from ml_common.config import deep_merge
from ml_common.tool_defaults import PREFECT_STARTUP_BUDGET_S

SMALL: dict[str, Any] = {
    "n_jobs": 1,
    "datasets": {
        "generated": {
            "generator": {"n_customers": 600, "months": 9, "chunk_customers": 250},
            "history_months": 3,
            "test_months": 2,
        }
    },
    "run": ["generated"],
    "cv": {"folds": 3},
    "tune": {"n_trials": 3, "folds": 2},
    "mlp": {"epochs": 3},
}


def small_config(**overrides: Any) -> Level2Settings:
    """The default config shrunk for tests (600 customers, 9 months, 3 trials)."""
    return load_config(**deep_merge(SMALL, overrides))


@pytest.fixture(scope="session")
def small_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four generated source files for the small config."""
    from level2_churn.generate import generate

    cfg = small_config()
    out = tmp_path_factory.mktemp("raw") / "raw"
    generate(out, cfg.datasets["generated"].generator, cfg.seed)  # type: ignore[union-attr]
    return out


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One temporary Prefect server (and database) for every flow test of the session.

    With ``PREFECT_API_URL`` set, the server it names is used instead (started once, e.g.
    ``prefect server start --port 4250``): no migration per session on a busy machine.
    """
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect_home"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=PREFECT_STARTUP_BUDGET_S):
        yield
