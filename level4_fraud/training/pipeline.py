"""Pipeline parallelism: a deeper FraudNet split into 2 stages on 2 processes, micro-batched.

``torch.distributed.pipelining`` runs stage 0 (standardisation and the first hidden blocks) in
process 0 and stage 1 (the remaining blocks and the logit) in process 1; each mini-batch is cut
into ``n_microbatches`` micro-batches that flow through the stages GPipe-style (all forwards,
then all backwards), activations and their gradients sent between processes over gloo (CPU) or
NCCL (GPU). Each process owns only its stage's parameters and its Adam state: that is the point
— a model too large for one device fits on several.

What must hold: the same network, initialised the same way and fed the same mini-batches, gives
the **same loss curve** as single-process training with :func:`level4_fraud.models.fraudnet.fit`
(mean loss per micro-batch, gradients averaged over micro-batches by the schedule's
``scale_grads``; dropout off so both runs compute the same function). :func:`compare` measures
that and the throughput of both.

Why it will not be faster here: the net has ~17k parameters; a micro-batch's forward through two
64-wide layers takes microseconds while each send/receive between processes costs a round trip
through gloo, and on a 2-core machine the two "devices" share cores. Pipelining pays when one
stage's compute per micro-batch is much larger than moving its activations (billions of
parameters, each stage on its own GPU) — not at fraud-model size.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from level4_fraud.config import TorchConfig
from level4_fraud.models.fraudnet import FraudNet, build_model, device_for, fit, weighted_bce

N_STAGES = 2


class _FirstStage(nn.Module):
    def __init__(self, net: FraudNet, cut: int) -> None:
        super().__init__()
        self.register_buffer("mean", net.mean.clone())
        self.register_buffer("std", net.std.clone())
        self.layers = nn.Sequential(*list(net.layers)[:cut])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers((x - self.mean) / self.std)


class _LastStage(nn.Module):
    def __init__(self, net: FraudNet, cut: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*list(net.layers)[cut:])

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h).squeeze(-1)


def split_stages(net: FraudNet) -> tuple[nn.Module, nn.Module]:
    """The two stages of ``net``: cut after the middle hidden block (Linear, ReLU, Dropout)."""
    blocks = len(net.hidden)
    cut = 3 * (blocks // 2)
    return _FirstStage(net, cut), _LastStage(net, cut)


def _batch_indices(n: int, config: TorchConfig) -> torch.utils.data.DataLoader:
    """Row indices batched exactly as :func:`fit`'s loader shuffles them (same seeded loader)."""
    return torch.utils.data.DataLoader(
        torch.arange(n),
        batch_size=config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed),
    )


def _worker(
    rank: int, X: np.ndarray, y: np.ndarray, config: TorchConfig, n_micro: int, port: int, out: Any
) -> None:
    import torch.distributed as dist
    from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=N_STAGES)
    try:
        net = build_model(X, config)  # same seed on both ranks: same initial weights
        module = split_stages(net)[rank]
        stage = PipelineStage(module, rank, N_STAGES, torch.device("cpu"))
        loss_fn = weighted_bce(y, config, torch.device("cpu"))
        schedule = ScheduleGPipe(stage, n_microbatches=n_micro, loss_fn=loss_fn)
        optimizer = torch.optim.Adam(
            module.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        loader = _batch_indices(len(X), config)
        epoch_losses, rows, started = [], 0, time.perf_counter()
        for _ in range(config.epochs):
            total = 0.0
            for index in loader:
                optimizer.zero_grad(set_to_none=True)
                if rank == 0:
                    schedule.step(Xt[index])
                else:
                    losses: list[torch.Tensor] = []
                    schedule.step(target=yt[index], losses=losses)
                    total += float(torch.stack(losses).detach().mean()) * len(index)
                optimizer.step()
                rows += len(index)
            epoch_losses.append(total / len(X))
        seconds = time.perf_counter() - started
        if rank == N_STAGES - 1:
            out.put({"epoch_losses": epoch_losses, "rows_per_s": rows / seconds})
    finally:
        dist.destroy_process_group()


def train_pipelined(
    X: np.ndarray, y: np.ndarray, config: TorchConfig, n_microbatches: int = 4
) -> dict[str, Any]:
    """Train the 2-stage pipeline in 2 processes; return its epoch losses and rows/s."""
    import torch.multiprocessing as mp

    from ml_common.services import free_port

    if config.batch_size % n_microbatches or len(X) % config.batch_size:
        raise ValueError("rows must be whole batches and batches whole micro-batches")
    context = mp.get_context("spawn")
    queue = context.Queue()
    args = (np.ascontiguousarray(X, np.float32), np.asarray(y, np.float32), config)
    mp.start_processes(
        _worker,
        args=(*args, n_microbatches, free_port(), queue),
        nprocs=N_STAGES,
        start_method="spawn",
    )
    return queue.get(timeout=60)


def compare(
    X: np.ndarray, y: np.ndarray, config: TorchConfig, n_microbatches: int = 4, rtol: float = 1e-3
) -> dict[str, Any]:
    """Single-process :func:`fit` vs the 2-stage pipeline on the same rows and batches."""
    config = config.model_copy(update={"dropout": 0.0, "device": "cpu"})
    rows = (len(X) // config.batch_size) * config.batch_size
    if rows == 0:
        raise ValueError(f"need at least one full batch of {config.batch_size} rows")
    X, y = np.ascontiguousarray(X[:rows], np.float32), np.asarray(y[:rows], np.float32)
    torch.set_num_threads(1)
    device = device_for("cpu")
    loss_fn = weighted_bce(y, config, device)
    fit(build_model(X, config), X, y, config, device=device, loss_fn=loss_fn)  # warm-up
    net = build_model(X, config)
    started = time.perf_counter()
    single = fit(net, X, y, config, device=device, loss_fn=loss_fn)
    single_rate = rows * config.epochs / (time.perf_counter() - started)
    piped = train_pipelined(X, y, config, n_microbatches)
    difference = float(np.max(np.abs(np.array(single) - np.array(piped["epoch_losses"]))))
    return {
        "single_epoch_losses": single,
        "pipeline_epoch_losses": piped["epoch_losses"],
        "max_abs_difference": difference,
        "pipeline_matches_single": bool(difference <= rtol * max(single)),
        "single_rows_per_s": single_rate,
        "pipeline_rows_per_s": piped["rows_per_s"],
        "n_microbatches": n_microbatches,
        "hidden": list(config.hidden),
    }
