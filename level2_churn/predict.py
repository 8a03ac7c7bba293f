"""Predict: score a CSV of customers with a registered model (``python -m level2_churn predict``).

The model is loaded from the registry (``models:/level2-churn-telco@champion``, or any MLflow
model URI); its metadata says which strings mean missing in a CSV and the decision threshold.
The output has one row per input row: the id column when the input has it,
``churn_probability`` and ``churn`` (1 at or above the threshold).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ml_common.datasets import DataError
from ml_common.logs import get_logger
from ml_common.tracking import setup_mlflow

log = get_logger(__name__)
MAX_INPUT_MB = 100.0  # a batch larger than this is refused before reading: split it


def load_registered(model_uri: str, experiment: str) -> Any:
    """The pyfunc model at ``model_uri``; a URI that does not resolve is the user's error."""
    setup_mlflow(experiment)
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{model_uri}: cannot load the model ({first[:200]})") from None


def read_batch(path: Path, model: Any) -> pd.DataFrame:
    """The CSV as the model reads it: declared missing markers, numbers parsed, columns checked."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    size_mb = path.stat().st_size / 1e6
    if size_mb > MAX_INPUT_MB:
        raise DataError(f"{path}: {size_mb:,.1f} MB, above the {MAX_INPUT_MB:g} MB batch limit")
    meta = model.metadata.metadata or {}
    markers = list(meta.get("missing_values", [""]))
    try:
        rows = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=markers)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    if rows.empty:
        raise DataError(f"{path}: no rows")
    schema = model.metadata.get_input_schema()
    wanted = {spec.name: getattr(spec.type, "name", str(spec.type)) for spec in schema.inputs}
    absent = [c for c in wanted if c not in rows]
    if absent:
        raise DataError(f"{path}: missing column(s) {absent} that the model reads")
    problems = []
    for column, kind in wanted.items():
        if kind == "string":
            continue
        parsed = pd.to_numeric(rows[column], errors="coerce")
        bad = parsed.isna() & rows[column].notna()
        if bad.any():
            problems.append(f"column {column!r}: {int(bad.sum())} values are not numbers")
        rows[column] = parsed.astype(float)
    if problems:
        raise DataError(
            f"{path}: " + "; ".join(problems) + f" (strings that mean missing: {markers})"
        )
    return rows


def predict_file(model_uri: str, path: Path, experiment: str) -> pd.DataFrame:
    """Score every row of the CSV at ``path``: [id,] churn_probability, churn."""
    model = load_registered(model_uri, experiment)
    rows = read_batch(path, model)
    meta = model.metadata.metadata or {}
    wanted = [spec.name for spec in model.metadata.get_input_schema().inputs]
    scored = pd.DataFrame(model.predict(rows[wanted]))
    id_column = meta.get("id_column")
    if id_column and id_column in rows:
        scored.insert(0, id_column, rows[id_column].to_numpy())
    log.info(
        "%s: %d rows scored, %d flagged as churn at threshold %.3f",
        path,
        len(scored),
        int(scored["churn"].sum()),
        float(meta.get("threshold", float("nan"))),
    )
    return scored
