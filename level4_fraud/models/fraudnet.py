"""FraudNet: the PyTorch feed-forward fraud classifier and the ONE loop that trains it.

- :func:`device_for` — ``cuda`` when ``torch.cuda.is_available()``, else ``cpu`` (or the one asked:
  every training path passes ``TorchConfig.device`` or its own ``device`` parameter through here).
- :class:`FraudNet` — ``FraudNet(n_features, hidden=(128, 64), dropout=0.1)``; takes raw feature
  rows (it standardises them with buffers ``mean``/``std`` set by :meth:`FraudNet.set_scaler`)
  and returns one logit per row. Its hidden layers are plain ``nn.Linear`` modules in
  ``model.layers`` (an ``nn.Sequential``), so quantization and LoRA can find them.
- :func:`fit` — the training loop every path uses: single-process training
  (:func:`train_torch_model`), DDP (:mod:`level4_fraud.training.distributed`, with a
  ``DistributedSampler``), distillation and LoRA / fine-tuning (:mod:`level4_fraud.experiments`).
  ``pin_memory`` and bfloat16 autocast only on CUDA.
- :func:`predict_proba` ``(model, X) -> np.ndarray`` — fraud probabilities, batched, no grad.

``X`` is a float array (or a frame with the ``features.FEATURES`` columns), ``y`` 0/1 labels.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from level4_fraud.config import TorchConfig
from level4_fraud.data.features import as_matrix

__all__ = ["FraudNet", "TorchConfig", "build_model", "device_for", "fit", "predict_proba"]


def device_for(preferred: str | None = None) -> torch.device:
    """The device to train on: ``preferred`` if given, else CUDA when available, else CPU."""
    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


def build_model(X: np.ndarray, config: TorchConfig) -> FraudNet:
    """A fresh :class:`FraudNet` with its scaler fitted on ``X`` (seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)
    model = FraudNet(X.shape[1], config.hidden, config.dropout)
    model.set_scaler(X.mean(axis=0), X.std(axis=0))
    return model


def weighted_bce(y: np.ndarray, config: TorchConfig, device: torch.device) -> nn.Module:
    """BCE on logits with a positive-class weight (``config.pos_weight`` or sqrt(neg / pos))."""
    positives = max(float(y.sum()), 1.0)
    weight = config.pos_weight or float(np.sqrt((len(y) - positives) / positives))
    return nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight, device=device))


def fit(
    model: nn.Module,
    X: np.ndarray,
    target: np.ndarray,
    config: TorchConfig,
    *,
    device: torch.device,
    loss_fn: nn.Module,
    parameters: Iterable[nn.Parameter] | None = None,
    sampler: torch.utils.data.Sampler | None = None,
    batch_size: int | None = None,
    amp: bool = False,
) -> list[float]:
    """Train ``model`` (already on ``device``) for ``config.epochs``; returns each epoch's loss.

    Args:
        model: the module to train (a :class:`FraudNet`, a LoRA-wrapped one, or a DDP wrapper).
        X: float32 feature rows.
        target: what the loss compares the logits with (labels, or blended soft scores).
        config: epochs, learning rate, weight decay, batch size and the shuffling seed.
        device: where batches go; ``pin_memory`` only when it is CUDA.
        loss_fn: the loss on ``(logits, target)``.
        parameters: what Adam updates (default: every parameter; LoRA passes the adapters).
        sampler: a ``DistributedSampler`` for DDP (each rank its share; ``set_epoch`` per
            epoch); without one, a seeded shuffle.
        batch_size: rows per step in this process (default ``config.batch_size``).
        amp: bfloat16 autocast of the forward pass and the loss; CUDA only.
    """
    if amp and device.type != "cuda":
        raise ValueError("bf16 autocast is used on CUDA only; on CPU train in float32")
    dataset = torch.utils.data.TensorDataset(
        torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)),
        torch.from_numpy(np.asarray(target, dtype=np.float32)),
    )
    cuda = device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size or config.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        drop_last=sampler is not None,
        generator=torch.Generator().manual_seed(config.seed) if sampler is None else None,
        pin_memory=cuda,
    )
    params = list(parameters) if parameters is not None else list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if amp
        else contextlib.nullcontext()
    )
    losses = []
    model.train()
    for epoch in range(config.epochs):
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        total, seen = 0.0, 0
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=cuda), yb.to(device, non_blocking=cuda)
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(model(xb).float(), yb)
            # A mixture of experts adds its load-balancing term (set by its forward pass).
            auxiliary = getattr(getattr(model, "module", model), "auxiliary_loss", None)
            if auxiliary is not None:
                loss = loss + auxiliary
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(xb)
            seen += len(xb)
        losses.append(total / max(seen, 1))
    model.eval()
    return losses


def train_torch_model(
    X: np.ndarray | pd.DataFrame,
    y: np.ndarray | pd.Series,
    config: TorchConfig | dict[str, Any] | None = None,
    model: nn.Module | None = None,
) -> FraudNet:
    """Train a :class:`FraudNet` with :func:`fit`, the same code on CPU or GPU.

    Args:
        X: feature rows.
        y: 0/1 fraud labels.
        config: a :class:`TorchConfig` (or its fields as a dict); defaults when ``None``.
            ``config.device`` picks the device (``None``: CUDA when present).
        model: another untrained logit model with ``set_scaler`` (e.g. the mixture of experts)
            to train with the same :func:`fit` instead of a fresh :class:`FraudNet`.

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
    fit(model, X, y, config, device=device, loss_fn=weighted_bce(y, config, device))
    return model


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
