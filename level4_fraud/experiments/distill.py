"""Knowledge distillation: a small student learns the teacher ensemble's soft scores.

The teacher is part 1's :class:`~level4_fraud.models.ensemble.FraudEnsemble` (FraudNet + LightGBM +
isolation forest): accurate but slow to score, because every transaction runs three models. The
student is a :class:`~level4_fraud.models.fraudnet.FraudNet` with one small hidden layer, trained
by the
same training loop (:func:`~level4_fraud.models.fraudnet.fit`) on a blended target::

    target = (1 - hard_weight) * teacher_score + hard_weight * label

Binary cross-entropy is linear in its target, so this is exactly the usual distillation loss
``(1 - a) * BCE(student, teacher) + a * BCE(student, label)`` in one call. The soft scores carry
what the teacher knows about *how* suspicious each legitimate-looking row is, which is what lets a
model with a few hundred weights come close to the ensemble.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from level4_fraud.config import TorchConfig
from level4_fraud.data.features import as_matrix
from level4_fraud.models.fraudnet import FraudNet, build_model, device_for, fit


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of a torch model (buffers such as the scaler excluded)."""
    return sum(p.numel() for p in model.parameters())


def lightgbm_parameters(model: Any) -> int:
    """Stored numbers of a LightGBM model: 3 per split (feature, threshold, gain), 1 per leaf.

    Used to put the ensemble's size in the same unit as a network's parameters.
    """
    frame = model.booster_.trees_to_dataframe()
    splits = int(frame["split_feature"].notna().sum())
    leaves = int(frame["split_feature"].isna().sum())
    return 3 * splits + leaves


def calibrate_teacher(teacher_scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The teacher's scores mapped to fraud probabilities by isotonic regression on ``y``.

    An ensemble's score is a weighted average of differently scaled members (a percentile from
    the isolation forest, probabilities from the others): a good *ranking* but a poor
    *probability*. Isotonic regression keeps the ranking and fixes the scale, so the student
    imitates what the teacher knows rather than the members' offsets.
    """
    from sklearn.isotonic import IsotonicRegression

    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    return isotonic.fit(teacher_scores, y).predict(teacher_scores)


def train_student(
    X: np.ndarray,
    teacher_scores: np.ndarray,
    y: np.ndarray,
    hidden: tuple[int, ...] = (16,),
    hard_weight: float = 0.2,
    epochs: int = 8,
    batch_size: int = 512,
    lr: float = 5e-3,
    seed: int = 0,
    device: str | None = None,
) -> FraudNet:
    """Train a small :class:`FraudNet` on the blended soft/hard target (with :func:`fit`, on
    ``device``: ``None`` means CUDA when present); returns it on CPU in eval mode."""
    if not 0.0 <= hard_weight <= 1.0:
        raise ValueError(f"hard_weight must be in [0, 1], got {hard_weight}")
    X = as_matrix(X)
    target = (1 - hard_weight) * np.clip(teacher_scores, 0.0, 1.0) + hard_weight * np.asarray(y)
    config = TorchConfig(
        hidden=hidden,
        dropout=0.0,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=0.0,
        seed=seed,
        device=device,
    )
    device_ = device_for(device)
    student = build_model(X, config).to(device_)
    fit(student, X, target, config, device=device_, loss_fn=nn.BCEWithLogitsLoss())
    return student.cpu().eval()
