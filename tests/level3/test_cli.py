"""The command line: help, and one clear message for a bad config."""

import subprocess
import sys

from level3_recsys.__main__ import main


def test_help_lists_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "level3_recsys", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for command in (
        "prepare",
        "tune",
        "train",
        "batch",
        "serve",
        "deploy",
        "down",
        "drift",
        "loadtest",
        "hostile",
        "bench",
    ):
        assert command in result.stdout


def test_bad_config_is_one_clear_error(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("serve:\n  port: not-a-port\n")
    assert main(["--config", str(config), "prepare"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "serve.port" in err


def test_missing_data_is_one_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(tmp_path))
    assert main(["train", "--data", str(tmp_path / "nowhere")]) == 2
    assert "train.csv: file not found" in capsys.readouterr().err
