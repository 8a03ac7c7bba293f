"""``python -m level4_fraud retrain``: one real cycle against the registry on a tiny world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from level4_fraud.__main__ import main
from level4_fraud.config import load_config
from level4_fraud.lifecycle.retrain import ROLLBACK, retrain_windows
from ml_common.tracking import CHALLENGER, CHAMPION, alias_version

TINY_YAML = """
simulation: {seed: 3, n_customers: 400, n_terminals: 800, n_days: 50}
protocol: {train_start_day: 7, train_days: 21, delay_days: 7, test_days: 7, prequential_folds: 1}
torch: {epochs: 2, num_threads: 1}
lightgbm: {n_estimators: 60}
ensemble: {isolation_trees: 30}
retrain: {train_days: 14, holdout_days: 3}
model_name: {name}
use_feast: false
"""


def _config(root: Path, model_name: str) -> Path:
    path = root / "tiny.yaml"
    path.write_text(TINY_YAML.replace("{name}", model_name))
    return path


@pytest.fixture
def own_artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh artifacts folder (and so a fresh MLflow registry and Feast store) for the test."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("ML_ARTIFACTS_DIR", str(root))
    return root


def test_cronjob_command_is_a_real_subcommand() -> None:
    import yaml

    from level4_fraud.__main__ import build_parser, cmd_retrain

    root = Path(__file__).resolve().parents[2]
    cron = yaml.safe_load((root / "k8s" / "retrain-cronjob.yaml").read_text())
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[:3] == ["python", "-m", "level4_fraud"]
    args = build_parser().parse_args(command[3:])
    assert args.func is cmd_retrain and args.trigger == "schedule" and args.day is None


def test_windows_respect_the_label_delay() -> None:
    settings = load_config(None, retrain={"train_days": 14, "holdout_days": 3})
    (train_start, train_stop), (hold_start, hold_stop) = retrain_windows(50, settings)
    assert hold_stop == 50 - settings.protocol.delay_days
    assert (hold_start, train_stop, train_start) == (hold_stop - 3, hold_stop - 3, hold_stop - 17)


def test_train_then_retrain_records_a_decision(own_artifacts: Path, tmp_path: Path, capsys) -> None:
    name = "level4-fraud-test-retrain-cli"
    config = _config(tmp_path, name)
    assert main(["--config", str(config), "train"]) == 0
    first_champion = alias_version(name, CHAMPION)
    assert first_champion is not None
    capsys.readouterr()

    assert main(["--config", str(config), "retrain", "--trigger", "drift"]) == 0
    out = capsys.readouterr().out
    assert "retrain on day 50 (drift)" in out and "challenger v" in out

    decisions_path = own_artifacts / "level4" / "retrain" / "decisions.jsonl"
    decisions = [json.loads(line) for line in decisions_path.read_text().splitlines()]
    assert len(decisions) == 1
    decision = decisions[0]
    assert decision["trigger"] == "drift" and decision["day"] == 50
    assert decision["champion_version_before"] == first_champion
    assert decision["n_train"] > 0 and decision["n_holdout"] > 0
    assert 0 <= decision["champion"]["ap"] <= 1 and 0 <= decision["challenger"]["ap"] <= 1
    assert (own_artifacts / "level4" / "retrain" / "config.json").exists()

    assert alias_version(name, CHALLENGER) == decision["challenger_version"] != first_champion
    champion = alias_version(name, CHAMPION)
    assert champion == decision["champion_version_after"]
    if decision["promoted"]:
        assert champion == decision["challenger_version"]
        assert alias_version(name, ROLLBACK) == first_champion
        assert "PROMOTED" in out
    else:
        assert champion == first_champion
        assert alias_version(name, ROLLBACK) is None
        assert "not promoted" in out

    # A day too early for the windows is one clear message, nothing recorded.
    assert main(["--config", str(config), "retrain", "--day", "10"]) == 2
    assert "too early" in capsys.readouterr().err
    assert len(decisions_path.read_text().splitlines()) == 1


def test_retrain_without_champion_asks_for_train(own_artifacts: Path, tmp_path: Path, capsys):
    config = _config(tmp_path, "level4-fraud-test-no-champion")
    assert main(["--config", str(config), "retrain"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no champion" in err and "python -m level4_fraud train" in err
    assert not (own_artifacts / "level4" / "retrain" / "decisions.jsonl").exists()
