"""The command line's error rule: what a user can fix exits 2 with one line; a bug exits 1 and
says so, with the log path (a plain ValueError is no longer taken for a user error)."""

from __future__ import annotations

from pathlib import Path

import pytest

import level4_fraud.__main__ as level4_cli
from ml_common.cli import run_main


def test_a_bug_exits_1_and_says_so_with_the_log_path(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.delenv("ML_VERBOSE", raising=False)

    def broken(args: object) -> int:
        raise ValueError("shapes (3,) and (4,) not aligned")  # a bug, not the user's input

    monkeypatch.setitem(level4_cli.COMMANDS, "simulate", (broken, "broken"))
    assert run_main(level4_cli.main, level=4, argv=["simulate"]) == 1
    err = capsys.readouterr().err
    log = tmp_path / "level4" / "logs" / "error.log"
    assert err.count("\n") == 1 and "a bug" in err and str(log) in err, err
    assert "shapes (3,)" in log.read_text()


def test_a_config_the_data_cannot_satisfy_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(tmp_path))
    config = tmp_path / "config.yaml"
    config.write_text("replay:\n  monitor_start_day: 1\n")  # before labels can arrive
    assert run_main(level4_cli.main, level=4, argv=["--config", str(config), "replay"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "monitor_start_day" in err, err
