"""DDP under torchrun: 2 CPU processes stay identical and match single-process training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from level4_fraud.config import TorchConfig
from level4_fraud.models.fraudnet import FraudNet, predict_proba
from level4_fraud.training.distributed import flat_parameters, launch, train_distributed


def _data(n: int = 6000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 15)).astype(np.float32)
    y = ((X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.7, size=n)) > 1.8).astype(np.float32)
    return X, y


CONFIG = TorchConfig(hidden=(32, 16), dropout=0.0, epochs=2, batch_size=256, lr=3e-3, seed=3)


def test_two_processes_match_single_process(tmp_path: Path) -> None:
    X, y = _data()
    single = train_distributed(X, y, CONFIG)  # same code, no process group: the reference
    assert single["world_size"] == 1 and single["backend"] == "none"
    report = launch(X, y, CONFIG, nproc=2, out_dir=tmp_path)
    assert report["world_size"] == 2 and report["backend"] == "gloo"
    # Gradients were all-reduced: both replicas end bit-identical.
    assert report["replica_max_abs_diff"] == 0.0
    multi = FraudNet(X.shape[1], CONFIG.hidden, CONFIG.dropout)
    multi.load_state_dict(torch.load(report["state_dict_path"]))
    reference = single["model"]
    diff = float((flat_parameters(reference) - flat_parameters(multi)).abs().max())
    assert diff < 1e-3  # float summation order differs; Adam magnifies it a little
    # ... and training moved the weights far more than that (the comparison is not vacuous).
    torch.manual_seed(CONFIG.seed)
    fresh = FraudNet(X.shape[1], CONFIG.hidden, CONFIG.dropout)
    moved = float((flat_parameters(reference) - flat_parameters(fresh)).abs().max())
    assert moved > 100 * max(diff, 1e-6)
    np.testing.assert_allclose(predict_proba(reference, X), predict_proba(multi, X), atol=1e-4)
    assert report["throughput"] > 0 and single["throughput"] > 0


def test_global_batch_must_split_evenly(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _data(200)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda **_: None)
    with pytest.raises(ValueError, match="must divide"):
        train_distributed(X, y, CONFIG.model_copy(update={"batch_size": 256}))


@pytest.mark.slow
def test_worker_failure_is_reported(tmp_path: Path) -> None:
    X, y = _data(100)
    with pytest.raises(RuntimeError, match="torchrun with 2 processes failed"):
        launch(X, y, CONFIG.model_copy(update={"batch_size": 255}), nproc=2, out_dir=tmp_path)


@pytest.mark.gpu
def test_gpu_mixed_precision_and_larger_batch() -> None:
    X, y = _data()
    result = train_distributed(X, y, CONFIG.model_copy(update={"device": None}))
    assert result["device"].startswith("cuda") and result["amp"] is True
    assert result["global_batch"] == 4 * CONFIG.batch_size
    assert np.isfinite(result["final_loss"])
