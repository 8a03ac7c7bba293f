"""Serve: the registered model as people call it — raw columns in, a labelled frame out.

``ChurnModel`` is an MLflow pyfunc around the trained pipeline. It takes the raw table's model
columns (extra columns such as the id are ignored), computes the configured ratio features
itself, and returns one row per customer: ``churn_probability`` and ``churn`` (1 when the
probability reaches the pipeline's threshold, the one chosen on validation data). The threshold
also sits in the registered model's metadata.

This module is pickled by value into the model (with ``models``), so it imports nothing from
this repository: a Python that cannot import ``level2_churn`` still loads and calls the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class ChurnModel(PythonModel):
    """Raw rows -> ``churn_probability`` and ``churn`` at ``threshold``."""

    def __init__(
        self,
        pipeline: Any,
        threshold: float,
        categorical: list[str],
        numeric: list[str],
        ratios: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.threshold = float(threshold)
        self.categorical = list(categorical)
        self.numeric = list(numeric)  # the raw numeric columns (ratios are derived from them)
        self.ratios = dict(ratios or {})

    def features(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The pipeline's input frame: categories as text, numbers as floats, ratios added."""
        frame = pd.DataFrame(index=rows.index)
        for column in self.categorical:  # as in training: stripped text, empty = missing
            text = rows[column].astype(str).str.strip().astype(object)
            frame[column] = text.where(rows[column].notna() & (text != ""), np.nan)
        for column in self.numeric:
            values = pd.to_numeric(rows[column], errors="coerce").astype(float)
            bad = values.isna() & rows[column].notna()
            if bad.any():  # text that is not a number: refused, never silently made missing
                raise ValueError(
                    f"column {column!r}: {int(bad.sum())} values are not numbers "
                    "(send a number, or null for missing)"
                )
            frame[column] = values
        for name, (numerator, denominator) in self.ratios.items():
            frame[name] = frame[numerator] / frame[denominator].replace(0, np.nan)
        return frame

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """One row per input row: ``churn_probability`` (float) and ``churn`` (0/1)."""
        rows = pd.DataFrame(model_input)
        probability = self.pipeline.predict_proba(self.features(rows))[:, 1]
        return pd.DataFrame(
            {
                "churn_probability": probability.astype(float),
                "churn": (probability >= self.threshold).astype(np.int64),
            },
            index=rows.index,
        )
