"""Data-parallel training of :class:`~level4_fraud.models.fraudnet.FraudNet` with DDP (torchrun).

One file, two roles:

- **worker** (``python -m torch.distributed.run ... -m level4_fraud.training.distributed
  --data D --out O``):
  every process loads the same arrays, builds the same model (same seed, same scaler), wraps it in
  ``DistributedDataParallel`` and runs the *same* epoch function as single-process training
  (:func:`level4_fraud.models.fraudnet.fit`). Backend: NCCL when CUDA is present, gloo on CPU.
- **launcher** (:func:`launch`): writes the data once, starts ``torchrun --standalone`` with N
  processes and reads back what rank 0 reports.

Why the result matches single-process training: a :class:`DistributedSampler` deals rank ``r``
the positions ``r, r + N, r + 2N ...`` of one seeded permutation, and each rank takes
``batch_size / N`` rows per step. So the N ranks' mini-batches together are exactly the
single-process mini-batch of ``batch_size`` rows, and DDP's gradient all-reduce (a mean) gives
the same gradient. With ``world_size == 1`` the very same code path is the single-process run, so
the comparison isolates DDP itself (dropout is switched off for that test because each rank draws
its own dropout masks).

On a GPU the same loop runs under ``torch.autocast`` (bfloat16, no loss scaling needed) with a
larger batch (``amp_batch_multiplier``). Across nodes the only change is the rendezvous: see
``k8s/train-distributed.yaml`` (torchrun ``--rdzv-backend=c10d --rdzv-endpoint=<pod-0>:29400``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, TensorDataset

from level4_fraud.config import TorchConfig
from level4_fraud.models.fraudnet import FraudNet, build_model, device_for, fit, weighted_bce


def _world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) without it."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("LOCAL_RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
    )


def flat_parameters(model: torch.nn.Module) -> torch.Tensor:
    """All parameters of ``model`` as one flat float tensor, on the parameters' own device."""
    return torch.cat([p.detach().float().reshape(-1) for p in model.parameters()])


def replica_max_abs_diff(model: torch.nn.Module) -> float:
    """Largest difference between this rank's parameters and any rank's (0.0 when alone).

    The gather runs on the tensors' own device (CUDA tensors for NCCL, CPU tensors for gloo):
    the same code on both backends; only the scalar result comes back to the host.
    """
    params = flat_parameters(model)
    if not dist.is_initialized():
        return 0.0
    gathered = [torch.empty_like(params) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, params)
    return max(float((g - params).abs().max()) for g in gathered)


def process_device(config: TorchConfig, local_rank: int) -> torch.device:
    """This process's device: ``cuda:<local_rank>`` when CUDA is chosen, else the CPU."""
    device = device_for(config.device)
    if device.type == "cuda":
        return torch.device("cuda", local_rank)
    return device


