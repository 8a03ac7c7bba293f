"""Clean and join: spellings unified, numbers parsed, duplicates dropped, clocks put on UTC.

Rules here are domain rules fixed in advance (a day has 1,440 minutes; an adult is 18-100), never
statistics of the data, so cleaning cannot leak information from after a cut-off. The usage log is
reduced on the fly to one row per customer, event month and *load* month: the load month is what
lets ``features`` see a record only once it had arrived (late records stay invisible until then).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from level2_churn.ingest import iter_usage, read_source
from level2_churn.settings import SnapshotDataset

# Spellings seen in the exports -> one canonical value (lower-cased, stripped first).
PLAN_NAMES = {
    "basic": "basic",
    "standard": "standard",
    "std": "standard",
    "premium": "premium",
    "prem.": "premium",
}
CONTRACT_NAMES = {
    "month-to-month": "month-to-month",
    "monthly": "month-to-month",
    "m2m": "month-to-month",
    "one year": "one year",
    "1 year": "one year",
    "12 months": "one year",
    "two year": "two year",
    "2 year": "two year",
    "24 months": "two year",
}
STATUS_NAMES = {
    "paid": "paid",
    "late": "late",
    "paid late": "late",
    "unpaid": "unpaid",
    "not paid": "unpaid",
}
CATEGORY_NAMES = {
    "network": "network",
    "netwrk": "network",
    "connectivity": "network",
    "billing": "billing",
    "invoice": "billing",
    "payments": "billing",
    "account": "cancel",
    "retention": "cancel",
    "cancellation": "cancel",
    "other": "other",
    "general": "other",
}
# Text categories: keywords in a ticket's free-text subject; they win over the typed category.
SUBJECT_KEYWORDS = {
    "cancel": r"cancel|close my account|switching|end my contract",
    "network": r"signal|internet|wifi|connection|outage|dropping",
    "billing": r"bill|charged|refund|invoice|amount",
}
MAX_MINUTES_PER_DAY = 24 * 60
MAX_INVOICE_FACTOR = 5.0  # an invoice above 5x the monthly fee is a data error


def month_index(dates: pd.Series) -> pd.Series:
    """Months since year 0 (``2025-03-14`` -> 2025*12+2): arithmetic on months made easy."""
    return dates.dt.year * 12 + dates.dt.month - 1


def month_start(index: int) -> pd.Timestamp:
    """The first day of month ``index`` (inverse of :func:`month_index`)."""
    return pd.Timestamp(year=index // 12, month=index % 12 + 1, day=1)


def normalise(values: pd.Series, names: dict[str, str]) -> pd.Series:
    """Map messy spellings to canonical names; unknown spellings become missing."""
    mapped = values.astype("string").str.strip().str.lower().map(names).astype(object)
    return mapped.where(mapped.notna(), np.nan)


def parse_number(values: pd.Series) -> pd.Series:
    """Numbers stored as text (``$1,204.50``, ``49.99 USD``) -> float; junk -> NaN."""
    text = values.astype("string").str.replace(r"[^0-9.\-]", "", regex=True)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def subject_topic(subjects: pd.Series) -> pd.Series:
    """The topic a ticket's free text talks about, by keyword; NaN when none matches."""
    topic = pd.Series(np.nan, index=subjects.index, dtype=object)
    lower = subjects.fillna("").str.lower()
    for name, pattern in SUBJECT_KEYWORDS.items():
        topic = topic.where(topic.notna() | ~lower.str.contains(pattern, regex=True), name)
    return topic


@dataclass
class CleanSources:
    """The cleaned, joined-ready sources of the event data."""

    customers: pd.DataFrame  # one row per customer
    billing: pd.DataFrame  # one row per invoice, with month and load month
    tickets: pd.DataFrame  # one row per ticket, UTC time, topic, load month
    usage_monthly: pd.DataFrame  # customer x event month x load month: minutes, active days


def clean_customers(raw: pd.DataFrame) -> pd.DataFrame:
    customers = raw.drop_duplicates("customer_id", keep="first").copy()
    customers["plan"] = normalise(customers["plan"], PLAN_NAMES)
    customers["contract"] = normalise(customers["contract"], CONTRACT_NAMES)
    region = customers["region"].astype("string").str.strip().str.lower()
    customers["region"] = region.astype(object).where(region.notna(), np.nan)
    customers["monthly_fee"] = parse_number(customers["monthly_fee"])
    customers["age"] = customers["age"].where(customers["age"].between(18, 100))
    return customers.set_index("customer_id").sort_index()


