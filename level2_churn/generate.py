"""A seeded generator of messy multi-source churn data, with a documented hidden mechanism.

It writes four source files, as four separate systems would export them:

- ``customers.csv``  the CRM: plan, contract, region, age, sign-up and cancellation dates
- ``billing.csv``    one invoice per customer per month: amount, payment status, days late
- ``tickets.csv``    support tickets: a free-text subject and a (messy) category
- ``usage.csv``      daily usage logs: minutes and megabytes per active day

The mess real sources have is injected on purpose, at rates set in the config: duplicate rows,
inconsistent category spellings and casing, numbers stored as text (``"$49.99"``, ``"1,204"``),
missing values, late-arriving records (``loaded_at`` weeks after the event), a timezone mismatch
(tickets carry the call centre's naive local time, usage logs carry UTC with a ``Z``), outliers.

The hidden churn mechanism (what a good model should recover):

1. Each month an active customer starts to *drift away* with a hazard that is higher on
   month-to-month contracts, on the premium plan, and in the first year of tenure.
2. A drifting customer cancels 1–3 months later. During that warning period their usage falls
   steadily (to ~30 % of normal by the cancellation), they open ~4x more support tickets (mostly
   network and billing complaints, some asking how to cancel), and they pay late more often.
3. Some customers who never leave have a bad month too (a usage dip and a few tickets), so the
   signal is strong but not perfect.

Everything is vectorised over blocks of ``chunk_customers`` customers and the large usage file is
streamed block by block, so 10x the default size runs in bounded memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from level2_churn.settings import GeneratorSettings
from ml_common.atomic import atomic_dir, write_json
from ml_common.logs import get_logger

log = get_logger(__name__)

SOURCES = ("customers", "billing", "tickets", "usage")
HIDDEN_MECHANISM = {
    "drivers": [
        "usage falling in the months before leaving (usage trend / drop)",
        "more support tickets, mostly network and billing complaints and cancel requests",
        "late payments",
        "month-to-month contract, premium plan, short tenure (hazard of starting to drift)",
    ],
    # The exact generated features (features.event_features) that measure each driver: the
    # *change* in usage, the ticket counts, the late payments, and the hazard's attributes.
    # Usage *levels* (usage_minutes_m2, ...) vary mostly between customers, and region, age,
    # fee and invoice amounts are noise: they are deliberately not in the list.
    "features": {
        "usage": ["usage_trend", "usage_drop", "active_days_trend"],
        "support": [
            "tickets_3m",
            "tickets_m1",
            "tickets_network_3m",
            "tickets_billing_3m",
            "tickets_cancel_3m",
        ],
        "billing": ["late_payments_3m", "unpaid_payments_3m", "days_late_3m"],
        "contract": ["contract", "plan", "tenure_months"],
    },
}
MECHANISM_FEATURES = frozenset(f for names in HIDDEN_MECHANISM["features"].values() for f in names)

PLANS = {"basic": 29.0, "standard": 49.0, "premium": 79.0}
PLAN_SPELLINGS = {
    "basic": ["basic", "Basic", "BASIC", "basic "],
    "standard": ["standard", "Standard", "STANDARD", "std"],
    "premium": ["premium", "Premium", "PREMIUM", "prem."],
}
CONTRACTS = ["month-to-month", "one year", "two year"]
CONTRACT_SPELLINGS = {
    "month-to-month": ["month-to-month", "Month-to-Month", "monthly", "M2M"],
    "one year": ["one year", "One Year", "1 year", "12 months"],
    "two year": ["two year", "Two Year", "2 year", "24 months"],
}
REGIONS = ["north", "south", "east", "west"]
STATUS_SPELLINGS = {
    "paid": ["paid", "PAID", "Paid", "paid "],
    "late": ["late", "LATE", "Late", "paid late"],
    "unpaid": ["unpaid", "UNPAID", "not paid"],
}
TICKET_TOPICS = {
    "network": (
        ["network", "Network", "NETWORK", "netwrk", "connectivity"],
        [
            "internet keeps dropping",
            "no signal at home",
            "slow connection every evening",
            "outage again today",
            "wifi disconnects",
        ],
    ),
    "billing": (
        ["billing", "Billing", "BILLING ", "invoice", "payments"],
        [
            "charged twice this month",
            "bill is higher than expected",
            "refund request",
            "wrong amount on invoice",
            "question about my bill",
        ],
    ),
    "cancel": (
        ["account", "Account", "retention", "cancellation"],
        [
            "how do I cancel my plan",
            "want to close my account",
            "cancel subscription",
            "end my contract early",
            "switching provider",
        ],
    ),
    "other": (
        ["other", "Other", "general", "GENERAL"],
        [
            "change my address",
            "password reset",
            "upgrade options",
            "add a line",
            "update contact details",
        ],
    ),
}


def generate(out_dir: str | Path, settings: GeneratorSettings, seed: int) -> dict[str, Path]:
    """Write the four source files into ``out_dir`` (atomically, as one folder); return their paths.

    The same ``settings`` and ``seed`` write byte-identical files.
    """
    out_dir = Path(out_dir)
    start = pd.Timestamp(settings.start)
    end = start + pd.DateOffset(months=settings.months)
    days = pd.date_range(start, end - pd.Timedelta(days=1), freq="D")
    month_starts = pd.date_range(start, periods=settings.months, freq="MS")
    n_blocks = int(np.ceil(settings.n_customers / settings.chunk_customers))
    with atomic_dir(out_dir) as tmp:
        written = {name: False for name in SOURCES}
        for block in range(n_blocks):
            first = block * settings.chunk_customers
            n = min(settings.chunk_customers, settings.n_customers - first)
            rng = np.random.default_rng([seed, block])
            frames = _block(rng, first, n, days, month_starts, settings)
            for name, frame in frames.items():
                _append_csv(frame, tmp / f"{name}.csv", header=not written[name])
                written[name] = True
            log.info("generated block %d/%d (%d customers)", block + 1, n_blocks, n)
        write_json(
            tmp / "manifest.json",
            {
                "seed": seed,
                "settings": settings.model_dump(),
                "hidden_mechanism": HIDDEN_MECHANISM,
            },
        )
    return {name: out_dir / f"{name}.csv" for name in SOURCES}


def _block(
    rng: np.random.Generator,
    first_id: int,
    n: int,
    days: pd.DatetimeIndex,
    month_starts: pd.DatetimeIndex,
    cfg: GeneratorSettings,
) -> dict[str, pd.DataFrame]:
    ids = np.arange(first_id + 1, first_id + n + 1)
    n_days, n_months = len(days), len(month_starts)
    start = days[0]

    # --- static attributes -------------------------------------------------------------------
    plan = rng.choice(list(PLANS), size=n, p=[0.4, 0.4, 0.2])
    contract = rng.choice(CONTRACTS, size=n, p=[0.55, 0.25, 0.2])
    region = rng.choice(REGIONS, size=n)
    age = rng.normal(45, 14, size=n).clip(18, 90).round()
    # Most customers signed up before the data starts; some join during it.
    signup_offset = np.where(
        rng.random(n) < 0.85, -rng.integers(0, 6 * 365, size=n), rng.integers(0, n_days // 2, n)
    )
    signup = start + pd.to_timedelta(signup_offset, unit="D")
    fee = np.array([PLANS[p] for p in plan]) * rng.uniform(0.9, 1.1, size=n)

    # --- hidden mechanism: when does each customer start drifting away? -----------------------
    tenure_years = np.maximum(-signup_offset, 0) / 365
    logit = (
        -4.6
        + 1.4 * (contract == "month-to-month")
        - 0.6 * (contract == "two year")
        + 0.5 * (plan == "premium")
        + 0.8 * (tenure_years < 1)
        + rng.normal(0, 0.3, size=n)
    )
    hazard = 1 / (1 + np.exp(-logit))  # per month
    drift_draw = rng.random((n, n_months)) < hazard[:, None]
    drift_month = np.where(drift_draw.any(axis=1), drift_draw.argmax(axis=1), -1)
    warning_days = rng.integers(30, 92, size=n)
    drift_day = np.where(
        drift_month >= 0,
        (month_starts[np.maximum(drift_month, 0)] - start).days + rng.integers(0, 28, size=n),
        -1,
    )
    drift_day = np.maximum(drift_day, np.maximum(signup_offset, 0) + 1)
    churn_day = np.where(drift_month >= 0, drift_day + warning_days, n_days + 10_000)
    churned = churn_day < n_days
    signup_day = np.maximum(signup_offset, 0)

    # --- daily usage: a customers x days matrix, decaying during the warning period -----------
    day_idx = np.arange(n_days)[None, :]
    active = (day_idx >= signup_day[:, None]) & (day_idx < churn_day[:, None])
    in_warning = (day_idx >= drift_day[:, None]) & active & (drift_month[:, None] >= 0)
    progress = np.clip((day_idx - drift_day[:, None]) / warning_days[:, None], 0, 1)
    decay = np.where(in_warning, 1 - 0.7 * progress, 1.0)
    # Noise: a bad month for about 8 % of the loyal customers.
    dip_start = rng.integers(0, n_days, size=n)
    has_dip = rng.random(n) < 0.08
    in_dip = (
        has_dip[:, None] & (day_idx >= dip_start[:, None]) & (day_idx < dip_start[:, None] + 30)
    )
    decay = decay * np.where(in_dip, 0.6, 1.0)
    base_minutes = rng.lognormal(3.2, 0.5, size=n)
    p_use = rng.uniform(0.35, 0.8, size=n)
    weekday = np.where(days.dayofweek.to_numpy() >= 5, 1.3, 1.0)[None, :]
    used = active & (rng.random((n, n_days)) < p_use[:, None] * np.sqrt(decay))
    minutes = base_minutes[:, None] * weekday * decay * rng.gamma(4, 0.25, size=(n, n_days))
    cust_i, day_i = np.nonzero(used)
    usage = pd.DataFrame(
        {
            "customer_id": ids[cust_i],
            "ts": days[day_i] + pd.to_timedelta(rng.integers(0, 86_400, len(day_i)), unit="s"),
            "minutes": minutes[cust_i, day_i].round(1),
        }
    )
    usage["data_mb"] = (usage["minutes"] * rng.uniform(2, 8, len(usage))).round(0)
    usage["loaded_at"] = _loaded_at(rng, usage["ts"], cfg.late_rate)
    usage["minutes"] = _outliers(rng, usage["minutes"], cfg.outlier_rate, 100)
    usage["ts"] = usage["ts"].dt.tz_localize("UTC")  # written with an explicit Z
    usage["minutes"] = _missing(rng, usage["minutes"], cfg.missing_rate)

    # --- billing: one invoice per active month ------------------------------------------------
    month_day = np.array([(m - start).days for m in month_starts])
    billed = (month_day[None, :] >= signup_day[:, None] - 27) & (
        month_day[None, :] < churn_day[:, None]
    )
    cust_b, month_b = np.nonzero(billed)
    warn_b = (month_day[month_b] >= drift_day[cust_b] - 10) & (drift_month[cust_b] >= 0)
    dip_b = has_dip[cust_b] & (np.abs(month_day[month_b] - dip_start[cust_b]) < 30)
    p_late = np.where(warn_b, 0.35, np.where(dip_b, 0.15, 0.06))
    u = rng.random(len(cust_b))
    status = np.where(u < p_late * 0.25, "unpaid", np.where(u < p_late, "late", "paid"))
    days_late = np.where(status == "late", rng.integers(3, 40, len(u)), 0)
    amount = fee[cust_b] * rng.uniform(0.97, 1.05, len(u))
    invoice_date = month_starts[month_b]
    billing = pd.DataFrame(
        {
            "invoice_id": [f"INV-{ids[c]}-{m:02d}" for c, m in zip(cust_b, month_b, strict=True)],
            "customer_id": ids[cust_b],
            "invoice_date": invoice_date,
            "amount": _outliers(rng, pd.Series(amount.round(2)), cfg.outlier_rate, 20),
            "status": _spell(rng, status, STATUS_SPELLINGS),
            "days_late": days_late,
        }
    )
    billing["loaded_at"] = _loaded_at(rng, billing["invoice_date"], cfg.late_rate, min_days=1)
    billing["amount"] = _as_text_numbers(rng, billing["amount"], money=True)

    # --- support tickets: Poisson per customer-month, 4x during the warning period ------------
    alive_m = (month_day[None, :] + 30 > signup_day[:, None]) & (
        month_day[None, :] < churn_day[:, None]
    )
    warn_m = (month_day[None, :] + 30 > drift_day[:, None]) & (drift_month[:, None] >= 0) & alive_m
    dip_m = has_dip[:, None] & (np.abs(month_day[None, :] - dip_start[:, None]) < 30)
    rate = np.where(warn_m, 0.9, np.where(dip_m, 0.5, 0.12)) * alive_m
    counts = rng.poisson(rate)
    cust_t, month_t = np.nonzero(counts)
    reps = counts[cust_t, month_t]
    cust_t, month_t = np.repeat(cust_t, reps), np.repeat(month_t, reps)
    warn_t = warn_m[cust_t, month_t]
    topic = np.where(
        warn_t,
        rng.choice(["network", "billing", "cancel", "other"], len(cust_t), p=[0.4, 0.3, 0.2, 0.1]),
        rng.choice(
            ["network", "billing", "cancel", "other"], len(cust_t), p=[0.3, 0.3, 0.03, 0.37]
        ),
    )
    offset_s = rng.integers(0, 30 * 86_400, len(cust_t))
    opened_utc = month_starts[month_t] + pd.to_timedelta(offset_s, unit="s")
    before_churn = (opened_utc - start).days < churn_day[cust_t]
    cust_t, topic, opened_utc = cust_t[before_churn], topic[before_churn], opened_utc[before_churn]
    opened_local = (
        opened_utc.tz_localize("UTC").tz_convert(cfg.local_timezone).tz_localize(None)
    )  # the ticket system stores naive local time: the timezone mismatch
    tickets = pd.DataFrame(
        {
            "ticket_id": np.arange(len(cust_t)) + first_id * 100 + 1,
            "customer_id": ids[cust_t],
            "opened_at": opened_local,
            "category": [
                TICKET_TOPICS[t][0][k]
                for t, k in zip(topic, rng.integers(0, 4, len(topic)), strict=True)
            ],
            "subject": [
                TICKET_TOPICS[t][1][k]
                for t, k in zip(topic, rng.integers(0, 5, len(topic)), strict=True)
            ],
        }
    )
    tickets["loaded_at"] = _loaded_at(rng, pd.Series(opened_utc), cfg.late_rate)
    tickets["category"] = _missing(rng, tickets["category"].astype(object), 0.1)

    # --- customers: the CRM export -----------------------------------------------------------
    churn_date = pd.Series(start + pd.to_timedelta(np.where(churned, churn_day, 0), unit="D"))
    churn_date = churn_date.where(churned, pd.NaT)
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": pd.Series(signup),
            "plan": _spell(rng, plan, PLAN_SPELLINGS),
            "contract": _spell(rng, contract, CONTRACT_SPELLINGS),
            "region": _missing(rng, pd.Series(region, dtype=object), cfg.missing_rate),
            "age": _missing(
                rng, _outliers(rng, pd.Series(age), cfg.outlier_rate * 5, 10), cfg.missing_rate
            ),
            "monthly_fee": _as_text_numbers(rng, pd.Series(fee.round(2)), money=True),
            "churn_date": churn_date,
        }
    )
    return {
        "customers": _duplicates(rng, customers, cfg.duplicate_rate),
        "billing": _duplicates(rng, billing, cfg.duplicate_rate),
        "tickets": _duplicates(rng, tickets, cfg.duplicate_rate),
        "usage": _duplicates(rng, usage, cfg.duplicate_rate),
    }


def _spell(rng: np.random.Generator, values: np.ndarray, spellings: dict[str, list[str]]) -> list:
    """Replace each canonical value by one of its spellings (mostly the canonical one)."""
    picks = rng.random(len(values))
    pos = rng.integers(1, 4, len(values))
    return [
        spellings[v][0] if p < 0.7 else spellings[v][min(k, len(spellings[v]) - 1)]
        for v, p, k in zip(values, picks, pos, strict=True)
    ]


def _loaded_at(
    rng: np.random.Generator, event: pd.Series, late_rate: float, min_days: int = 0
) -> pd.Series:
    """When the record reached the warehouse: same or next day, a few weeks later when late."""
    delay = rng.integers(min_days, min_days + 2, len(event))
    late = rng.random(len(event)) < late_rate
    delay = np.where(late, rng.integers(10, 45, len(event)), delay)
    loaded = pd.to_datetime(event).dt.tz_localize(None) + pd.to_timedelta(delay, unit="D")
    return loaded.dt.normalize()


def _outliers(rng: np.random.Generator, values: pd.Series, rate: float, factor: float) -> pd.Series:
    hit = rng.random(len(values)) < rate
    return values.where(~hit, values * factor)


def _missing(rng: np.random.Generator, values: pd.Series, rate: float) -> pd.Series:
    return values.where(rng.random(len(values)) >= rate, None)


def _as_text_numbers(rng: np.random.Generator, values: pd.Series, money: bool) -> pd.Series:
    """Numbers as text, as exports write them: ``$49.99``, ``1,204.50``, ``49.99 USD``."""
    style = rng.integers(0, 4, len(values))
    plain = values.map(lambda v: f"{v:.2f}")
    text = np.select(
        [style == 1, style == 2, style == 3],
        [
            "$" + plain,
            values.map(lambda v: f"{v:,.2f}"),
            plain + (" USD" if money else ""),
        ],
        default=plain,
    )
    return pd.Series(text, index=values.index)


def _duplicates(rng: np.random.Generator, frame: pd.DataFrame, rate: float) -> pd.DataFrame:
    """Repeat a fraction of rows right after themselves (exports that retried a page)."""
    repeat = np.where(rng.random(len(frame)) < rate, 2, 1)
    return frame.loc[frame.index.repeat(repeat)].reset_index(drop=True)


def _append_csv(frame: pd.DataFrame, path: Path, header: bool) -> None:
    """Append ``frame`` to a CSV with pyarrow (10x faster than pandas on the usage logs).

    Datetimes at midnight are written as dates, others to the second; UTC ones end in ``Z``.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, name in enumerate(table.column_names):
        kind = table.schema.field(i).type
        if pa.types.is_timestamp(kind):
            is_date = name.endswith("_date") or name == "loaded_at"
            target = pa.date32() if is_date else pa.timestamp("s", tz=kind.tz)
            column = table.column(i)
            if is_date and kind.tz is None:
                column = column.cast(pa.timestamp("s")).cast(pa.date32())
            else:
                column = column.cast(target)
            table = table.set_column(i, name, column)
    options = pacsv.WriteOptions(include_header=header, quoting_style="needed")
    with open(path, "ab") as handle:
        pacsv.write_csv(table, handle, options)


def read_manifest(raw_dir: str | Path) -> dict:
    """The generator's manifest (seed, settings, hidden mechanism) written beside the files."""
    return json.loads((Path(raw_dir) / "manifest.json").read_text())
