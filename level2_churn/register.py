"""Register: the trained pipeline becomes a version of an MLflow registered model.

The new version takes the ``champion`` alias when its *selection* score is strictly higher than
the current champion's (a tie keeps the champion), otherwise it is the ``challenger``. The
selection score is measured on development data only (snapshots: the chosen family's
cross-validated AP on train + validation; events: the chosen family's AP on the months before
the walk-forward test months): promotion is a choice, and choices never look at the test part.
Consumers load ``models:/level2-churn-<dataset>@champion``.

What is registered must run outside this repository: the signature is inferred from raw rows of
the source table (integer columns stay integers), the model answers ``predict_proba``, and our
own helpers in ``level2_churn.models`` are pickled by value, so loading needs only the
requirements MLflow records.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from level2_churn.settings import ColumnMapping, Level2Settings
from ml_common.tracking import CHALLENGER, CHAMPION, alias_version, set_alias, setup_mlflow

NOT_FEATURES = ("customer_id", "cutoff")


def headline(metrics: dict[str, Any]) -> float:
    """The score that decides champion vs challenger: measured without the test part."""
    return float(metrics["selection_ap"])


def model_input(rows: pd.DataFrame, columns: ColumnMapping) -> pd.DataFrame:
    """The columns the model reads, from raw rows (target, id and cut-off dropped)."""
    return rows[list(columns.categorical) + list(columns.numeric)]


def register_model(
    cfg: Level2Settings,
    name: str,
    model: Any,
    metrics: dict[str, Any],
    example: pd.DataFrame,
    columns: ColumnMapping,
) -> dict[str, Any]:
    """Log ``model`` with a signature inferred from ``example`` (raw source rows) and alias it."""
    import cloudpickle

    import level2_churn.models

    mlflow = setup_mlflow(cfg.experiment)
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    model_name = f"{cfg.model_name_prefix}-{name}"
    client = MlflowClient()
    score = headline(metrics)
    features = model_input(example, columns)
    signature = infer_signature(features, model.predict_proba(features))
    # Pickle our own functions (as_categories) into the model instead of referring to them by
    # import path: the loaded model must not need this repository.
    cloudpickle.register_pickle_by_value(level2_churn.models)
    try:
        with mlflow.start_run(run_id=metrics["mlflow_run_id"]):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=model_name,
                signature=signature,
                pyfunc_predict_fn="predict_proba",
                # Our own pipeline (imblearn + LightGBM): skops would need every type allow-listed.
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                pip_requirements=[
                    "scikit-learn",
                    "lightgbm",
                    "imbalanced-learn",
                    "pandas",
                    "cloudpickle",
                ],
            )
            mlflow.log_metric("selection_ap", score)
    finally:
        cloudpickle.unregister_pickle_by_value(level2_churn.models)
    version = int(info.registered_model_version)
    current = alias_version(model_name, CHAMPION)
    best = None
    if current is not None:
        run_id = client.get_model_version(model_name, str(current)).run_id
        best = client.get_run(run_id).data.metrics.get("selection_ap")
    # Strictly better: a version that only ties the champion's selection score stays challenger.
    alias = CHAMPION if best is None or score > best else CHALLENGER
    set_alias(model_name, alias, version)
    return {
        "model_name": model_name,
        "version": version,
        "alias": alias,
        "model_uri": f"models:/{model_name}/{version}",
        "selection_ap": score,
        "previous_champion_selection_ap": best,
        "signature_inputs": [str(c) for c in signature.inputs.inputs],
    }
