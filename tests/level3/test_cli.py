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


def test_a_bug_exits_1_and_says_so_with_the_log_path(tmp_path, capsys, monkeypatch):
    """A RuntimeError/ValueError the user did not cause is a bug, not a user error."""
    import level3_recsys.__main__ as level3_cli
    from ml_common.cli import run_main

    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.delenv("ML_VERBOSE", raising=False)
    for error in (RuntimeError, ValueError):

        def broken(args, error=error):  # noqa: ANN001, ANN202
            raise error("an invariant broke")

        monkeypatch.setattr(level3_cli, "cmd_prepare", broken)
        assert run_main(level3_cli.main, level=3, argv=["prepare"]) == 1
        err = capsys.readouterr().err
        log = tmp_path / "level3" / "logs" / "error.log"
        assert err.count("\n") == 1 and "a bug" in err and str(log) in err, err


def test_promote_before_train_is_a_user_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(tmp_path))
    config = tmp_path / "config.yaml"
    config.write_text("train:\n  model_name: level3-never-trained\n")
    assert main(["--config", str(config), "promote"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # MLflow logs its sqlite set-up
    assert last.startswith("error: ") and "run `train` first" in last
