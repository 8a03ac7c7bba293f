import random

import numpy as np
import pytest

from ml_common.seeding import seed_everything


def draw(seed):
    rng = seed_everything(seed)
    import torch

    return random.random(), np.random.rand(), rng.random(), torch.rand(1).item()  # noqa: NPY002


def test_same_seed_same_numbers_everywhere():
    assert draw(42) == draw(42)


def test_different_seed_different_numbers():
    first, second = draw(1), draw(2)
    assert all(a != b for a, b in zip(first, second, strict=True))


def test_seed_out_of_range():
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)
