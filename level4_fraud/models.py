"""The fraud models: a PyTorch feed-forward net, a LightGBM baseline, an isolation forest, and
their ensemble.

Interface (stable; level 4 part 2 builds distributed training, quantization, distillation and
LoRA on it):

- :func:`device_for` — ``cuda`` when ``torch.cuda.is_available()``, else ``cpu`` (or the one asked).
- :class:`FraudNet` — ``FraudNet(n_features, hidden=(128, 64), dropout=0.1)``; takes raw feature
  rows (it standardises them with buffers ``mean``/``std`` set by :meth:`FraudNet.set_scaler`)
  and returns one logit per row. Its hidden layers are plain ``nn.Linear`` modules in
  ``model.layers`` (an ``nn.Sequential``), so quantization and LoRA can find them.
- :class:`TorchConfig` — training knobs (epochs, batch size, learning rate, seed, device...).
- :func:`train_torch_model` ``(X, y, config) -> FraudNet`` — a plain loop (Adam, BCE with a
  positive-class weight), same code on CPU and GPU; the model comes back on the device it trained
  on, in eval mode. :func:`fit_epoch` is the loop's one epoch, reusable by a DDP wrapper.
- :func:`predict_proba` ``(model, X) -> np.ndarray`` — fraud probabilities, batched, no grad.
- :func:`train_lightgbm`, :func:`train_isolation_forest`, :class:`FraudEnsemble` — the baseline,
  the unsupervised detector and the weighted ensemble of the three (``predict_proba(frame)``).

``X`` is a float array (or a frame with the ``features.FEATURES`` columns), ``y`` 0/1 labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, Field
from torch import nn

from level4_fraud.features import FEATURES


def device_for(preferred: str | None = None) -> torch.device:
    """The device to train on: ``preferred`` if given, else CUDA when available, else CPU."""
    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_matrix(X: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Feature rows as a float32 array (a frame is reduced to ``FEATURES`` in order)."""
    if isinstance(X, pd.DataFrame):
        X = X[FEATURES].to_numpy()
    return np.ascontiguousarray(X, dtype=np.float32)


