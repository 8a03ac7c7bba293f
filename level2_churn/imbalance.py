"""Class imbalance: compare nothing, class weights, and SMOTE (resampling training folds only).

SMOTE is a step of the imbalanced-learn pipeline, which resamples in ``fit`` and never in
``predict``: inside cross-validation only the training folds get synthetic churners, and every
score is measured on real, untouched customers.
"""

from __future__ import annotations

from typing import Any

IMBALANCE_METHODS = ("none", "class_weight", "smote")


def imbalance_steps(method: str, seed: int) -> tuple[list[tuple[str, Any]], str | None]:
    """(pipeline steps to insert before the classifier, class_weight for the classifier)."""
    if method == "none":
        return [], None
    if method == "class_weight":
        return [], "balanced"
    if method == "smote":
        from imblearn.over_sampling import SMOTE

        return [("smote", SMOTE(random_state=seed))], None
    raise ValueError(f"unknown imbalance method {method!r}; choose one of {IMBALANCE_METHODS}")
