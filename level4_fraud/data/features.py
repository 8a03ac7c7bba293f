"""Time-aware features, computed a day at a time so no feature ever sees the future.

The handbook's fifteen features:

- the transaction itself: ``tx_amount``, ``tx_during_weekend``, ``tx_during_night`` (before 6 am);
- the customer's spending windows, ``w`` ∈ {1, 7, 30} days: ``customer_nb_tx_{w}d`` and
  ``customer_avg_amount_{w}d`` over the current day up to and including this transaction plus the
  ``w − 1`` previous whole days (calendar-day windows: that is what can be served online);
- the terminal's risk windows with the label delay (``delay_days``, 7 as in the handbook):
  ``terminal_nb_tx_{w}d`` and ``terminal_risk_{w}d`` (share of fraud) over the ``w`` whole days that
  end ``delay_days`` before today: labels arrive late, so today's model may only use those.

How the values are split (the same split the feature store serves):

- **snapshots** taken at the start of each day, one row per customer and per terminal
  (:meth:`FeatureBuilder.customer_snapshot`, :meth:`FeatureBuilder.terminal_snapshot`): the
  customer's count and amount over previous whole days, the terminal's delayed counts and frauds.
  These are what the Feast offline store holds (point-in-time joins for training) and what
  ``materialize`` copies into the online store (scoring).
- the **intraday** part (the customer's transactions earlier today), added to the snapshot by
  :func:`combine` — in batch from the day's frame, online from the service's running counters.

Interface (stable; level 4 part 2 builds on it):

- ``FEATURES`` — the model's input columns, in order.
- :class:`FeatureBuilder` (``n_customers``, ``n_terminals``, ``delay_days``) — ``transform_day``
  turns one day's transactions into feature rows and then records that day; call it on
  consecutive days.
- :func:`build_features` — stream a simulator's days through a builder, yielding one feature frame
  per day; :func:`features_frame` concatenates them for small runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

WINDOWS = (1, 7, 30)
NIGHT_END_SECONDS = 6 * 3600
FEATURES = [
    "tx_amount",
    "tx_during_weekend",
    "tx_during_night",
    *[f"customer_nb_tx_{w}d" for w in WINDOWS],
    *[f"customer_avg_amount_{w}d" for w in WINDOWS],
    *[f"terminal_nb_tx_{w}d" for w in WINDOWS],
    *[f"terminal_risk_{w}d" for w in WINDOWS],
]
# Snapshot columns (one row per entity per day) — the feature store's feature views.
CUSTOMER_SNAPSHOT = [
    c
    for w in WINDOWS
    if w > 1
    for c in (f"customer_nb_tx_prev_{w - 1}d", f"customer_amount_prev_{w - 1}d")
]
TERMINAL_SNAPSHOT = [c for w in WINDOWS for c in (f"terminal_nb_tx_{w}d", f"terminal_risk_{w}d")]
LABEL = "tx_fraud"


def as_matrix(X: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Feature rows as a float32 array (a frame is reduced to ``FEATURES`` in order)."""
    if isinstance(X, pd.DataFrame):
        X = X[FEATURES].to_numpy()
    return np.ascontiguousarray(X, dtype=np.float32)


