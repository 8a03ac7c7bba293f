"""LoRA, written by hand in a few lines: low-rank adapters on a frozen network.

A frozen ``nn.Linear`` with weight ``W`` (out × in) gets two small trainable matrices ``A``
(r × in) and ``B`` (out × r); the layer computes ``W x + (alpha / r) · B A x``. ``B`` starts at
zero, so the adapted model starts as exactly the deployed one, and only ``r · (in + out)`` numbers
per layer are trained. After training, :func:`merge_lora` folds ``B A`` into ``W``: the served
model has the original shape and speed. (The ``peft`` library does the same for large models; this
module is short enough to read and is tested against a plain ``nn.Linear``.)
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """``base(x) + scale · B(A(x))`` with ``base`` frozen.

    Args:
        base: the layer to adapt (its parameters are frozen).
        rank: the adapters' inner width ``r``.
        alpha: scaling numerator; the update is multiplied by ``alpha / rank``.
    """

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float = 8.0) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        self.base = base
        for parameter in self.base.parameters():
            parameter.requires_grad_(False)
        self.rank = rank
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear initialises weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * (x @ self.lora_a.T @ self.lora_b.T)

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` computing the same function."""
        layer = nn.Linear(self.base.in_features, self.base.out_features)
        with torch.no_grad():
            layer.weight.copy_(self.base.weight + self.scale * self.lora_b @ self.lora_a)
            layer.bias.copy_(self.base.bias)
        return layer


def add_lora(model: nn.Module, rank: int = 4, alpha: float = 8.0) -> nn.Module:
    """A copy of ``model``: every ``nn.Linear`` wrapped in :class:`LoRALinear`, all else frozen."""
    adapted = copy.deepcopy(model)
    for parameter in adapted.parameters():
        parameter.requires_grad_(False)
    _wrap(adapted, rank, alpha)
    return adapted


def _wrap(module: nn.Module, rank: int, alpha: float) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, LoRALinear(child, rank, alpha))
        else:
            _wrap(child, rank, alpha)


def merge_lora(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every :class:`LoRALinear` replaced by its merged ``nn.Linear``."""
    merged = copy.deepcopy(model)

    def fold(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, LoRALinear):
                setattr(module, name, child.merged())
            else:
                fold(child)

    fold(merged)
    for parameter in merged.parameters():
        parameter.requires_grad_(True)
    return merged.eval()


def trainable_parameters(model: nn.Module) -> int:
    """How many numbers an optimizer would update."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
