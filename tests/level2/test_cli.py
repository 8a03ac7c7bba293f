"""The command line: help, and bad config or data give one message and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from level2_churn.__main__ import main


def test_help_lists_the_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "level2_churn", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("run", "bench", "generate", "stage"):
        assert command in out


def test_bad_config_is_one_clear_message(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: forty-two\ntune: {n_trials: 0}\ndatasets: {}\n")
    assert main(["--config", str(bad), "stage", "prepare", "--dataset", "telco"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "seed" in err and "tune.n_trials" in err  # every field named
    bad.write_text("run: [telco]\ndatasets: {}\n")
    assert main(["--config", str(bad), "stage", "prepare", "--dataset", "telco"]) == 2
    assert "run names unknown datasets ['telco']" in capsys.readouterr().err


def test_missing_snapshot_file_is_a_data_error(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "run: [mine]\ndatasets:\n  mine:\n    source: "
        + str(tmp_path / "nope.csv")
        + "\n    columns: {target: churn, numeric: [x]}\n"
    )
    assert main(["--config", str(cfg), "stage", "prepare", "--dataset", "mine"]) == 2
    assert "nope.csv: file not found" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["stage", "train", "--dataset", "nope"]])
def test_unknown_dataset(command: list[str], capsys) -> None:
    assert main(command) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_bench_refuses_a_partial_run_before_starting(capsys) -> None:
    assert main(["bench", "--dataset", "telco"]) == 2
    assert "bench needs telco and generated" in capsys.readouterr().err
