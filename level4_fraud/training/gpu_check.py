"""CPU vs GPU on the same data, and DDP with NCCL: what ``level4_fraud/gpu_check.sh`` runs.

:func:`compare_devices` trains the deployed FraudNet with the same :class:`TorchConfig` (the
``industrial`` section's model) on each device through the one training path
(:func:`~level4_fraud.models.fraudnet.train_torch_model`) and reports training rows per second
and test AP. :func:`main` adds ``torchrun --nproc-per-node=1`` through the real DDP path
(:func:`~level4_fraud.training.distributed.launch`: NCCL on CUDA, bf16 autocast, pinned memory)
and writes ``artifacts/level4/gpu_check.json``, whose keys the bench merges
(``gpu_rows_per_s``, ``cpu_rows_per_s``, ``gpu_ap``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from level4_fraud.config import TorchConfig, load_config


def compare_devices(
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    config: TorchConfig,
    devices: tuple[str, ...] = ("cpu", "cuda"),
) -> dict[str, dict[str, float]]:
    """Train once per device with the same settings; rows/s (training) and test AP per device."""
    import torch
    from sklearn.metrics import average_precision_score

    from level4_fraud.models.fraudnet import predict_proba, train_torch_model

    results = {}
    for device in devices:
        start = time.perf_counter()
        model = train_torch_model(X, y, config.model_copy(update={"device": device}))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        results[device] = {
            "rows_per_s": config.epochs * len(X) / seconds,
            "ap": float(average_precision_score(y_test, predict_proba(model, X_test))),
            "seconds": seconds,
        }
    return results


def main(out: Path | None = None) -> int:
    """Run the check on a CUDA machine; exit 2 with one line where there is no CUDA."""
    import torch

    from level4_fraud.data.protocol import prepare_data
    from level4_fraud.training.distributed import launch
    from ml_common.atomic import write_json
    from ml_common.paths import level_dir

    if not torch.cuda.is_available():
        print("error: no CUDA device here (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    settings = load_config().industrial
    print("simulating part 2's world ...", flush=True)
    splits = prepare_data(settings)
    config = settings.net_config()
    devices = compare_devices(splits.X_train, splits.y_train, splits.X_test, splits.y_test, config)
    print("DDP: torchrun --nproc-per-node=1, NCCL ...", flush=True)
    ddp = launch(
        splits.X_train,
        splits.y_train,
        config.model_copy(update={"device": "cuda", "dropout": 0.0}),
        nproc=1,
        out_dir=level_dir(4) / "gpu_check",
    )
    report: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(0),
        "devices": devices,
        "ddp": {k: ddp[k] for k in ("backend", "device", "amp", "throughput", "global_batch")},
        "gpu_rows_per_s": round(devices["cuda"]["rows_per_s"], 1),
        "cpu_rows_per_s": round(devices["cpu"]["rows_per_s"], 1),
        "gpu_ap": round(devices["cuda"]["ap"], 4),
    }
    if ddp["backend"] != "nccl" or not ddp["device"].startswith("cuda"):
        print(f"error: DDP ran on {ddp['backend']}/{ddp['device']}, not NCCL/CUDA", file=sys.stderr)
        return 1
    path = write_json(out or level_dir(4) / "gpu_check.json", report)
    for device, row in devices.items():
        print(f"{device:5s} rows/s {row['rows_per_s']:>12,.0f}   AP {row['ap']:.4f}")
    print(f"DDP   {ddp['backend']} on {ddp['device']}, bf16 {ddp['amp']}: "
          f"{ddp['throughput']:,.0f} rows/s")  # fmt: skip
    print(f"report: {path}")
    print(json.dumps({k: report[k] for k in ("gpu_rows_per_s", "cpu_rows_per_s", "gpu_ap")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
