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
    # Float summation order differs; Adam magnifies it a little. Measured over seeds 3, 0, 1 (the
    # test runs seed 3): 4.5e-8 to 4.8e-7 on the weights, 1.2e-7 at most on the scores.
    assert diff < 1e-5
    # ... and training moved the weights far more than that (the comparison is not vacuous):
    # measured 0.152-0.158.
    torch.manual_seed(CONFIG.seed)
    fresh = FraudNet(X.shape[1], CONFIG.hidden, CONFIG.dropout)
    moved = float((flat_parameters(reference) - flat_parameters(fresh)).abs().max())
    assert moved > 0.1 and moved > 1000 * max(diff, 1e-6)
    np.testing.assert_allclose(predict_proba(reference, X), predict_proba(multi, X), atol=2e-6)
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


REPLICA_SCRIPT = """
import os
import torch, torch.distributed as dist
from level4_fraud.training.distributed import replica_max_abs_diff
dist.init_process_group("gloo")
rank = dist.get_rank()
model = torch.nn.Linear(3, 1)
with torch.no_grad():
    for p in model.parameters():
        p.fill_(1.0 + {offset} * rank)
# one write per line: under PYTHONUNBUFFERED print() writes the text and the newline apart, and
# the two ranks' lines interleaved; a single small write to a pipe is atomic
os.write(1, f"rank {{rank}} diff {{replica_max_abs_diff(model)}}\\n".encode())
dist.destroy_process_group()
"""


@pytest.mark.parametrize("offset", [0.0, 0.25])
def test_replica_check_on_two_gloo_processes(tmp_path: Path, offset: float) -> None:
    """The gather/compare code the NCCL path runs, on 2 gloo processes: 0 for equal replicas,
    the true difference for unequal ones (so the DDP test's 0.0 is not vacuous)."""
    import os
    import subprocess
    import sys

    script = tmp_path / "replicas.py"
    script.write_text(REPLICA_SCRIPT.format(offset=offset))
    root = str(Path(__file__).resolve().parents[2])
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         str(script)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    diffs = sorted(line for line in result.stdout.splitlines() if line.startswith("rank"))
    assert diffs == [f"rank 0 diff {offset}", f"rank 1 diff {offset}"]


def test_device_choice_is_a_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    from level4_fraud.training.distributed import process_device

    assert process_device(CONFIG.model_copy(update={"device": "cpu"}), 1).type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert process_device(CONFIG.model_copy(update={"device": None}), 1) == torch.device("cuda", 1)
    assert process_device(CONFIG.model_copy(update={"device": "cpu"}), 1).type == "cpu"


def test_mixed_precision_is_cuda_only() -> None:
    from level4_fraud.models.fraudnet import build_model, fit, weighted_bce

    X, y = _data(300)
    model = build_model(X, CONFIG)
    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA only"):
        fit(model, X, y, CONFIG, device=cpu, loss_fn=weighted_bce(y, CONFIG, cpu), amp=True)
    single = train_distributed(X, y, CONFIG.model_copy(update={"batch_size": 100}))
    assert single["amp"] is False and single["device"] == "cpu" and single["backend"] == "none"


def test_gpu_check_compares_devices_on_cpu_and_refuses_without_cuda(capsys) -> None:
    from level4_fraud.training.gpu_check import compare_devices, main

    X, y = _data(2000)
    result = compare_devices(X[:1500], y[:1500], X[1500:], y[1500:], CONFIG, devices=("cpu",))
    assert result["cpu"]["rows_per_s"] > 0 and 0 < result["cpu"]["ap"] <= 1
    if not torch.cuda.is_available():
        assert main() == 2
        assert "no CUDA" in capsys.readouterr().err


@pytest.mark.gpu
def test_gpu_mixed_precision_and_larger_batch() -> None:
    X, y = _data()
    result = train_distributed(X, y, CONFIG.model_copy(update={"device": None}))
    assert result["device"].startswith("cuda") and result["amp"] is True
    assert result["global_batch"] == 4 * CONFIG.batch_size
    assert np.isfinite(result["final_loss"])


@pytest.mark.gpu
def test_gpu_ddp_through_torchrun_uses_nccl(tmp_path: Path) -> None:
    """torchrun --nproc-per-node=1 on CUDA: the real DDP path with NCCL and bf16."""
    X, y = _data()
    report = launch(X, y, CONFIG.model_copy(update={"device": "cuda"}), nproc=1, out_dir=tmp_path)
    assert report["backend"] == "nccl" and report["device"] == "cuda:0" and report["amp"] is True
    assert report["replica_max_abs_diff"] == 0.0
    model = FraudNet(X.shape[1], CONFIG.hidden, CONFIG.dropout)
    model.load_state_dict(torch.load(report["state_dict_path"]))
    assert np.isfinite(predict_proba(model, X)).all()
