"""Typed settings loaded from a YAML file, with environment variables on top.

Each level declares its settings as a :class:`LevelSettings` subclass (plain pydantic fields,
nested models allowed) and loads them with :func:`load_settings`. Precedence, highest first:

1. environment variables, ``<PREFIX><FIELD>`` with ``__`` between nested fields
   (``LEVEL2_TRAIN__N_TRIALS=10``);
2. the YAML file;
3. the defaults written in the class.

Anything wrong (missing file, YAML syntax, unknown key, wrong type) raises :class:`ConfigError`
with one message that names the file and every bad field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message says why."""


class LevelSettings(BaseSettings):
    """Base class for a level's settings. Subclasses set ``model_config = settings_config(...)``."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="forbid")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; the environment must win over it.
        return env_settings, init_settings


def settings_config(env_prefix: str) -> SettingsConfigDict:
    """``model_config`` for a level's settings with its environment prefix (e.g. ``LEVEL2_``)."""
    return SettingsConfigDict(env_prefix=env_prefix, env_nested_delimiter="__", extra="forbid")


S = TypeVar("S", bound=LevelSettings)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; raise :class:`ConfigError` naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``updates`` merged in, nested mappings merged key by key."""
    out = dict(base)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(cls: type[S], path: str | Path | None = None, **overrides: Any) -> S:
    """Build ``cls`` from the YAML file at ``path`` (optional), keyword overrides and environment.

    Keyword ``overrides`` are merged into the file's mapping, nested mappings key by key
    (``tune={"n_trials": 5}`` keeps the file's other ``tune`` keys); handy in tests and CLIs.
    Environment variables still take precedence over both.
    """
    data = read_yaml(path) if path is not None else {}
    data = deep_merge(data, overrides)
    try:
        return cls(**data)
    except ValidationError as exc:
        source = str(path) if path is not None else cls.__name__
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: invalid settings: {problems}") from exc


def dump_settings(settings: LevelSettings) -> dict[str, Any]:
    """The resolved settings as plain data, to store beside a run's outputs."""
    return settings.model_dump(mode="json")
