"""Typed settings loaded from a YAML file, with environment variables on top.

Each level declares its settings as a :class:`LevelSettings` subclass (plain pydantic fields,
nested models allowed) and loads them with :func:`load_settings`. Precedence, highest first:

1. environment variables, ``<PREFIX><FIELD>`` with ``__`` between nested fields
   (``LEVEL2_TRAIN__N_TRIALS=10``);
2. the YAML file;
3. the defaults written in the class.

Anything wrong (missing file, YAML syntax, unknown key, wrong type) raises :class:`ConfigError`
with one message that names the file and every bad field. Unknown keys are rejected at every
depth with their full path (``tune.n_trails``), whatever the nested models' own ``extra`` setting:
plain pydantic models ignore unknown keys, which would let a misspelled setting run on defaults.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml
from pydantic import BaseModel, ValidationError
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


def _model_members(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation accepts (``A``, ``A | None``, ``Annotated[A, ...]``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_members(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _model_members(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _known_keys(model: type[BaseModel]) -> dict[str, Any]:
    """Accepted input keys of ``model`` (names and string aliases) mapped to their annotations."""
    keys: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        keys[name] = field.annotation
        for alias in (field.alias, field.validation_alias):
            if isinstance(alias, str):
                keys[alias] = field.annotation
    return keys


def _pick_member(members: list[type[BaseModel]], value: dict[str, Any]) -> list[type[BaseModel]]:
    """The union members ``value`` can be: those whose ``Literal`` tag fields it matches."""
    tagged = []
    for model in members:
        tags = {
            name: typing.get_args(field.annotation)
            for name, field in model.model_fields.items()
            if typing.get_origin(field.annotation) is typing.Literal
        }
        if tags and all(name in value and value[name] in allowed for name, allowed in tags.items()):
            tagged.append(model)
    return tagged or members


def unknown_keys(model: type[BaseModel], data: Any, prefix: str = "") -> list[str]:
    """Problems for every key of ``data`` that ``model`` does not declare, at any depth.

    Each problem names the key's full dotted path (``tune.n_trails``) and the closest known key.
    Follows nested models, ``X | None``, unions of models (a ``Literal`` field such as ``kind``
    picks the member) and ``dict[str, Model]`` / ``list[Model]`` containers. A model whose
    ``model_config`` says ``extra="allow"`` accepts anything at its level.
    """
    if not isinstance(data, dict):
        return []
    allows_extra = model.model_config.get("extra") == "allow"
    known = _known_keys(model)
    problems = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in known:
            if not allows_extra:
                close = difflib.get_close_matches(str(key), list(model.model_fields), n=1)
                hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
                problems.append(f"{path}: unknown setting{hint}")
            continue
        problems += _unknown_in_value(known[key], value, path)
    return problems


def _unknown_in_value(annotation: Any, value: Any, path: str) -> list[str]:
    """Unknown keys inside one field's value, following models and containers of models."""
    members = _model_members(annotation)
    if members and isinstance(value, dict):
        candidates = _pick_member(members, value)
        if len(candidates) == 1:
            return unknown_keys(candidates[0], value, f"{path}.")
        # Ambiguous union: a key is unknown only when no candidate declares it.
        per_member = [unknown_keys(m, value, f"{path}.") for m in candidates]
        return min(per_member, key=len)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        # e.g. ``dict[str, Model] | None``: follow the non-model alternatives too.
        return next((found for arg in args if (found := _unknown_in_value(arg, value, path))), [])
    if origin is typing.Annotated:
        return _unknown_in_value(args[0], value, path)
    if origin in (dict, typing.Mapping) and len(args) == 2 and isinstance(value, dict):
        return [p for k, v in value.items() for p in _unknown_in_value(args[1], v, f"{path}.{k}")]
    if origin in (list, tuple, set, frozenset) and args and isinstance(value, list):
        return [
            p for i, v in enumerate(value) for p in _unknown_in_value(args[0], v, f"{path}.{i}")
        ]
    return []


def load_settings(cls: type[S], path: str | Path | None = None, **overrides: Any) -> S:
    """Build ``cls`` from the YAML file at ``path`` (optional), keyword overrides and environment.

    Keyword ``overrides`` are merged into the file's mapping, nested mappings key by key
    (``tune={"n_trials": 5}`` keeps the file's other ``tune`` keys); handy in tests and CLIs.
    Environment variables still take precedence over both.
    """
    data = read_yaml(path) if path is not None else {}
    data = deep_merge(data, overrides)
    source = str(path) if path is not None else cls.__name__
    unknown = unknown_keys(cls, data)
    if unknown:
        raise ConfigError(f"{source}: {'; '.join(unknown)}")
    try:
        return cls(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: invalid settings: {problems}") from exc


def dump_settings(settings: LevelSettings) -> dict[str, Any]:
    """The resolved settings as plain data, to store beside a run's outputs."""
    return settings.model_dump(mode="json")
