"""Data tests per source schema, and bad inputs: one clear error, every problem, no output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from level2_churn import stages
from level2_churn.ingest import SOURCE_SCHEMAS, iter_usage, load_snapshot, read_source
from level2_churn.settings import SnapshotDataset
from ml_common.datasets import DataError
from tests.level2.conftest import small_config


@pytest.mark.parametrize("name", ["customers", "billing", "tickets"])
def test_each_generated_source_meets_its_schema(small_raw: Path, name: str) -> None:
    frame = read_source(small_raw, name)
    assert list(frame.columns) == list(SOURCE_SCHEMAS[name].columns)
    assert frame["customer_id"].dtype == "int64"


def test_usage_is_streamed_in_validated_chunks(small_raw: Path) -> None:
    chunks = list(iter_usage(small_raw, chunk_rows=5_000))
    assert len(chunks) > 1
    assert str(chunks[0]["ts"].dtype) == "datetime64[ns, UTC]"
    assert sum(map(len, chunks)) == len(pd.read_csv(small_raw / "usage.csv"))


def _broken_copy(small_raw: Path, tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(small_raw, raw)
    return raw


def test_missing_column_and_wrong_type_are_both_reported(small_raw: Path, tmp_path: Path) -> None:
    raw = _broken_copy(small_raw, tmp_path)
    billing = pd.read_csv(raw / "billing.csv", dtype=str).drop(columns="status")
    billing.loc[3, "customer_id"] = "not-a-number"
    billing.to_csv(raw / "billing.csv", index=False)
    with pytest.raises(DataError) as error:
        read_source(raw, "billing")
    message = str(error.value)
    assert "billing.csv" in message
    assert "status" in message and "customer_id" in message  # every problem, one message
    assert "not-a-number" in message


def test_empty_file_is_a_clear_error(small_raw: Path, tmp_path: Path) -> None:
    raw = _broken_copy(small_raw, tmp_path)
    (raw / "tickets.csv").write_text("")
    with pytest.raises(DataError, match="tickets.csv: empty file"):
        read_source(raw, "tickets")
    (raw / "usage.csv").write_text("")
    with pytest.raises(DataError, match="usage.csv: empty file"):
        list(iter_usage(raw))
    (raw / "usage.csv").write_text("customer_id,ts,minutes,data_mb,loaded_at\n")
    with pytest.raises(DataError, match="no rows"):
        list(iter_usage(raw))


def test_bad_source_leaves_no_partial_output(small_raw: Path, tmp_path: Path) -> None:
    raw = _broken_copy(small_raw, tmp_path)
    usage = pd.read_csv(raw / "usage.csv", dtype=str)
    usage.loc[10, "ts"] = "yesterday-ish"
    usage.to_csv(raw / "usage.csv", index=False)
    cfg = small_config()
    target = stages.dataset_dir("generated") / "prepared"
    shutil.rmtree(target, ignore_errors=True)
    with pytest.raises(DataError, match="ts"):
        stages.prepare_stage(cfg, "generated", raw)
    assert not target.exists()
    assert not list(target.parent.glob(".prepared*"))  # no temporary folder left behind


def _snapshot(tmp_path: Path, table: dict[str, list], **columns: object) -> SnapshotDataset:
    """A churn table written as CSV, described by a mapping whose target is ``left == "yes"``."""
    csv = tmp_path / "churn.csv"
    pd.DataFrame(table).to_csv(csv, index=False)
    return SnapshotDataset(
        source=str(csv), columns={"target": "left", "positive_label": "yes", **columns}
    )


def test_snapshot_mapping_errors_name_the_columns(tmp_path: Path) -> None:
    dataset = _snapshot(
        tmp_path,
        {"left": ["yes", "no", "no"], "plan": ["a", "b", "a"], "fee": ["1.5", "oops", "2"]},
        categorical=["plan", "region"],
        numeric=["fee"],
    )
    with pytest.raises(DataError) as error:
        load_snapshot(dataset)
    assert "region" in str(error.value) and "fee" in str(error.value)


def test_any_churn_table_works_through_the_mapping(tmp_path: Path) -> None:
    dataset = _snapshot(
        tmp_path,
        {
            "id": [1, 2, 3],
            "left": ["yes", "no", "no"],
            "plan": ["a", "b", "a"],
            "fee": [1.5, 3.0, 2],
        },
        id="id",
        categorical=["plan"],
        numeric=["fee"],
    )
    assert len(load_snapshot(dataset)) == 3
    wrong_label = dataset.model_copy(
        update={"columns": dataset.columns.model_copy(update={"positive_label": "Yes"})}
    )
    with pytest.raises(DataError, match="positive label"):
        load_snapshot(wrong_label)
