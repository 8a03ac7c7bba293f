"""The Feast feature repository of level 4: entity and feature-view definitions.

``definitions(data_dir)`` returns the objects ``feast apply`` would register; their file sources
are parquet files under ``data_dir`` (``artifacts/level4/feast/data``), written by
:mod:`level4_fraud.data.feature_store` as days arrive. The store itself (registry, sqlite
online store)
is configured in code by ``level4_fraud.data.feature_store.open_store`` so every path resolves
into the
artifacts folder; ``feature_store.yaml`` next to this file shows the same configuration for the
``feast`` command line.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from level4_fraud.data.features import CUSTOMER_SNAPSHOT, TERMINAL_SNAPSHOT

CUSTOMER_VIEW, TERMINAL_VIEW = "customer_spending", "terminal_risk"


def definitions(data_dir: str | Path) -> list[Any]:
    """Entities ``customer`` and ``terminal``; views ``customer_spending`` and ``terminal_risk``."""
    from feast import Entity, FeatureView, Field, FileSource
    from feast.types import Float64
    from feast.value_type import ValueType

    data_dir = Path(data_dir)

    # Both views are daily snapshots in a parquet file named after the view. A snapshot is valid
    # for its day only: a one-day TTL keeps a stale row from being served.
    def snapshot_view(name: str, entity: Entity, source: str, columns: list[str]) -> FeatureView:
        return FeatureView(
            name=name,
            entities=[entity],
            ttl=timedelta(days=1),
            schema=[Field(name=c, dtype=Float64) for c in columns],
            source=FileSource(
                name=source,
                path=str(data_dir / f"{name}.parquet"),
                timestamp_field="event_timestamp",
            ),
            online=True,
        )

    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    terminal = Entity(name="terminal", join_keys=["terminal_id"], value_type=ValueType.INT64)
    return [
        customer,
        terminal,
        snapshot_view(CUSTOMER_VIEW, customer, "customer_snapshots", CUSTOMER_SNAPSHOT),
        snapshot_view(TERMINAL_VIEW, terminal, "terminal_snapshots", TERMINAL_SNAPSHOT),
    ]
