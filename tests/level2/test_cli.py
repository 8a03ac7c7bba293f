"""The command line: help, and bad config or data give one message and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
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


def test_config_is_accepted_after_the_command_too(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [telco]\ndatasets: {}\n")
    assert main(["stage", "prepare", "--dataset", "telco", "--config", str(bad)]) == 2
    assert "run names unknown datasets ['telco']" in capsys.readouterr().err


def _own_table(tmp_path: Path, labels: list[str], target: str = "left") -> Path:
    csv = tmp_path / "mine.csv"
    n = len(labels)
    pd.DataFrame({target: labels, "x": range(n)}).to_csv(csv, index=False)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"run: [mine]\ndatasets:\n  mine:\n    source: {csv}\n"
        "    columns: {target: left, positive_label: gone, numeric: [x]}\n"
    )
    return cfg


def test_a_third_target_value_is_refused(tmp_path: Path, capsys) -> None:
    cfg = _own_table(tmp_path, ["gone"] * 5 + ["stayed"] * 10 + ["maybe"] * 3)
    assert main(["stage", "prepare", "--dataset", "mine", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "mine.csv" in err and "'left'" in err and "'maybe' (3 rows)" in err


def test_missing_target_column_names_the_column_and_the_file(tmp_path: Path, capsys) -> None:
    cfg = _own_table(tmp_path, ["gone", "stayed"] * 5, target="churned")
    assert main(["stage", "prepare", "--dataset", "mine", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "mine.csv" in err and "missing column(s) 'left'" in err


def test_generate_needs_a_generated_dataset(tmp_path: Path, capsys) -> None:
    cfg = _own_table(tmp_path, ["gone", "stayed"] * 5)
    assert main(["generate", "--out", str(tmp_path / "raw"), "--config", str(cfg)]) == 2
    assert "no generated (kind: events) dataset" in capsys.readouterr().err
    assert not (tmp_path / "raw").exists()
