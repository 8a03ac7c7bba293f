"""Register: the trained pipeline becomes a version of an MLflow registered model.

The new version takes the ``champion`` alias when its *selection* score is strictly higher than
the current champion's (a tie keeps the champion), otherwise it is the ``challenger``. The
selection score is measured on development data only (snapshots: the chosen family's
cross-validated AP on train + validation; events: the chosen family's AP on the months before
the walk-forward test months): promotion is a choice, and choices never look at the test part.
Consumers load ``models:/level2-churn-<dataset>@champion``.

What is registered is a :class:`~level2_churn.serve.ChurnModel` pyfunc: the raw table's model
columns in (numbers as doubles, so integers, floats and missing values all pass the signature),
a labelled frame out (``churn_probability``, ``churn`` at the pipeline's threshold, which is also
in the model's metadata). It must run outside this repository: our own code
(``level2_churn.models``, ``level2_churn.serve``) is pickled by value, so loading needs only the
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


def model_signature(columns: ColumnMapping) -> Any:
    """Raw columns in, ``churn_probability`` (double) and ``churn`` (0/1) out.

    Numeric columns are declared ``Any``: MLflow's ``double`` refuses an int64 column ("cannot
    safely convert") and its ``long`` refuses floats and missing values, while a raw table holds
    all three. The model itself (``serve.ChurnModel``) refuses text that is not a number.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    inputs = [ColSpec("string", c, required=False) for c in columns.categorical]
    inputs += [ColSpec(AnyType(), c, required=False) for c in columns.numeric]
    outputs = [ColSpec("double", "churn_probability"), ColSpec("long", "churn")]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def model_threshold(metrics: dict[str, Any]) -> float:
    """The decision threshold the pipeline chose: on validation (snapshot) or, for the
    walk-forward, the one the last test month used (chosen on the month before it)."""
    if "holdout" in metrics:
        return float(metrics["holdout"]["threshold"])
    cuts = [m["threshold"] for m in metrics["months"] if m.get("threshold") is not None]
    return float(cuts[-1]) if cuts else 0.5


def register_model(
    cfg: Level2Settings,
    name: str,
    model: Any,
    metrics: dict[str, Any],
    example: pd.DataFrame,
    columns: ColumnMapping,
    missing_values: list[str] | None = None,
) -> dict[str, Any]:
    """Log ``model`` as a :class:`~level2_churn.serve.ChurnModel` pyfunc and alias it.

    ``columns`` is the raw mapping (ratios are computed inside the model); ``example`` raw rows
    of the source, used to check the signature accepts them before anything is logged.
    """
    import cloudpickle

    import level2_churn.models
    import level2_churn.serve
    from level2_churn.serve import ChurnModel

    mlflow = setup_mlflow(cfg.experiment)
    from mlflow import MlflowClient

    model_name = f"{cfg.model_name_prefix}-{name}"
    client = MlflowClient()
    score = headline(metrics)
    cut = model_threshold(metrics)
    wrapped = ChurnModel(
        model, cut, list(columns.categorical), list(columns.numeric), dict(columns.ratios)
    )
    signature = model_signature(columns)
    wrapped.predict(None, model_input(example, columns))  # fails here, before any logging
    metadata = {
        "threshold": cut,
        "target": columns.target,
        "positive_label": str(columns.positive_label),
        "id_column": columns.id,
        "missing_values": list(missing_values) if missing_values is not None else [""],
        "chosen_family": metrics.get("chosen_family"),
        "selection_ap": score,
        "outputs": "churn_probability (float), churn (1 if churn_probability >= threshold)",
    }
    # Pickle our own code (the pipeline's helpers, the pyfunc class) into the model instead of
    # referring to it by import path: the loaded model must not need this repository.
    cloudpickle.register_pickle_by_value(level2_churn.models)
    cloudpickle.register_pickle_by_value(level2_churn.serve)
    try:
        with mlflow.start_run(run_id=metrics["mlflow_run_id"]):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=wrapped,
                registered_model_name=model_name,
                signature=signature,
                input_example=model_input(example, columns).head(5),
                metadata=metadata,
                pip_requirements=[
                    "mlflow",
                    "scikit-learn",
                    "lightgbm",
                    "imbalanced-learn",
                    "pandas",
                    "cloudpickle",
                    "torch",
                ],
            )
            mlflow.log_metric("selection_ap", score)
    finally:
        cloudpickle.unregister_pickle_by_value(level2_churn.serve)
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
        "threshold": cut,
    }
