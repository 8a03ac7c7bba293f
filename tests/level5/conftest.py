"""Level-5 test setup: one torch thread (tiny models; extra threads only contend on 2 cores)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    torch.set_num_threads(1)