class FraudNet(nn.Module):
    """Feed-forward fraud classifier over standardised features; outputs logits.

    Args:
        n_features: input width.
        hidden: sizes of the hidden layers.
        dropout: dropout after each hidden layer.
    """

    def __init__(
        self, n_features: int, hidden: Sequence[int] = (128, 64), dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.hidden = tuple(hidden)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def set_scaler(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Store the training data's feature means and standard deviations."""
        std = np.where(np.asarray(std) > 1e-8, std, 1.0)
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape ``(batch,)``, for raw feature rows ``x`` (``(batch, n_features)``)."""
        return self.layers((x - self.mean) / self.std).squeeze(-1)


class TorchConfig(BaseModel):
    """Training knobs of :class:`FraudNet`."""

    hidden: tuple[int, ...] = (128, 64)
    dropout: float = Field(0.1, ge=0, lt=1)
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(2048, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    pos_weight: float | None = Field(None, description="None: sqrt(negatives / positives)")
    seed: int = 0
    device: str | None = None
    num_threads: int | None = Field(
        None, ge=1, description="CPU threads for torch (None: leave torch's setting)"
    )


def _loss_fn(y: np.ndarray, config: TorchConfig, device: torch.device) -> nn.Module:
    positives = max(float(y.sum()), 1.0)
    weight = config.pos_weight or float(np.sqrt((len(y) - positives) / positives))
    return nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight, device=device))


def fit_epoch(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    device: torch.device,
) -> float:
    """One pass over ``loader``; returns the mean training loss."""
    model.train()
    total, seen = 0.0, 0
    for xb, yb in loader:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        # A mixture of experts adds its load-balancing term (set by its forward pass).
        auxiliary = getattr(getattr(model, "module", model), "auxiliary_loss", None)
        if auxiliary is not None:
            loss = loss + auxiliary
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(xb)
        seen += len(xb)
    return total / max(seen, 1)


def build_model(X: np.ndarray, config: TorchConfig) -> FraudNet:
    """A fresh :class:`FraudNet` with its scaler fitted on ``X`` (seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)
    model = FraudNet(X.shape[1], config.hidden, config.dropout)
    model.set_scaler(X.mean(axis=0), X.std(axis=0))
    return model


def train_torch_model(
    X: np.ndarray | pd.DataFrame,
    y: np.ndarray | pd.Series,
    config: TorchConfig | dict[str, Any] | None = None,
    model: nn.Module | None = None,
) -> FraudNet:
    """Train a :class:`FraudNet` with the same code on CPU or GPU.

    Args:
        X: feature rows.
        y: 0/1 fraud labels.
        config: a :class:`TorchConfig` (or its fields as a dict); defaults when ``None``.
        model: another untrained logit model with ``set_scaler`` (e.g. a mixture of experts) to
            train with the same loop instead of a fresh :class:`FraudNet`.

    Returns:
        The trained model in eval mode, on the device it trained on.
    """
    config = config if isinstance(config, TorchConfig) else TorchConfig(**(config or {}))
    X = as_matrix(X)
    y = np.asarray(y, dtype=np.float32)
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"need as many labels as rows and at least one row: {len(X)} vs {len(y)}")
    device = device_for(config.device)
    if config.num_threads and device.type == "cpu":
        torch.set_num_threads(config.num_threads)
    if model is None:
        model = build_model(X, config)
    else:
        model.set_scaler(X.mean(axis=0), X.std(axis=0))
    model = model.to(device)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        generator=generator,
        pin_memory=device.type == "cuda",
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = _loss_fn(y, config, device)
    for _ in range(config.epochs):
        fit_epoch(model, loader, optimizer, loss_fn, device)
    return model.eval()


@torch.no_grad()
def predict_proba(
    model: nn.Module, X: np.ndarray | pd.DataFrame, batch_size: int = 65_536
) -> np.ndarray:
    """Fraud probabilities of ``X`` under a torch model that outputs logits."""
    model.eval()
    X = as_matrix(X)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    out = [
        torch.sigmoid(model(torch.from_numpy(X[i : i + batch_size]).to(device))).float().cpu()
        for i in range(0, len(X), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.empty(0, dtype=np.float32)


# -- the baseline and the unsupervised detector --------------------------------------------------
class LightGBMConfig(BaseModel):
    """LightGBM baseline knobs."""

    n_estimators: int = 200
    learning_rate: float = 0.08
    num_leaves: int = 31
    min_child_samples: int = 50
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    seed: int = 0
    n_jobs: int = Field(1, ge=1, description="threads; >1 crawls on a busy 2-core machine")


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


def behaviour_matrix(X: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Features relative to the customer's own recent history, the anomaly detector's input.

    A population-wide change (everyone spends 30 % more) barely moves these, because each
    customer's 7-day window follows within days; a card used unlike its own past does. Columns:
    log amount vs the 7-day mean, today's count above the 7-day daily rate, night flag, delayed
    terminal risk over 7 and 30 days. (30-day references lag a seasonal ramp for a month and
    would mistake it for anomalies.)
    """
    X = as_matrix(X)
    col = {name: X[:, i] for i, name in enumerate(FEATURES)}
    return np.column_stack(
        [
            np.log1p(col["tx_amount"]) - np.log1p(col["customer_avg_amount_7d"]),
            col["customer_nb_tx_1d"] - col["customer_nb_tx_7d"] / 7,
            col["tx_during_night"],
            col["terminal_risk_7d"],
            col["terminal_risk_30d"],
        ]
    ).astype(np.float32)


@dataclass
class AnomalyDetector:
    """Isolation forest on :func:`behaviour_matrix`, scored as a percentile of training rows.

    The percentile mapping makes the score comparable across retrains and usable in the
    ensemble and by the drift monitor (share of traffic above the reference's 99.5th percentile).
    """

    forest: Any
    reference: np.ndarray = field(repr=False)

    def raw_score(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Higher is more anomalous."""
        return -self.forest.score_samples(behaviour_matrix(X))

    def predict_proba(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """The anomaly score's percentile among the training rows, in [0, 1]."""
        rank = np.searchsorted(self.reference, self.raw_score(X), side="right")
        return rank / len(self.reference)


def train_isolation_forest(
    X: np.ndarray | pd.DataFrame, n_estimators: int = 100, max_samples: int = 4096, seed: int = 0
) -> AnomalyDetector:
    """An unsupervised detector fitted on (mostly legitimate) traffic, no labels used."""
    from sklearn.ensemble import IsolationForest

    X = as_matrix(X)
    forest = IsolationForest(
        n_estimators=n_estimators, max_samples=min(max_samples, len(X)), random_state=seed, n_jobs=1
    ).fit(behaviour_matrix(X))
    detector = AnomalyDetector(forest, np.empty(0))
    sample = X if len(X) <= 50_000 else X[np.random.default_rng(seed).choice(len(X), 50_000, False)]
    detector.reference = np.sort(detector.raw_score(sample))
    return detector


@dataclass
class FraudEnsemble:
    """A weighted average of member probabilities (the anomaly score enters as its percentile).

    Attributes:
        members: name → model (``FraudNet``, LightGBM classifier or :class:`AnomalyDetector`).
        weights: name → weight; only members with a weight take part.
    """

    members: dict[str, Any]
    weights: dict[str, float]

    def member_scores(self, X: np.ndarray | pd.DataFrame) -> dict[str, np.ndarray]:
        """Each member's probability-like score for ``X``."""
        X = as_matrix(X)
        return {name: score_member(model, X) for name, model in self.members.items()}

    def combine(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """The weighted average of already computed member scores."""
        total = sum(self.weights.get(n, 0.0) for n in scores)
        if total <= 0:
            raise ValueError("ensemble weights must sum to a positive number")
        return sum(self.weights.get(n, 0.0) * s for n, s in scores.items()) / total

    def predict_proba(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """The ensemble's fraud score in [0, 1] (members with weight 0 are not evaluated)."""
        X = as_matrix(X)
        active = {n: m for n, m in self.members.items() if self.weights.get(n, 0.0) > 0}
        return self.combine({name: score_member(model, X) for name, model in active.items()})


def score_member(model: Any, X: np.ndarray) -> np.ndarray:
    """A probability-like score from any member type."""
    if isinstance(model, nn.Module):
        return predict_proba(model, X)
    if isinstance(model, (AnomalyDetector, FraudEnsemble)):
        return model.predict_proba(X)
    return model.predict_proba(X)[:, 1]  # a scikit-learn style classifier (LightGBM)
