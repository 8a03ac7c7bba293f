"""One-line 422 details that name the field by its schema path and never echo the client's input.

Pydantic's error locations hold whatever the client sent as a key (a ``<script>`` key, a
3,900-character key, a key with a newline), and its messages may quote a value. A detail here is
built only from the request model's own schema: each location part is the name of a field the
model declares, a list position, or a placeholder (``<unknown field>``, ``<key>``) where the part
came from the client. The message is pydantic's text for the error *type* (never the input), cut
to one short line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel

MAX_MESSAGE = 120
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model class inside a field's annotation (``Model``, ``Model | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _is_mapping(annotation: Any) -> bool:
    return get_origin(annotation) is dict or any(_is_mapping(a) for a in get_args(annotation))


def schema_path(loc: Sequence[Any], model: type[BaseModel], error_type: str = "") -> str:
    """``loc`` of a pydantic error as a path of the model's own field names.

    Args:
        loc: the error's location (``("body", "customer_id")``); a leading ``"body"`` is dropped.
        model: the request model the body was validated against.
        error_type: pydantic's error type; an ``extra_forbidden`` part is the client's own key.
    """
    parts: list[str] = []
    current: type[BaseModel] | None = model
    mapping = False  # the previous field is a dict: this part is a client-chosen key
    items = list(loc)
    if items and items[0] == "body":
        items = items[1:]
    for i, part in enumerate(items):
        last = i == len(items) - 1
        if isinstance(part, int) and not isinstance(part, bool):
            parts.append(f"[{part}]")  # a list position: a number the server counted
            continue
        if mapping:
            parts.append("<key>")
            mapping = False
            continue
        fields = current.model_fields if current is not None else {}
        if last and error_type == "extra_forbidden" or part not in fields:
            parts.append("<unknown field>")
            current = None
            continue
        annotation = fields[part].annotation
        parts.append(str(part))
        mapping = _is_mapping(annotation)
        current = _nested_model(annotation)
    return ".".join(parts).replace(".[", "[") or "body"


def safe_message(error: dict[str, Any]) -> str:
    """The error's message on one printable line, never longer than ``MAX_MESSAGE``."""
    if error.get("type") == "extra_forbidden":
        return "unknown field: not part of the request schema"
    text = _PRINTABLE.sub(" ", str(error.get("msg", "invalid")))
    return text[:MAX_MESSAGE]


def validation_detail(errors: Sequence[dict[str, Any]], model: type[BaseModel]) -> str:
    """The first error as ``"<schema path>: <message>"`` (one line, no client input)."""
    if not errors:
        return "body: invalid request"
    first = errors[0]
    path = schema_path(first.get("loc", ()), model, str(first.get("type", "")))
    return f"{path}: {safe_message(first)}"
