"""The generator: seeded, messy on purpose, and churn follows the documented mechanism."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from level2_churn.generate import SOURCES, generate
from tests.level2.conftest import small_config


def test_same_seed_same_bytes(small_raw: Path, tmp_path: Path) -> None:
    cfg = small_config()
    again = generate(tmp_path / "again", cfg.datasets["generated"].generator, cfg.seed)
    for name in SOURCES:
        assert again[name].read_bytes() == (small_raw / f"{name}.csv").read_bytes(), name


def test_other_seed_other_data(small_raw: Path, tmp_path: Path) -> None:
    cfg = small_config()
    other = generate(tmp_path / "other", cfg.datasets["generated"].generator, cfg.seed + 1)
    assert other["usage"].read_bytes() != (small_raw / "usage.csv").read_bytes()


def test_sources_carry_the_promised_mess(small_raw: Path) -> None:
    customers = pd.read_csv(small_raw / "customers.csv", dtype=str)
    billing = pd.read_csv(small_raw / "billing.csv", dtype=str)
    tickets = pd.read_csv(small_raw / "tickets.csv", dtype=str)
    usage = pd.read_csv(small_raw / "usage.csv", dtype=str)
    assert customers["customer_id"].duplicated().any()  # duplicate rows
    assert billing["invoice_id"].duplicated().any()
    assert customers["plan"].nunique() > 3  # inconsistent spellings / casing of 3 plans
    assert billing["amount"].str.contains(r"\$|,| USD").any()  # numbers stored as text
    assert customers["region"].isna().any() and tickets["category"].isna().any()  # missing
    late = pd.to_datetime(usage["loaded_at"]) - pd.to_datetime(usage["ts"].str[:10])
    assert (late.dt.days > 7).any()  # late-arriving records
    assert usage["ts"].str.endswith("Z").all()  # UTC in the usage logs ...
    assert not tickets["opened_at"].str.contains("Z|\\+").any()  # ... naive local time in tickets
    assert (pd.to_numeric(usage["minutes"]) > 24 * 60).any()  # outliers


def test_churners_use_less_before_leaving(small_raw: Path) -> None:
    """The hidden mechanism: usage in the last 30 days before churn is well below 60-90 days."""
    customers = pd.read_csv(small_raw / "customers.csv", parse_dates=["churn_date"])
    customers = customers.drop_duplicates("customer_id").dropna(subset=["churn_date"])
    usage = pd.read_csv(small_raw / "usage.csv")
    usage["day"] = pd.to_datetime(usage["ts"].str[:10])
    usage = usage.merge(customers[["customer_id", "churn_date"]], on="customer_id")
    usage["days_before"] = (usage["churn_date"] - usage["day"]).dt.days
    usage["minutes"] = usage["minutes"].clip(upper=1440)
    late = usage[usage["days_before"].between(0, 29)]["minutes"].sum()
    early = usage[usage["days_before"].between(60, 89)]["minutes"].sum()
    assert late < 0.75 * early