class FeatureBuilder:
    """Running per-day aggregates of customers and terminals; turns days into feature rows.

    Args:
        n_customers: customer ids are ``0 … n_customers − 1``.
        n_terminals: terminal ids are ``0 … n_terminals − 1``.
        delay_days: days before a transaction's label may be used (handbook: 7).
        start_datetime: the simulation's day 0 (snapshots are stamped at each day's start).
    """

    def __init__(
        self,
        n_customers: int,
        n_terminals: int,
        delay_days: int = 7,
        start_datetime: str | pd.Timestamp = "2026-04-01",
    ) -> None:
        self.n_customers = n_customers
        self.n_terminals = n_terminals
        self.delay_days = delay_days
        self.start = pd.Timestamp(start_datetime)
        self._keep = max(WINDOWS) + delay_days + 1
        self._customer_count: dict[int, np.ndarray] = {}
        self._customer_amount: dict[int, np.ndarray] = {}
        self._terminal_count: dict[int, np.ndarray] = {}
        self._terminal_fraud: dict[int, np.ndarray] = {}
        self.last_day: int | None = None

    # -- snapshots at the start of a day -------------------------------------------------------
    def _window_sum(self, store: dict[int, np.ndarray], days: range, size: int) -> np.ndarray:
        total = np.zeros(size)
        for d in days:
            if d in store:
                total += store[d]
        return total

    def customer_arrays(self, day: int) -> dict[str, np.ndarray]:
        """Customer counts and amounts over the ``w − 1`` whole days before ``day``."""
        out = {}
        for w in WINDOWS:
            if w == 1:
                continue
            days = range(day - (w - 1), day)
            out[f"customer_nb_tx_prev_{w - 1}d"] = self._window_sum(
                self._customer_count, days, self.n_customers
            )
            out[f"customer_amount_prev_{w - 1}d"] = self._window_sum(
                self._customer_amount, days, self.n_customers
            )
        return out

    def terminal_arrays(self, day: int) -> dict[str, np.ndarray]:
        """Terminal counts and fraud shares over ``w`` days ending ``delay_days`` before ``day``."""
        out = {}
        end = day - self.delay_days  # exclusive: days < end were labelled delay_days ago
        for w in WINDOWS:
            days = range(end - w, end)
            count = self._window_sum(self._terminal_count, days, self.n_terminals)
            fraud = self._window_sum(self._terminal_fraud, days, self.n_terminals)
            out[f"terminal_nb_tx_{w}d"] = count
            out[f"terminal_risk_{w}d"] = np.divide(
                fraud, count, out=np.zeros_like(fraud), where=count > 0
            )
        return out

    def day_start(self, day: int) -> pd.Timestamp:
        """The timestamp of ``day``'s start, when its snapshots become valid."""
        return self.start + pd.Timedelta(days=day)

    def customer_snapshot(self, day: int) -> pd.DataFrame:
        """One row per customer: the feature-store view ``customer_spending`` at ``day``'s start."""
        frame = pd.DataFrame(self.customer_arrays(day))
        frame.insert(0, "customer_id", np.arange(self.n_customers, dtype=np.int64))
        frame["event_timestamp"] = self.day_start(day)
        return frame

    def terminal_snapshot(self, day: int) -> pd.DataFrame:
        """One row per terminal: the feature-store view ``terminal_risk`` at ``day``'s start."""
        frame = pd.DataFrame(self.terminal_arrays(day))
        frame.insert(0, "terminal_id", np.arange(self.n_terminals, dtype=np.int64))
        frame["event_timestamp"] = self.day_start(day)
        return frame

    # -- a day's transactions ------------------------------------------------------------------
    def transform_day(self, transactions: pd.DataFrame, record: bool = True) -> pd.DataFrame:
        """Feature rows for one day's transactions (sorted by time), then record the day.

        Args:
            transactions: one day's frame from the simulator (all rows share ``tx_time_days``).
            record: add the day to the running aggregates (``False`` to score without learning).

        Returns:
            The transactions with the ``FEATURES`` columns added.
        """
        if transactions.empty:
            return transactions.assign(**{f: pd.Series(dtype=float) for f in FEATURES})
        days = transactions["tx_time_days"].unique()
        if len(days) != 1:
            raise ValueError(f"transform_day expects one day, got days {sorted(days)[:5]}")
        day = int(days[0])
        if self.last_day is not None and day != self.last_day + 1:
            raise ValueError(f"days must arrive in order: got day {day} after {self.last_day}")
        customer = {
            k: v[transactions["customer_id"].to_numpy()]
            for k, v in self.customer_arrays(day).items()
        }
        terminal = {
            k: v[transactions["terminal_id"].to_numpy()]
            for k, v in self.terminal_arrays(day).items()
        }
        out = combine(transactions, {**customer, **terminal})
        if record:
            self.record_day(transactions, day)
        return out

    def record_day(self, transactions: pd.DataFrame, day: int) -> None:
        """Add a day's transactions (and labels, used only after the delay) to the aggregates."""
        cust = transactions["customer_id"].to_numpy()
        term = transactions["terminal_id"].to_numpy()
        amount = transactions["tx_amount"].to_numpy(dtype=float)
        self._customer_count[day] = np.bincount(cust, minlength=self.n_customers).astype(float)
        self._customer_amount[day] = np.bincount(cust, weights=amount, minlength=self.n_customers)
        self._terminal_count[day] = np.bincount(term, minlength=self.n_terminals).astype(float)
        self._terminal_fraud[day] = np.bincount(
            term, weights=transactions[LABEL].to_numpy(dtype=float), minlength=self.n_terminals
        )
        for store in (
            self._customer_count,
            self._customer_amount,
            self._terminal_count,
            self._terminal_fraud,
        ):
            for old in [d for d in store if d <= day - self._keep]:
                del store[old]
        self.last_day = day


