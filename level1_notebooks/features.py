"""Features and models used by the notebook, kept here so that they can be tested.

Two kinds of feature work, kept apart on purpose:

- row-wise features (:func:`add_features`: title, family size, surname) look at one passenger at a
  time, so computing them on the whole file before a split cannot leak anything;
- fitted preprocessing (:class:`GroupMedianImputer`, one-hot encoding, scaling) learns numbers from
  data, so it belongs inside a scikit-learn pipeline that cross-validation refits on each training
  fold (:func:`make_model`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# Titles that mean the same thing are merged; the rare ones (Dr, Rev, Col, Countess...) share one.
COMMON_TITLES = ("Mr", "Mrs", "Miss", "Master")
TITLE_SYNONYMS = {"Mlle": "Miss", "Ms": "Miss", "Mme": "Mrs"}
CATEGORICAL = ["pclass", "sex", "title"]
NUMERIC = ["sibsp", "parch", "family_size"]
# What the models see: age (imputed inside the pipeline), the counts and the categories.
FEATURE_COLUMNS = ["age", *NUMERIC, *CATEGORICAL]
MODEL_NAMES = ("logistic_regression", "random_forest", "gradient_boosting")


def extract_title(names: pd.Series) -> pd.Series:
    """The title in "Surname, Title. Given names": Mr, Mrs, Miss, Master or Rare."""
    raw = names.str.extract(r",\s*([^.]+)\.", expand=False).str.strip()
    merged = raw.replace(TITLE_SYNONYMS)
    return merged.where(merged.isin(COMMON_TITLES), "Rare").rename("title")


def add_features(passengers: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``title``, ``family_size`` (sibsp + parch + the passenger) and ``surname``."""
    featured = passengers.copy()
    featured["title"] = extract_title(featured["name"])
    featured["family_size"] = featured["sibsp"] + featured["parch"] + 1
    featured["surname"] = featured["name"].str.split(",").str[0].str.strip()
    return featured


class GroupMedianImputer(TransformerMixin, BaseEstimator):
    """Fill a missing value with the median of its group, learnt on the training rows only.

    Written by hand for teaching (scikit-learn has no grouped imputer). ``fit`` receives two
    columns, the value and the group (e.g. ``age`` and ``title``); ``transform`` returns the value
    column with gaps filled by the group's median, or by the overall median for a group unseen
    in training or without any known value.
    """

    def __init__(self, value_column: str = "age", group_column: str = "title") -> None:
        self.value_column = value_column
        self.group_column = group_column

    def fit(self, X: pd.DataFrame, y: object = None) -> GroupMedianImputer:
        """Learn the median of ``value_column`` per ``group_column`` and overall."""
        values = pd.to_numeric(X[self.value_column], errors="coerce")
        self.overall_median_ = float(values.median())
        self.group_medians_ = values.groupby(X[self.group_column]).median().dropna().to_dict()
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """The value column, gaps filled, as a one-column float array."""
        values = pd.to_numeric(X[self.value_column], errors="coerce")
        fill = X[self.group_column].map(self.group_medians_).astype(float)
        filled = values.fillna(fill).fillna(self.overall_median_)
        return filled.to_numpy(dtype=float).reshape(-1, 1)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """One output column, named after the value column."""
        return np.array([self.value_column], dtype=object)


def make_preprocessor(scale: bool) -> ColumnTransformer:
    """Age imputed by title, counts as numbers, class/sex/title one-hot; scaled if ``scale``."""
    age = make_pipeline(GroupMedianImputer(), StandardScaler()) if scale else GroupMedianImputer()
    numeric = StandardScaler() if scale else "passthrough"
    return ColumnTransformer(
        [
            ("age", age, ["age", "title"]),
            ("numeric", numeric, NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )


def make_classifier(name: str, seed: int) -> BaseEstimator:
    """A classifier with scikit-learn's default hyperparameters (only the seed is set).

    Logistic regression gets ``max_iter=1000`` so that it converges; that changes no modelling
    choice, only how long the solver may search.
    """
    if name == "logistic_regression":
        return LogisticRegression(max_iter=1000)
    if name == "random_forest":
        return RandomForestClassifier(random_state=seed)
    if name == "gradient_boosting":
        return GradientBoostingClassifier(random_state=seed)
    raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")


def make_model(name: str, seed: int) -> Pipeline:
    """The honest model: preprocessing and classifier in one pipeline, refitted on every fold."""
    return Pipeline(
        [
            ("preprocess", make_preprocessor(scale=name == "logistic_regression")),
            ("classifier", make_classifier(name, seed)),
        ]
    )


class SexOnlyRule(ClassifierMixin, BaseEstimator):
    """The baseline: predict, for each sex, the outcome most common for it in the training rows.

    On this data it learns "women survive, men die"; it is scored with the same folds as the models.
    """

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> SexOnlyRule:
        """Learn the majority outcome per sex (and overall, for an unseen value)."""
        outcome = pd.Series(np.asarray(y), index=X.index)
        self.classes_ = np.unique(outcome)
        self.rate_by_sex_ = outcome.groupby(X["sex"]).mean().to_dict()
        self.overall_rate_ = float(outcome.mean())
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Survival rate of the passenger's sex in training, as a two-column probability."""
        rate = X["sex"].map(self.rate_by_sex_).fillna(self.overall_rate_).to_numpy(dtype=float)
        return np.column_stack([1 - rate, rate])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 where the passenger's sex mostly survived in training, else 0."""
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)
