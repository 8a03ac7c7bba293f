"""Project paths, all built from the repository root.

``ML_ARTIFACTS_DIR`` moves every output (tests point it at a temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def artifacts_dir() -> Path:
    """Root of all generated outputs (ignored by git)."""
    return Path(os.environ.get("ML_ARTIFACTS_DIR", PROJECT_ROOT / "artifacts")).resolve()


def level_dir(level: str | int) -> Path:
    """Output folder of one level, ``level_dir(2)`` is ``artifacts/level2``; created if missing."""
    name = f"level{level}" if isinstance(level, int) else level
    path = artifacts_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def bench_dir() -> Path:
    """Folder of the benchmark JSON files (``artifacts/bench``); created if missing."""
    path = artifacts_dir() / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path
