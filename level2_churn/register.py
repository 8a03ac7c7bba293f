"""Register: the trained pipeline becomes a version of an MLflow registered model.

The new version takes the ``champion`` alias when its headline score (test AP for snapshots,
walk-forward AP for events) is at least the current champion's; otherwise it is the
``challenger``. Consumers load ``models:/level2-churn-<dataset>@champion``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from level2_churn.settings import Level2Settings
from ml_common.tracking import CHALLENGER, CHAMPION, alias_version, set_alias, setup_mlflow


def headline(metrics: dict[str, Any]) -> float:
    """The score that decides champion vs challenger."""
    if "holdout" in metrics:
        return float(metrics["holdout"]["test_ap"])
    return float(metrics["walk_forward"]["lgbm"]["ap_mean"])


def register_model(
    cfg: Level2Settings, name: str, model: Any, metrics: dict[str, Any], example: pd.DataFrame
) -> dict[str, Any]:
    mlflow = setup_mlflow(cfg.experiment)
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    model_name = f"{cfg.model_name_prefix}-{name}"
    client = MlflowClient()
    score = headline(metrics)
    features = example.drop(columns=[c for c in ("churn", "customer_id", "cutoff") if c in example])
    # Integer inputs may arrive with gaps at serving time: declare them as doubles.
    features = features.astype({c: float for c in features.select_dtypes("integer").columns})
    signature = infer_signature(features, model.predict_proba(features)[:, 1])
    with mlflow.start_run(run_id=metrics["mlflow_run_id"]):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=model_name,
            signature=signature,
            # Our own pipeline (imblearn + LightGBM): skops would need every type allow-listed.
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pip_requirements=["scikit-learn", "lightgbm", "imbalanced-learn", "pandas"],
        )
        mlflow.log_metric("headline_ap", score)
    version = int(info.registered_model_version)
    current = alias_version(model_name, CHAMPION)
    best = None
    if current is not None:
        run_id = client.get_model_version(model_name, str(current)).run_id
        best = client.get_run(run_id).data.metrics.get("headline_ap")
    alias = CHAMPION if best is None or score >= best else CHALLENGER
    set_alias(model_name, alias, version)
    return {
        "model_name": model_name,
        "version": version,
        "alias": alias,
        "headline_ap": score,
        "previous_champion_ap": best,
    }
