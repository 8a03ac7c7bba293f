"""MLflow with an embedded default: a sqlite file under ``artifacts/``, no server to run.

``MLFLOW_TRACKING_URI`` points every level at a real server instead. Registered models are found
by alias (``champion``, ``challenger``), never by a hard-coded version or path.
"""

from __future__ import annotations

import os
from typing import Any

from ml_common.paths import artifacts_dir

CHAMPION = "champion"
CHALLENGER = "challenger"


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<artifacts>/mlflow.db``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    root = artifacts_dir()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def setup_mlflow(experiment: str) -> Any:
    """Point MLflow at the tracking URI, switch telemetry off, select ``experiment``; return mlflow.

    Runs' artifacts go to ``<artifacts>/mlruns`` when the store is the local sqlite file.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    import mlflow

    uri = default_tracking_uri()
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        location = None
        if uri.startswith("sqlite:"):
            location = (artifacts_dir() / "mlruns" / experiment).as_uri()
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)
    return mlflow


def set_alias(model_name: str, alias: str, version: int | str) -> None:
    """Point ``alias`` of a registered model at ``version``."""
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(model_name, alias, str(version))


def alias_version(model_name: str, alias: str) -> int | None:
    """The version an alias points at, or ``None`` if the model or the alias does not exist."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return int(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def model_uri(model_name: str, alias: str = CHAMPION) -> str:
    """``models:/<name>@<alias>``, the URI every consumer loads from."""
    return f"models:/{model_name}@{alias}"
