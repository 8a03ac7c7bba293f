"""Models: logistic regression baseline, LightGBM, and a small PyTorch MLP, behind one factory.

Every model is an imbalanced-learn ``Pipeline``: preprocessing (one-hot categories, median-imputed
numbers, scaled for the linear and neural models) -> optional SMOTE (see ``imbalance``) ->
classifier. Because resampling lives inside the pipeline, cross-validation applies it to the
training folds only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from imblearn.pipeline import Pipeline
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from level2_churn.settings import ColumnMapping, MLPSettings

MODEL_NAMES = ("lr", "lgbm", "mlp")
# The LightGBM defaults before tuning: small trees, slow learning, strong regularisation.
LGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 400,
    "learning_rate": 0.03,
    "num_leaves": 4,
    "min_child_samples": 50,
    "reg_lambda": 5.0,
    "colsample_bytree": 0.7,
    "subsample": 0.8,
    "subsample_freq": 1,
}


def model_frame(table: pd.DataFrame, columns: ColumnMapping) -> tuple[pd.DataFrame, pd.Series]:
    """(the model's input columns, the 0/1 target) of a prepared table."""
    X = table[list(columns.categorical) + list(columns.numeric)]
    return X, table[columns.target].astype(int)


def as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as plain strings with NaN for missing (parquet gives None, pandas gives NA)."""
    return frame.astype(object).where(frame.notna(), np.nan)


def preprocessor(columns: ColumnMapping, scale: bool) -> ColumnTransformer:
    """One-hot categories (unknown ones ignored), median-impute numbers, optionally scale."""
    numeric = [SimpleImputer(strategy="median")] + ([StandardScaler()] if scale else [])
    categorical = make_pipeline(
        FunctionTransformer(as_categories, feature_names_out="one-to-one"),
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    return ColumnTransformer(
        [
            ("categorical", categorical, list(columns.categorical)),
            ("numeric", make_pipeline(*numeric), list(columns.numeric)),
        ],
        verbose_feature_names_out=False,
    )


class TorchMLPClassifier(ClassifierMixin, BaseEstimator):
    """A two-layer perceptron in PyTorch with a scikit-learn face (``fit`` / ``predict_proba``).

    Written by hand on purpose: the training loop is the lesson. Minibatch Adam,
    binary cross-entropy, optional positive-class weight for class imbalance.
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (32, 16),
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        class_weight: str | None = None,
        random_state: int = 0,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> TorchMLPClassifier:
        import torch
        from torch import nn

        torch.manual_seed(self.random_state)
        torch.set_num_threads(1)  # small network: threads only add overhead (and nondeterminism)
        X_t = torch.as_tensor(np.asarray(X, dtype=np.float32))
        y_t = torch.as_tensor(np.asarray(y, dtype=np.float32))
        layers: list[nn.Module] = []
        width = X_t.shape[1]
        for size in self.hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net_ = nn.Sequential(*layers)
        pos_weight = None
        if self.class_weight == "balanced":
            positives = float(y_t.sum())
            pos_weight = torch.tensor((len(y_t) - positives) / max(positives, 1.0))
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        optimiser = torch.optim.Adam(
            self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        generator = torch.Generator().manual_seed(self.random_state)
        self.net_.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(X_t), generator=generator)
            for start in range(0, len(X_t), self.batch_size):
                batch = order[start : start + self.batch_size]
                optimiser.zero_grad()
                loss = loss_fn(self.net_(X_t[batch]).squeeze(1), y_t[batch])
                loss.backward()
                optimiser.step()
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        self.net_.eval()
        with torch.no_grad():
            logits = self.net_(torch.as_tensor(np.asarray(X, dtype=np.float32))).squeeze(1)
        positive = torch.sigmoid(logits).numpy().astype(np.float64)
        return np.column_stack([1 - positive, positive])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def classifier(
    name: str,
    seed: int,
    n_jobs: int,
    params: dict[str, Any] | None = None,
    class_weight: str | None = None,
    mlp: MLPSettings | None = None,
) -> BaseEstimator:
    """The bare classifier called ``name`` (``lr``, ``lgbm`` or ``mlp``)."""
    params = params or {}
    if name == "lr":
        return LogisticRegression(max_iter=2000, class_weight=class_weight, **params)
    if name == "lgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(
            **{**LGBM_DEFAULTS, **params},
            class_weight=class_weight,
            random_state=seed,
            n_jobs=n_jobs,
            deterministic=True,
            force_col_wise=True,
            verbose=-1,
        )
    if name == "mlp":
        mlp = mlp or MLPSettings()
        return TorchMLPClassifier(
            hidden=tuple(mlp.hidden),
            epochs=mlp.epochs,
            batch_size=mlp.batch_size,
            lr=mlp.lr,
            weight_decay=mlp.weight_decay,
            class_weight=class_weight,
            random_state=seed,
        )
    raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")


def build_model(
    name: str,
    columns: ColumnMapping,
    seed: int,
    n_jobs: int = 1,
    params: dict[str, Any] | None = None,
    imbalance: str = "none",
    mlp: MLPSettings | None = None,
) -> Pipeline:
    """preprocess -> (SMOTE) -> classifier, as one pipeline that cross-validation can refit."""
    from level2_churn.imbalance import imbalance_steps

    resample, class_weight = imbalance_steps(imbalance, seed)
    steps: list[tuple[str, Any]] = [("preprocess", preprocessor(columns, scale=name != "lgbm"))]
    steps += resample
    steps.append(("model", classifier(name, seed, n_jobs, params, class_weight, mlp)))
    return Pipeline(steps)
