"""A mixture-of-experts FraudNet: a gating network routes each payment to its top-k experts.

Written by hand to teach the mechanism (the same one as in sparse transformer layers, e.g.
Switch Transformer, Fedus et al. 2021; Shazeer et al. 2017), at fraud-model size:

- a **gate** (one linear layer over the standardised features) gives each row a softmax over
  ``n_experts``; only the ``top_k`` largest are kept and renormalised;
- each **expert** is a small MLP (``n_features → hidden → hidden/2``); a row is computed only by
  the experts it is routed to (sparse dispatch: rows are gathered per expert, the outputs
  scattered back weighted by the gate), then a shared linear **head** gives the logit;
- a **load-balancing term** ``n_experts · Σ_i f_i · P_i`` (``f_i`` the share of routed slots that
  went to expert ``i``, ``P_i`` its mean gate probability) is 1 when routing is uniform and grows
  when a few experts take everything. The forward pass leaves it in ``auxiliary_loss``;
  :func:`level4_fraud.models.fraudnet.fit` adds it to the loss, so the model trains with the same
  ``train_torch_model`` (its one ``fit()``) as the dense FraudNet.

:func:`compare_with_dense` trains it and a dense FraudNet with the same number of parameters on
the same rows and reports AP, rows/s and how the gate uses the experts.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from level4_fraud.config import TorchConfig
from level4_fraud.models.fraudnet import FraudNet, predict_proba, train_torch_model


class MixtureOfExpertsNet(nn.Module):
    """FraudNet variant with a gating network over ``n_experts`` MLP experts (top-k routing).

    Args:
        n_features: input width.
        n_experts: number of experts.
        top_k: experts evaluated per row.
        hidden: first hidden width of each expert (the second is ``hidden // 2``).
        balance_weight: weight of the load-balancing term in the training loss.
    """

    def __init__(
        self,
        n_features: int,
        n_experts: int = 4,
        top_k: int = 2,
        hidden: int = 64,
        balance_weight: float = 0.01,
    ) -> None:
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k must lie in 1..n_experts ({n_experts}), got {top_k}")
        self.n_features, self.n_experts, self.top_k = n_features, n_experts, top_k
        self.balance_weight = balance_weight
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.gate = nn.Linear(n_features, n_experts)
        self.out_width = hidden // 2
        self.experts = nn.ModuleList(
            nn.Sequential(
                nn.Linear(n_features, hidden),
                nn.ReLU(),
                nn.Linear(hidden, self.out_width),
                nn.ReLU(),
            )
            for _ in range(n_experts)
        )
        self.head = nn.Linear(self.out_width, 1)
        self.auxiliary_loss: torch.Tensor | None = None
        self.last_routing: torch.Tensor | None = None  # (batch, top_k) expert indices

    set_scaler = FraudNet.set_scaler

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape ``(batch,)``; sets ``auxiliary_loss`` and ``last_routing``."""
        z = (x - self.mean) / self.std
        probs = torch.softmax(self.gate(z), dim=-1)
        weight, chosen = probs.topk(self.top_k, dim=-1)
        weight = weight / weight.sum(dim=-1, keepdim=True)
        out = z.new_zeros(len(z), self.out_width)
        for e, expert in enumerate(self.experts):
            rows, slot = (chosen == e).nonzero(as_tuple=True)
            if len(rows):
                out.index_add_(0, rows, weight[rows, slot, None] * expert(z[rows]))
        # Switch-style balance: routed-slot share times mean gate probability, per expert.
        slot_share = torch.bincount(chosen.reshape(-1), minlength=self.n_experts).float()
        slot_share = slot_share / chosen.numel()
        balance = self.n_experts * (slot_share * probs.mean(dim=0)).sum()
        self.auxiliary_loss = self.balance_weight * balance if self.training else None
        self.last_routing = chosen.detach()
        return self.head(out).squeeze(-1)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def dense_hidden_for(n_features: int, target_params: int) -> tuple[int, int]:
    """FraudNet hidden sizes ``(w, w // 2)`` whose parameter count is closest to ``target``."""

    def params(w: int) -> int:
        return count_parameters(FraudNet(n_features, (w, w // 2)))

    best = min(range(4, 1024), key=lambda w: abs(params(w) - target_params))
    return best, best // 2


@torch.no_grad()
def expert_utilisation(model: MixtureOfExpertsNet, X: np.ndarray) -> list[float]:
    """Share of routed slots each expert receives on ``X`` (sums to 1; uniform is 1/n)."""
    model.eval()
    counts = torch.zeros(model.n_experts)
    for i in range(0, len(X), 65_536):
        model(torch.from_numpy(np.ascontiguousarray(X[i : i + 65_536], dtype=np.float32)))
        assert model.last_routing is not None
        counts += torch.bincount(model.last_routing.reshape(-1), minlength=model.n_experts)
    return (counts / counts.sum()).tolist()


def rows_per_second(
    model: nn.Module, X: np.ndarray, batch: int = 4096, seconds: float = 1.0
) -> float:
    """Scoring throughput on ``batch``-row batches, one thread (engines compared, not cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        X = np.ascontiguousarray(X[:batch], dtype=np.float32)
        predict_proba(model, X)  # warm-up
        rows, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            predict_proba(model, X)
            rows += len(X)
        return rows / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)


def compare_with_dense(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    config: TorchConfig,
    n_experts: int = 4,
    top_k: int = 2,
    hidden: int = 64,
    seconds: float = 1.0,
) -> dict[str, Any]:
    """Train a mixture of experts and a dense FraudNet of equal size; compare AP, speed, routing."""
    from sklearn.metrics import average_precision_score

    torch.manual_seed(config.seed)
    moe = MixtureOfExpertsNet(X_train.shape[1], n_experts, top_k, hidden)
    moe = train_torch_model(X_train, y_train, config, model=moe).cpu().eval()
    dense_hidden = dense_hidden_for(X_train.shape[1], count_parameters(moe))
    dense = train_torch_model(
        X_train, y_train, config.model_copy(update={"hidden": dense_hidden})
    ).cpu()
    per_expert = count_parameters(moe.experts[0])
    return {
        "moe_ap": float(average_precision_score(y_test, predict_proba(moe, X_test))),
        "dense_ap": float(average_precision_score(y_test, predict_proba(dense, X_test))),
        "moe_rows_per_s": rows_per_second(moe, X_test, seconds=seconds),
        "dense_rows_per_s": rows_per_second(dense, X_test, seconds=seconds),
        "moe_params": count_parameters(moe),
        "moe_active_params_per_row": count_parameters(moe) - (n_experts - top_k) * per_expert,
        "dense_params": count_parameters(dense),
        "dense_hidden": list(dense_hidden),
        "expert_utilisation": expert_utilisation(moe, X_test),
        "n_experts": n_experts,
        "top_k": top_k,
    }