def train_distributed(
    X: np.ndarray,
    y: np.ndarray,
    config: TorchConfig,
    amp: bool | None = None,
    amp_batch_multiplier: int = 4,
) -> dict[str, Any]:
    """Train with DDP in the current process group (or alone when not launched by torchrun).

    Args:
        X: float32 feature rows, identical on every rank.
        y: 0/1 labels, identical on every rank.
        config: the model's training knobs; ``batch_size`` is the *global* batch;
            ``config.device`` picks the device (``None``: CUDA when present).
        amp: bfloat16 autocast; ``None`` means "when training on CUDA" (never on CPU).
        amp_batch_multiplier: global batch multiplier used with mixed precision.

    Returns:
        ``model`` (the unwrapped :class:`FraudNet`, eval mode, on CPU), ``throughput`` (training
        rows per second over all ranks), ``seconds``, ``replica_max_abs_diff`` (largest difference
        between any rank's parameters and this rank's after training), ``world_size``,
        ``backend``, ``device``, ``amp``, ``global_batch``.
    """
    rank, local_rank, world_size = _world()
    device = process_device(config, local_rank)
    cuda = device.type == "cuda"
    backend = "nccl" if cuda else "gloo"
    launched = world_size > 1 or "RANK" in os.environ
    if launched and not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if cuda:
        torch.cuda.set_device(device)
    amp = cuda if amp is None else amp
    global_batch = config.batch_size * (amp_batch_multiplier if amp else 1)
    if global_batch % world_size:
        raise ValueError(f"global batch {global_batch} must divide by world size {world_size}")

    model = build_model(X, config).to(device)  # same seed everywhere; DDP also broadcasts rank 0
    net: torch.nn.Module = (
        DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
        if dist.is_initialized()
        else model
    )
    sampler = DistributedSampler(
        TensorDataset(torch.from_numpy(X)),
        num_replicas=world_size,
        rank=rank,
        shuffle=True,
        seed=config.seed,
        drop_last=True,
    )
    per_rank_batch = global_batch // world_size
    if dist.is_initialized():
        dist.barrier()
    start = time.perf_counter()
    losses = fit(
        net,
        X,
        y,
        config,
        device=device,
        loss_fn=weighted_bce(y, config, device),
        sampler=sampler,
        batch_size=per_rank_batch,
        amp=amp,
    )
    rows = config.epochs * (len(sampler) // per_rank_batch) * per_rank_batch * world_size
    if cuda:
        torch.cuda.synchronize()
    if dist.is_initialized():
        dist.barrier()
    seconds = time.perf_counter() - start
    max_diff = replica_max_abs_diff(model)
    return {
        "model": model.cpu().eval(),
        "throughput": rows / seconds,
        "seconds": seconds,
        "replica_max_abs_diff": max_diff,
        "world_size": world_size,
        "backend": backend if launched else "none",
        "device": str(device),
        "amp": amp,
        "global_batch": global_batch,
        "final_loss": losses[-1],
    }


def save_data(path: Path, X: np.ndarray, y: np.ndarray) -> Path:
    """Write the training arrays every worker will load."""
    np.savez(path, X=np.ascontiguousarray(X, dtype=np.float32), y=np.asarray(y, dtype=np.float32))
    return path


def launch(
    X: np.ndarray,
    y: np.ndarray,
    config: TorchConfig,
    nproc: int,
    out_dir: Path,
    threads_per_process: int = 1,
    timeout_s: float = 900,
) -> dict[str, Any]:
    """Run :func:`train_distributed` under ``torchrun --standalone`` with ``nproc`` processes.

    Every process gets ``threads_per_process`` intra-op threads (torchrun's own default is 1), so
    1 vs 2 processes compare one core against two.

    Returns:
        Rank 0's report (without the model) plus ``state_dict_path`` of the trained weights.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ddp-") as tmp:
        data = save_data(Path(tmp) / "data.npz", X, y)
        report_path = out_dir / f"ddp_{nproc}proc.json"
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc}",
            "-m",
            "level4_fraud.training.distributed",
            "--data",
            str(data),
            "--out",
            str(out_dir),
            "--config",
            config.model_dump_json(),
        ]
        # ML_THREADS: ml_common sizes every native pool from it when the child imports it
        threads = str(threads_per_process)
        env = {**os.environ, "ML_THREADS": threads, "OMP_NUM_THREADS": threads}
        env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_s)
        if result.returncode != 0:
            raise RuntimeError(
                f"torchrun with {nproc} processes failed (exit {result.returncode}):\n"
                f"{result.stderr[-3000:]}"
            )
        return json.loads(report_path.read_text())


def _worker(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="DDP worker: run me with torchrun.")
    parser.add_argument("--data", type=Path, help="npz with X and y (default: fresh simulation)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the report and weights")
    parser.add_argument("--config", default="{}", help="TorchConfig as JSON")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--settings", default=None, help="level config.yaml for the data (default: packaged)"
    )
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when present)")
    args = parser.parse_args(argv)
    config = TorchConfig.model_validate_json(args.config)
    if args.epochs:
        config = config.model_copy(update={"epochs": args.epochs})
    if args.device:
        config = config.model_copy(update={"device": args.device})
    if args.data is not None:
        arrays = np.load(args.data)
        X, y = arrays["X"], arrays["y"]
    else:  # the Kubernetes Job: every pod simulates the same seeded data
        from level4_fraud.config import IndustrialSettings
        from level4_fraud.data.protocol import prepare_data

        splits = prepare_data(IndustrialSettings())
        X, y = splits.X_train, splits.y_train
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    result = train_distributed(X, y, config)
    if _world()[0] == 0:
        from ml_common.atomic import write_json
        from ml_common.paths import level_dir

        out = args.out or level_dir(4) / "distributed"
        out.mkdir(parents=True, exist_ok=True)
        model: FraudNet = result.pop("model")
        weights = out / f"ddp_{result['world_size']}proc.pt"
        torch.save(model.state_dict(), weights)
        write_json(
            out / f"ddp_{result['world_size']}proc.json",
            {**result, "state_dict_path": str(weights), "config": config.model_dump(mode="json")},
        )
        print(json.dumps({k: v for k, v in result.items() if k != "model"}))
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    _worker()
