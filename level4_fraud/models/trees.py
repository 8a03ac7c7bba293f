"""The gradient-boosted tree baseline (LightGBM)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from level4_fraud.config import LightGBMConfig
from level4_fraud.data.features import as_matrix


def train_lightgbm(
    X: np.ndarray | pd.DataFrame, y: np.ndarray, config: LightGBMConfig | None = None
) -> Any:
    """A gradient-boosted tree baseline (``lightgbm.LGBMClassifier``)."""
    import lightgbm as lgb

    config = config or LightGBMConfig()
    model = lgb.LGBMClassifier(
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        num_leaves=config.num_leaves,
        min_child_samples=config.min_child_samples,
        subsample=config.subsample,
        subsample_freq=1,
        colsample_bytree=config.colsample_bytree,
        random_state=config.seed,
        n_jobs=config.n_jobs,
        verbose=-1,
    )
    model.fit(as_matrix(X), np.asarray(y))
    return model
