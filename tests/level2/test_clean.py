"""Cleaning rules: spellings, numbers as text, clocks, duplicates across streamed chunks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from level2_churn import clean, ingest


def test_spellings_are_unified() -> None:
    raw = pd.Series(["Basic", "BASIC", "basic ", "std", "prem.", "gold"])
    assert clean.normalise(raw, clean.PLAN_NAMES).tolist()[:5] == [
        "basic",
        "basic",
        "basic",
        "standard",
        "premium",
    ]
    assert pd.isna(clean.normalise(raw, clean.PLAN_NAMES).iloc[5])  # unknown -> missing


def test_numbers_stored_as_text_are_parsed() -> None:
    parsed = clean.parse_number(pd.Series(["$49.99", "1,204.50", "49.99 USD", "12", None, "n/a"]))
    assert parsed.iloc[:4].tolist() == [49.99, 1204.5, 49.99, 12.0]
    assert parsed.iloc[4:].isna().all()


def test_ticket_local_time_is_moved_to_utc() -> None:
    raw = pd.DataFrame(
        {
            "ticket_id": [1, 1, 2],
            "customer_id": [5, 5, 6],
            "opened_at": pd.to_datetime(["2025-01-31 21:30:00"] * 2 + ["2025-07-01 10:00:00"]),
            "category": ["Billing", "Billing", None],
            "subject": ["question", "question", "no signal"],
            "loaded_at": pd.to_datetime(["2025-02-01"] * 3),
        }
    )
    tickets = clean.clean_tickets(raw, "America/New_York")
    assert len(tickets) == 2  # duplicate dropped
    # 21:30 in New York on 31 January is 02:30 UTC on 1 February: the next month.
    assert tickets["opened_at"].iloc[0] == pd.Timestamp("2025-02-01 02:30:00")
    assert tickets["month"].iloc[0] == clean.month_index(pd.Series([pd.Timestamp("2025-02-01")]))[0]
    assert tickets["topic"].tolist() == ["billing", "network"]  # text category from the subject


def test_usage_dedup_does_not_depend_on_chunk_size(small_raw: Path, monkeypatch) -> None:
    whole = clean.clean_usage(small_raw)
    monkeypatch.setattr(ingest, "USAGE_CHUNK_ROWS", 997)
    import level2_churn.clean as clean_module

    monkeypatch.setattr(
        clean_module, "iter_usage", lambda raw: ingest.iter_usage(raw, chunk_rows=997)
    )
    chunked = clean_module.clean_usage(small_raw)
    keys = ["customer_id", "month", "loaded_month"]
    pd.testing.assert_frame_equal(
        whole.sort_values(keys).reset_index(drop=True),
        chunked.sort_values(keys).reset_index(drop=True),
    )
    raw = pd.read_csv(small_raw / "usage.csv").drop_duplicates(["customer_id", "ts"])
    assert whole["active_days"].sum() == len(raw)  # exact duplicates counted once