def clean_billing(raw: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    billing = raw.drop_duplicates("invoice_id", keep="first").copy()
    billing["amount"] = parse_number(billing["amount"])
    fee = billing["customer_id"].map(customers["monthly_fee"])
    billing["amount"] = billing["amount"].where(~(billing["amount"] > MAX_INVOICE_FACTOR * fee))
    billing["status"] = normalise(billing["status"], STATUS_NAMES)
    billing["month"] = month_index(billing["invoice_date"])
    billing["loaded_month"] = month_index(billing["loaded_at"])
    return billing


def clean_tickets(raw: pd.DataFrame, local_timezone: str) -> pd.DataFrame:
    tickets = raw.drop_duplicates("ticket_id", keep="first").copy()
    # The ticket system writes naive local time; put it on UTC like the usage logs.
    tickets["opened_at"] = (
        tickets["opened_at"]
        .dt.tz_localize(local_timezone, ambiguous="NaT", nonexistent="shift_forward")
        .dt.tz_convert("UTC")
        .dt.tz_localize(None)
    )
    tickets = tickets.dropna(subset=["opened_at"])
    tickets["topic"] = (
        subject_topic(tickets["subject"])
        .fillna(normalise(tickets["category"], CATEGORY_NAMES))
        .fillna("other")
    )
    tickets["month"] = month_index(tickets["opened_at"])
    tickets["loaded_month"] = month_index(tickets["loaded_at"])
    return tickets


def reduce_usage(chunk: pd.DataFrame) -> pd.DataFrame:
    """One chunk of daily logs -> customer x event month x load month totals."""
    chunk = chunk.drop_duplicates(["customer_id", "ts"])
    minutes = chunk["minutes"].where(chunk["minutes"] <= MAX_MINUTES_PER_DAY)
    ts = chunk["ts"].dt.tz_convert("UTC").dt.tz_localize(None)
    frame = pd.DataFrame(
        {
            "customer_id": chunk["customer_id"].to_numpy(),
            "month": month_index(ts).to_numpy(),
            "loaded_month": month_index(chunk["loaded_at"]).to_numpy(),
            "minutes": minutes.fillna(0).to_numpy(),
            "active_days": 1,
        }
    )
    keys = ["customer_id", "month", "loaded_month"]
    return frame.groupby(keys, as_index=False).sum()


def clean_usage(raw_dir: str | Path) -> pd.DataFrame:
    """Stream the usage log chunk by chunk; duplicates straddling two chunks are carried over.

    The export is ordered by customer, so the last customer of a chunk is held back and
    prepended to the next chunk: each customer's rows are de-duplicated together.
    """
    parts: list[pd.DataFrame] = []
    carry: pd.DataFrame | None = None
    for chunk in iter_usage(raw_dir):
        if carry is not None:
            chunk = pd.concat([carry, chunk], ignore_index=True)
        last = chunk["customer_id"].iloc[-1]
        tail = chunk["customer_id"] == last
        carry, chunk = chunk[tail], chunk[~tail]
        if len(chunk):
            parts.append(reduce_usage(chunk))
    if carry is not None and len(carry):
        parts.append(reduce_usage(carry))
    usage = pd.concat(parts, ignore_index=True)
    return usage.groupby(["customer_id", "month", "loaded_month"], as_index=False).sum()


def clean_sources(raw_dir: str | Path, local_timezone: str) -> CleanSources:
    """Ingest (validate) and clean all four sources of the event data."""
    customers = clean_customers(read_source(raw_dir, "customers"))
    return CleanSources(
        customers=customers,
        billing=clean_billing(read_source(raw_dir, "billing"), customers),
        tickets=clean_tickets(read_source(raw_dir, "tickets"), local_timezone),
        usage_monthly=clean_usage(raw_dir),
    )


def clean_snapshot(frame: pd.DataFrame, dataset: SnapshotDataset) -> tuple[pd.DataFrame, pd.Series]:
    """A snapshot table -> (features frame with the mapped columns, 0/1 target)."""
    cols = dataset.columns
    features = pd.DataFrame(index=frame.index)
    for column in cols.categorical:
        values = frame[column].astype("string").str.strip()
        values = values.astype(object)
        features[column] = values.where(values.notna() & (values != ""), np.nan)
    for column in cols.numeric:
        features[column] = pd.to_numeric(frame[column], errors="coerce")
    labels = frame[cols.target].astype(str).str.strip()
    target = (labels == str(cols.positive_label)).astype(int)
    if cols.id:
        features.index = frame[cols.id].to_numpy()
        target.index = features.index
    return features, target.rename("churn")
