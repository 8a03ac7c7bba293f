"""Shared by the level-5 tests that run the command line in a subprocess with small settings."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ml_common.paths import PROJECT_ROOT, level_dir

# A short-trained LM and policy on 8-gene worlds: trained once (~30 s) into the test session's
# artifacts folder, then cached for every later run.
SMALL = {
    "LEVEL5_LM__STEPS": "60",
    "LEVEL5_LM__TRAIN_WORLDS": "2",
    "LEVEL5_RL__EPISODES": "8",
    "LEVEL5_N_GENES": "8",
    # The session stops by itself only when the data decide every edge question, so a test's
    # script of answers is always asked for (ignored where the setting does not exist yet).
    "LEVEL5_STOPPING__RULE": "decided",
}
OUTPUTS = ("metrics.json", "session_story.txt", "decisions.jsonl", "config.json")


def small_env(**extra: str) -> dict[str, str]:
    """Environment of a small session (the test session's ML_ARTIFACTS_DIR is inherited)."""
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **SMALL, **extra}


def command(*args: str) -> list[str]:
    """``python -m level5_discovery ARGS``."""
    return [sys.executable, "-m", "level5_discovery", *args]


def fresh_outputs() -> Path:
    """Remove the previous session's outputs so a test reads only what its run wrote."""
    out = level_dir(5)
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
    return out


def decisions(out: Path) -> list[dict]:
    """The decisions.jsonl entries."""
    return [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
