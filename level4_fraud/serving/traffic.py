"""The champion/challenger traffic split the scoring tiers apply (the A/B test's first step).

A customer's arm is a stable hash of ``salt:customer_id`` (SHA-256, not Python's per-process
``hash``), so every replica agrees and a customer never flips between models. Only the standard
library and numpy: the slim ONNX image ships this file. The experiment design around it (power,
delayed labels, the decision) is in :mod:`level4_fraud.experiments.abtest`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

Arm = Literal["champion", "challenger"]


@dataclass(frozen=True)
class TrafficSplit:
    """Stable assignment of customers to the champion or the challenger.

    Args:
        challenger_share: fraction of customers routed to the challenger (0..1).
        salt: experiment name; a new experiment reshuffles customers, the same one never does.
    """

    challenger_share: float = 0.5
    salt: str = "ab-1"

    def __post_init__(self) -> None:
        if not 0.0 <= self.challenger_share <= 1.0:
            raise ValueError(f"challenger_share must be in [0, 1], got {self.challenger_share}")

    def bucket(self, customer_id: int | str) -> float:
        """A uniform number in [0, 1) fixed by (salt, customer): its place in the split."""
        digest = hashlib.sha256(f"{self.salt}:{customer_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def arm(self, customer_id: int | str) -> Arm:
        """The arm serving this customer."""
        return "challenger" if self.bucket(customer_id) < self.challenger_share else "champion"

    def arms(self, customer_ids: Iterable[int | str]) -> np.ndarray:
        """Vectorised :meth:`arm`: a boolean array, True where the challenger serves."""
        return np.array([self.bucket(c) < self.challenger_share for c in customer_ids], dtype=bool)
