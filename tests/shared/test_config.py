import re
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

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


class Column(BaseModel):
    name: str
    kind: str = "numeric"


class Snapshot(BaseModel):
    kind: Literal["snapshot"] = "snapshot"
    source: str = "a.csv"
    columns: list[Column] = []


class Events(BaseModel):
    kind: Literal["events"] = "events"
    months: int = 14


class NestedSettings(LevelSettings):
    model_config = settings_config("NESTED_")
    train: Train = Train()
    maybe: Train | None = None
    datasets: dict[str, Snapshot | Events] = {}


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("train:\n  n_trails: 3\n", "train.n_trails"),
        ("maybe:\n  learning_rat: 0.2\n", "maybe.learning_rat"),
        ("datasets:\n  a:\n    kind: events\n    monts: 3\n", "datasets.a.monts"),
        ("datasets:\n  a:\n    kind: snapshot\n    sorce: b.csv\n", "datasets.a.sorce"),
        ("datasets:\n  a:\n    columns:\n      - {name: x, knd: y}\n", "datasets.a.columns.0.knd"),
    ],
)
def test_unknown_nested_key_is_rejected_with_its_full_path(tmp_path, text, path):
    with pytest.raises(ConfigError, match=rf"config.yaml: {re.escape(path)}: unknown setting"):
        load_settings(NestedSettings, write(tmp_path, text))


def test_unknown_nested_key_suggests_the_closest_known_one(tmp_path):
    with pytest.raises(ConfigError, match=r"did you mean train\.n_trials\?"):
        load_settings(NestedSettings, write(tmp_path, "train:\n  n_trails: 3\n"))


def test_a_tag_picks_the_union_member_so_the_other_member_s_keys_are_unknown(tmp_path):
    # ``months`` belongs to Events; a dataset tagged as a snapshot must not accept it.
    text = "datasets:\n  a:\n    kind: snapshot\n    months: 3\n"
    with pytest.raises(ConfigError, match=r"datasets\.a\.months: unknown setting"):
        load_settings(NestedSettings, write(tmp_path, text))


def test_known_nested_keys_still_load(tmp_path):
    text = "train:\n  n_trials: 3\ndatasets:\n  a:\n    kind: events\n    months: 7\n"
    settings = load_settings(NestedSettings, write(tmp_path, text))
    assert settings.train.n_trials == 3 and settings.datasets["a"].months == 7


def test_unknown_nested_keyword_override_is_rejected_too():
    with pytest.raises(ConfigError, match=r"train\.n_trails"):
        load_settings(NestedSettings, train={"n_trails": 3})


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")
    x: int = 0


class OpenSettings(LevelSettings):
    model_config = settings_config("OPEN_")
    extras: Open = Open()


def test_a_model_that_allows_extra_keys_keeps_them():
    assert load_settings(OpenSettings, extras={"anything": 1}).extras.model_extra == {"anything": 1}
