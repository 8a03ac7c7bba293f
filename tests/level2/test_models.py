"""Models and imbalance handling: each model learns, SMOTE touches training folds only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from level2_churn.imbalance import imbalance_steps
from level2_churn.models import TorchMLPClassifier, build_model
from level2_churn.settings import ColumnMapping, MLPSettings

COLUMNS = ColumnMapping(target="churn", categorical=["plan"], numeric=["usage", "tickets"])


def _table(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "plan": rng.choice(["a", "b", None], n),
            "usage": rng.normal(size=n),
            "tickets": rng.poisson(1, n).astype(float),
        }
    )
    X.loc[rng.random(n) < 0.05, "usage"] = np.nan
    logit = -2 - 1.5 * X["usage"].fillna(0) + 0.8 * X["tickets"] + (X["plan"] == "a")
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int))
    return X, y


@pytest.mark.parametrize("name", ["lr", "lgbm", "mlp"])
@pytest.mark.parametrize("imbalance", ["none", "class_weight", "smote"])
def test_every_model_and_method_learns_the_signal(name: str, imbalance: str) -> None:
    X, y = _table()
    model = build_model(
        name,
        COLUMNS,
        seed=0,
        params={"n_estimators": 100} if name == "lgbm" else None,
        imbalance=imbalance,
        mlp=MLPSettings(epochs=20),
    )
    model.fit(X.iloc[:400], y.iloc[:400])
    p = model.predict_proba(X.iloc[400:])[:, 1]
    assert p.shape == (200,) and np.all((p >= 0) & (p <= 1))
    assert roc_auc_score(y.iloc[400:], p) > 0.7


def test_smote_resamples_in_fit_only() -> None:
    X, y = _table()
    model = build_model("lr", COLUMNS, seed=0, imbalance="smote")
    model.fit(X, y)
    fitted_on = model.named_steps["smote"].fit_resample(
        model.named_steps["preprocess"].transform(X), y
    )[1]
    assert fitted_on.mean() == pytest.approx(0.5)  # training data balanced by SMOTE ...
    assert len(model.predict_proba(X)) == len(X)  # ... predictions for every real row only


def test_class_weight_raises_predicted_churn() -> None:
    X, y = _table()
    plain = build_model("lr", COLUMNS, seed=0).fit(X, y).predict_proba(X)[:, 1]
    weighted = build_model("lr", COLUMNS, seed=0, imbalance="class_weight").fit(X, y)
    assert weighted.predict_proba(X)[:, 1].mean() > plain.mean() + 0.05


def test_unknown_imbalance_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown imbalance method"):
        imbalance_steps("undersample", 0)


def test_mlp_is_deterministic_for_a_seed() -> None:
    X = np.random.default_rng(1).normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    a = TorchMLPClassifier(epochs=5, random_state=3).fit(X, y).predict_proba(X)
    b = TorchMLPClassifier(epochs=5, random_state=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
