"""Features as of a cut-off: windows, trends, ratios and ticket text categories per customer.

For the event data a *cut-off* is the first instant of a month (UTC). A record counts only if it
happened before the cut-off **and** had been loaded by then (``loaded_month < cutoff``), so a late
record becomes visible in the month it arrives, as it would in production. The label is whether the
customer cancels during the cut-off's month. ``tests/level2/test_split.py`` proves that deleting
or changing anything after a cut-off leaves that cut-off's features unchanged.

Hand-written with pandas group-bys (vectorised; one pass per cut-off) rather than a feature
library: the windows are few and monthly, and each line reads as the feature it computes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from level2_churn.clean import CleanSources, month_start
from level2_churn.settings import ColumnMapping

EVENT_CATEGORICAL = ["plan", "contract", "region"]
TICKET_TOPICS = ["network", "billing", "cancel", "other"]


def _window(frame: pd.DataFrame, cutoff: int, months: int) -> pd.DataFrame:
    """Rows visible at ``cutoff`` whose event month lies in the ``months`` before it."""
    visible = frame["loaded_month"] < cutoff
    in_window = (frame["month"] < cutoff) & (frame["month"] >= cutoff - months)
    return frame[visible & in_window]


def event_features(sources: CleanSources, cutoff: int) -> pd.DataFrame:
    """One row per customer active at ``cutoff``: features from before it, label from its month."""
    start = month_start(cutoff)
    customers = sources.customers
    known_gone = customers["churn_date"] < start  # cancelled before: not a customer any more
    signed_up = customers["signup_date"] < start
    base = customers[signed_up & ~known_gone]
    out = pd.DataFrame(index=base.index)
    out["cutoff"] = cutoff
    out["tenure_months"] = (start - base["signup_date"]).dt.days / 30.44
    for column in EVENT_CATEGORICAL:
        out[column] = base[column]
    out["age"] = base["age"]
    out["monthly_fee"] = base["monthly_fee"]

    usage = sources.usage_monthly
    for k in (1, 2, 3):
        month = _window(usage, cutoff, k)
        month = month[month["month"] == cutoff - k]
        sums = month.groupby("customer_id")[["minutes", "active_days"]].sum()
        out[f"usage_minutes_m{k}"] = sums["minutes"].reindex(out.index).fillna(0)
        out[f"active_days_m{k}"] = sums["active_days"].reindex(out.index).fillna(0)
    earlier = (out["usage_minutes_m2"] + out["usage_minutes_m3"]) / 2
    out["usage_trend"] = out["usage_minutes_m1"] / (earlier + 1)
    out["usage_drop"] = (earlier - out["usage_minutes_m1"]) / (earlier + 1)
    out["active_days_trend"] = (
        out["active_days_m1"] - (out["active_days_m2"] + out["active_days_m3"]) / 2
    )

    tickets = _window(sources.tickets, cutoff, 3)
    counts = tickets.groupby(["customer_id", "topic"]).size().unstack(fill_value=0)
    for topic in TICKET_TOPICS:
        column = counts[topic] if topic in counts else pd.Series(dtype=float)
        out[f"tickets_{topic}_3m"] = column.reindex(out.index).fillna(0)
    out["tickets_3m"] = out[[f"tickets_{t}_3m" for t in TICKET_TOPICS]].sum(axis=1)
    last = _window(sources.tickets, cutoff, 1).groupby("customer_id").size()
    out["tickets_m1"] = last.reindex(out.index).fillna(0)

    bills = _window(sources.billing, cutoff, 3)
    status = bills.groupby(["customer_id", "status"]).size().unstack(fill_value=0)
    for name in ("late", "unpaid"):
        column = status[name] if name in status else pd.Series(dtype=float)
        out[f"{name}_payments_3m"] = column.reindex(out.index).fillna(0)
    out["days_late_3m"] = (
        bills.groupby("customer_id")["days_late"].sum().reindex(out.index).fillna(0)
    )
    amounts = bills.pivot_table(
        index="customer_id", columns="month", values="amount", aggfunc="mean"
    )
    first, last_month = cutoff - 3, cutoff - 1
    a_first = amounts[first] if first in amounts else pd.Series(dtype=float)
    a_last = amounts[last_month] if last_month in amounts else pd.Series(dtype=float)
    out["amount_last"] = a_last.reindex(out.index)
    out["amount_change_ratio"] = (a_last / a_first).reindex(out.index)
    out["minutes_per_dollar"] = out["usage_minutes_m1"] / out["monthly_fee"].replace(0, np.nan)

    churn = base["churn_date"]
    out["churn"] = ((churn >= start) & (churn < month_start(cutoff + 1))).astype(int)
    out.index.name = "customer_id"
    return out


def event_table(sources: CleanSources, cutoffs: list[int]) -> pd.DataFrame:
    """The modelling table: one block of rows per cut-off, stacked (customer_id kept as column)."""
    return pd.concat([event_features(sources, c) for c in cutoffs]).reset_index()


def event_columns(table: pd.DataFrame) -> ColumnMapping:
    """The column mapping of the event table, so both datasets flow through the same models."""
    skip = {"customer_id", "cutoff", "churn", *EVENT_CATEGORICAL}
    numeric = [c for c in table.columns if c not in skip]
    return ColumnMapping(
        id=None, target="churn", positive_label=1, categorical=EVENT_CATEGORICAL, numeric=numeric
    )


def snapshot_features(features: pd.DataFrame, columns: ColumnMapping) -> pd.DataFrame:
    """Add the configured ratio features to a snapshot table (e.g. charges per month of tenure)."""
    out = features.copy()
    for name, (numerator, denominator) in columns.ratios.items():
        out[name] = out[numerator] / out[denominator].replace(0, np.nan)
    return out
