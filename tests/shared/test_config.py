from pathlib import Path

import pytest
from pydantic import BaseModel

from ml_common.config import (
    ConfigError,
    LevelSettings,
    dump_settings,
    load_settings,
    settings_config,
)


class Train(BaseModel):
    n_trials: int = 5
    learning_rate: float = 0.1


class DemoSettings(LevelSettings):
    model_config = settings_config("DEMO_")
    seed: int = 0
    name: str = "default"
    train: Train = Train()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_without_file():
    settings = load_settings(DemoSettings)
    assert settings.seed == 0 and settings.train.n_trials == 5


def test_yaml_overrides_defaults(tmp_path):
    settings = load_settings(DemoSettings, write(tmp_path, "seed: 7\ntrain:\n  n_trials: 50\n"))
    assert settings.seed == 7
    assert settings.train.n_trials == 50
    assert settings.train.learning_rate == 0.1  # untouched nested default survives


def test_environment_overrides_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_SEED", "11")
    monkeypatch.setenv("DEMO_TRAIN__N_TRIALS", "3")
    settings = load_settings(DemoSettings, write(tmp_path, "seed: 7\ntrain:\n  n_trials: 50\n"))
    assert settings.seed == 11
    assert settings.train.n_trials == 3


def test_keyword_overrides_replace_file_values(tmp_path):
    settings = load_settings(DemoSettings, write(tmp_path, "seed: 7\n"), seed=3)
    assert settings.seed == 3


def test_nested_keyword_overrides_keep_the_file_s_other_keys(tmp_path):
    path = write(tmp_path, "train:\n  n_trials: 50\n  learning_rate: 0.3\n")
    settings = load_settings(DemoSettings, path, train={"n_trials": 2})
    assert settings.train.n_trials == 2
    assert settings.train.learning_rate == 0.3  # from the file, not the class default


def test_unknown_key_is_rejected_with_its_name(tmp_path):
    with pytest.raises(ConfigError, match="sede"):
        load_settings(DemoSettings, write(tmp_path, "sede: 7\n"))


def test_wrong_type_names_the_field_and_file(tmp_path):
    path = write(tmp_path, "train:\n  n_trials: many\n")
    with pytest.raises(ConfigError, match=r"config.yaml.*train\.n_trials"):
        load_settings(DemoSettings, path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(DemoSettings, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(DemoSettings, write(tmp_path, "seed: [1,\n"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_settings(DemoSettings, write(tmp_path, "- 1\n- 2\n"))


def test_dump_round_trips(tmp_path):
    settings = load_settings(DemoSettings, write(tmp_path, "name: x\n"))
    assert DemoSettings(**dump_settings(settings)) == settings
