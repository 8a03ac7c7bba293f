#!/usr/bin/env bash
# Level 4's GPU check, for a machine with a CUDA GPU (never run in this project's sessions: none
# had one). From the repository root, in an environment with the level4 extra and a CUDA torch:
#   bash level4_fraud/gpu_check.sh
# It trains FraudNet on CPU and on the GPU on the same data (part 2's world, config.yaml's
# industrial.model), runs torchrun --nproc-per-node=1 with NCCL through the real DDP path
# (level4_fraud/training/distributed.py: bf16 autocast, pinned memory), prints AP and training
# rows/s for CPU vs GPU, and writes artifacts/level4/gpu_check.json (merged into the bench JSON
# as gpu_rows_per_s, cpu_rows_per_s, gpu_ap). Then it runs the gpu-marked tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export PYTHONPATH="${PWD}${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA device (torch.cuda.is_available() is False)')"
"$PYTHON" -m level4_fraud.training.gpu_check
"$PYTHON" -m pytest tests/level4 -m gpu -q
