"""The MLflow registry side of training: log an ensemble, register it, load it back by alias.

What is registered (``models:/level4-fraud@champion``) is what the scoring tiers serve: the
FastAPI service loads it directly, the ONNX tier is exported from it
(:mod:`level4_fraud.serving.export`), with its version and run id carried along.
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from level4_fraud.config import Level4Settings
from level4_fraud.models.ensemble import FraudEnsemble
from ml_common.tracking import setup_mlflow


class EnsemblePyfunc:
    """Builds the MLflow pyfunc wrapper lazily (mlflow imports are slow)."""

    @staticmethod
    def make() -> Any:
        import mlflow.pyfunc

        class _Wrapper(mlflow.pyfunc.PythonModel):
            def load_context(self, context: Any) -> None:
                with open(context.artifacts["ensemble"], "rb") as handle:
                    self.ensemble = pickle.load(handle)

            def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
                return self.ensemble.predict_proba(model_input)

        return _Wrapper()


def log_model(
    ensemble: FraudEnsemble,
    settings: Level4Settings,
    metrics: dict[str, float],
    params: dict[str, Any] | None = None,
    run_name: str = "train",
) -> int:
    """Log and register ``ensemble``; return its registry version (aliases are set by callers)."""
    mlflow = setup_mlflow(settings.experiment)
    with mlflow.start_run(run_name=run_name) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({**{f"w_{k}": v for k, v in ensemble.weights.items()}, **(params or {})})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
        path = Path(tmp) / "ensemble.pkl"
        path.write_bytes(pickle.dumps(ensemble))
        mlflow.pyfunc.log_model(
            name="model",
            python_model=EnsemblePyfunc.make(),
            artifacts={"ensemble": str(path)},
            pip_requirements=["torch", "lightgbm", "scikit-learn", "pandas", "numpy"],
        )
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", settings.model_name)
    return int(version.version)


def load_model(settings: Level4Settings, alias: str) -> FraudEnsemble | None:
    """The ensemble registered under ``alias``, or ``None`` when the alias is not set."""
    from ml_common.tracking import alias_version, model_uri

    mlflow = setup_mlflow(settings.experiment)
    if alias_version(settings.model_name, alias) is None:
        return None
    wrapper = mlflow.pyfunc.load_model(model_uri(settings.model_name, alias))
    return wrapper.unwrap_python_model().ensemble
