"""The command line as a user meets it: help, and one clear line for each kind of bad input."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from level1_notebooks.data import build_titanic_csv
from ml_common.paths import PROJECT_ROOT


def cli(*args, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "level1_notebooks", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=300,
    )


def test_help_lists_the_commands():
    result = cli("--help")
    assert result.returncode == 0
    for command in ("data", "run", "bench"):
        assert command in result.stdout


def test_data_command_builds_the_csv(tmp_path):
    target = tmp_path / "titanic.csv"
    result = cli("data", "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(target)) == 1309
    again = cli("data", "--output", str(target))
    assert "already there" in again.stdout


def _broken_missing_column(path):
    pd.read_csv(build_titanic_csv(path)).drop(columns="sex").to_csv(path, index=False)


def _broken_unreadable(path):
    path.write_bytes(b"\xff\xfe\x00\x81 not a csv at all")


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        (_broken_missing_column, "missing column 'sex'"),
        (_broken_unreadable, "not a readable CSV"),
        (None, "file not found"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path, breaker, message):
    data = tmp_path / "titanic.csv"
    if breaker is not None:
        breaker(data)
    output_dir = tmp_path / "out"
    result = cli("run", "--data", str(data), "--output-dir", str(output_dir))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0] and "titanic.csv" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (output_dir / "metrics.json").exists()
    assert not list(output_dir.glob("**/*.png"))


def test_bad_setting_names_the_field(tmp_path):
    result = cli("run", "--output-dir", str(tmp_path), env_extra={"LEVEL1_N_FOLDS": "1"})
    assert result.returncode == 2
    assert "n_folds" in result.stderr and "Traceback" not in result.stderr
