"""Environment defaults for the embedded tools, applied when ``ml_common`` is first imported.

Every entry point (``python -m levelN_…``, ``make levelN``, pytest, ``dvc repro`` stages, a
notebook kernel) imports ``ml_common`` before it imports Prefect or MLflow, and those tools read
their settings from the environment once, at import. Setting the defaults here, and only where
the variable is unset, gives every entry point the same behaviour as the Makefile; a value the
user exported always wins.

Prefect's first start is the fragile part. With no ``PREFECT_API_URL`` a flow starts a temporary
server that must answer within ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` (Prefect's
default: 20 s). Its first start in a fresh ``PREFECT_HOME`` migrates a new sqlite database,
15-20 s on an idle 2-core machine and well over 20 s on a busy one, so the default made the first
``make level2`` a coin toss. :data:`PREFECT_STARTUP_BUDGET_S` fits a loaded laptop. Prefect also
creates only the last folder of ``PREFECT_HOME``, so its parents are created here.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ml_common.paths import artifacts_dir

#: Seconds Prefect's temporary server may take to answer. Measured on the 2-core machine, first
#: flow in a fresh PREFECT_HOME at load 7-9: 19-43 s (Prefect's own 20 s made it a coin toss);
#: the budget leaves room for a machine twice as busy and for a slow disk.
PREFECT_STARTUP_BUDGET_S = 240
#: The variable Prefect reads the budget from (a value the user exported wins).
PREFECT_STARTUP_VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"

TOOL_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # also removes a harmless "database is locked"
    "PREFECT_LOGGING_LEVEL": "WARNING",
    PREFECT_STARTUP_VARIABLE: str(PREFECT_STARTUP_BUDGET_S),
}


def apply_tool_defaults() -> None:
    """Set the tools' environment defaults (where unset) and create ``PREFECT_HOME``'s folders."""
    for name, value in TOOL_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("PREFECT_HOME", str(artifacts_dir() / "prefect"))
    # On failure Prefect warns with the path itself; nothing more useful to say here.
    with contextlib.suppress(OSError):
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