def combine(transactions: pd.DataFrame, snapshot: dict[str, np.ndarray]) -> pd.DataFrame:
    """Add ``FEATURES`` to one day's transactions from their snapshot values plus intraday counts.

    Args:
        transactions: one day's transactions sorted by time (``customer_id``, ``tx_amount``,
            ``tx_datetime``, ``tx_time_seconds``).
        snapshot: per-transaction arrays of the snapshot columns (``CUSTOMER_SNAPSHOT`` and
            ``TERMINAL_SNAPSHOT``), e.g. from a point-in-time join.
    """
    out = transactions.copy()
    amount = out["tx_amount"].to_numpy(dtype=float)
    grouped = out.groupby("customer_id", sort=False)["tx_amount"]
    today_count = grouped.cumcount().to_numpy() + 1.0  # this transaction included
    today_amount = grouped.cumsum().to_numpy()
    out["tx_during_weekend"] = (out["tx_datetime"].dt.weekday >= 5).astype(np.int8)
    seconds_of_day = out["tx_time_seconds"].to_numpy() % 86_400
    out["tx_during_night"] = (seconds_of_day < NIGHT_END_SECONDS).astype(np.int8)
    for w in WINDOWS:
        count, total = today_count.copy(), today_amount.copy()
        if w > 1:
            count += np.asarray(snapshot[f"customer_nb_tx_prev_{w - 1}d"], dtype=float)
            total += np.asarray(snapshot[f"customer_amount_prev_{w - 1}d"], dtype=float)
        out[f"customer_nb_tx_{w}d"] = count
        out[f"customer_avg_amount_{w}d"] = total / count
    for name in TERMINAL_SNAPSHOT:
        out[name] = np.asarray(snapshot[name], dtype=float)
    out["tx_amount"] = amount
    return out


def build_features(
    simulator: object,
    start: int = 0,
    stop: int | None = None,
    builder: FeatureBuilder | None = None,
    *,
    progress: bool = False,
) -> Iterator[pd.DataFrame]:
    """Stream a :class:`~level4_fraud.data.simulate.TransactionSimulator` through a builder.

    Starts after the builder's last recorded day. Days before ``start`` are only recorded
    (features need up to 30 + delay days of history); ``progress`` shows a bar over the days.
    """
    cfg = simulator.config  # type: ignore[attr-defined]
    builder = builder or FeatureBuilder(
        cfg.n_customers, cfg.n_terminals, start_datetime=cfg.start_date
    )
    first = builder.last_day + 1 if builder.last_day is not None else 0
    stop = cfg.n_days if stop is None else stop
    days = simulator.iter_days(first, stop)  # type: ignore[attr-defined]
    for frame in tqdm(
        days, total=max(stop - first, 0), desc="features", unit="day", disable=not progress
    ):
        day = int(frame["tx_time_days"].iloc[0]) if len(frame) else None
        if day is not None and day < start:
            builder.record_day(frame, day)
            continue
        yield builder.transform_day(frame)


def features_frame(simulator: object, start: int = 0, stop: int | None = None) -> pd.DataFrame:
    """All feature rows of days ``start … stop − 1`` in one frame (for small simulations)."""
    return pd.concat(list(build_features(simulator, start, stop)), ignore_index=True)
