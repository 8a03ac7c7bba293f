"""The command line: help, bad config, and (slow) one full session with small settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from level5_discovery.__main__ import main
from ml_common.paths import PROJECT_ROOT, level_dir


def test_help_and_bad_config(tmp_path, capsys) -> None:  # noqa: ANN001
    assert main([]) == 0
    assert "discovery" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_genes: lots\n")
    assert main(["--config", str(bad), "run"]) == 2
    assert "n_genes" in capsys.readouterr().err


@pytest.mark.slow
def test_full_session_runs_and_writes_outputs() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "LEVEL5_LM__STEPS": "60",
        "LEVEL5_LM__TRAIN_WORLDS": "2",
        "LEVEL5_RL__EPISODES": "8",
        "LEVEL5_N_GENES": "8",
    }
    done = subprocess.run([sys.executable, "-m", "level5_discovery", "run", "--seed", "3"],
                          env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "final network vs hidden truth" in done.stdout
    out = level_dir(5)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["f1"] >= 0.8 and metrics["experiments"] <= 8
    assert (out / "decisions.jsonl").read_text().strip()
    assert json.loads((out / "config.json").read_text())["n_genes"] == 8
