"""The Feast feature repository of level 4: entity and feature-view definitions.

``definitions(data_dir)`` returns the objects ``feast apply`` would register; their file sources
are parquet files under ``data_dir`` (``artifacts/level4/feast/data``), written by
:mod:`level4_fraud.feature_store` as days arrive. The store itself (registry, sqlite online store)
is configured in code by ``level4_fraud.feature_store.open_store`` so every path resolves into the
artifacts folder; ``feature_store.yaml`` next to this file shows the same configuration for the
``feast`` command line.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from level4_fraud.features import CUSTOMER_SNAPSHOT, TERMINAL_SNAPSHOT


def definitions(data_dir: str | Path) -> list[Any]:
    """Entities ``customer`` and ``terminal``; views ``customer_spending`` and ``terminal_risk``."""
    from feast import Entity, FeatureView, Field, FileSource
    from feast.types import Float64
    from feast.value_type import ValueType

    data_dir = Path(data_dir)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    terminal = Entity(name="terminal", join_keys=["terminal_id"], value_type=ValueType.INT64)
    customer_source = FileSource(
        name="customer_snapshots",
        path=str(data_dir / "customer_spending.parquet"),
        timestamp_field="event_timestamp",
    )
    terminal_source = FileSource(
        name="terminal_snapshots",
        path=str(data_dir / "terminal_risk.parquet"),
        timestamp_field="event_timestamp",
    )
    # A snapshot is valid for its day only: a one-day TTL keeps a stale row from being served.
    customer_spending = FeatureView(
        name="customer_spending",
        entities=[customer],
        ttl=timedelta(days=1),
        schema=[Field(name=c, dtype=Float64) for c in CUSTOMER_SNAPSHOT],
        source=customer_source,
        online=True,
    )
    terminal_risk = FeatureView(
        name="terminal_risk",
        entities=[terminal],
        ttl=timedelta(days=1),
        schema=[Field(name=c, dtype=Float64) for c in TERMINAL_SNAPSHOT],
        source=terminal_source,
        online=True,
    )
    return [customer, terminal, customer_spending, terminal_risk]
