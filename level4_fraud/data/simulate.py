"""A seeded payment-card transaction simulator, streamed one day at a time.

The design follows the one described in the *Reproducible Machine Learning for Credit Card Fraud
Detection* handbook (Le Borgne et al.), written here from its description:

- **customers** live at a point ``(x, y)`` of a 100×100 square and have a spending profile: a mean
  amount (uniform 5–100), a standard deviation (half the mean) and a mean number of transactions
  per day (uniform 0–4);
- **terminals** live at points of the same square; a customer pays only at terminals within
  ``radius`` of home;
- each **day** a customer makes ``Poisson(mean_nb_tx_per_day)`` transactions at random terminals
  among the reachable ones, at times of day drawn around noon, with normally distributed amounts
  (a negative draw is redrawn uniformly in ``[0, 2 × mean]``).

Three fraud scenarios label transactions (``tx_fraud_scenario`` 1–3; a later one overrides):

1. every amount above ``amount_threshold`` (220) is fraud;
2. each day ``n_compromised_terminals`` terminals are compromised; all their transactions in the
   next 28 days are fraud;
3. each day ``n_compromised_customers`` customers have their credentials leaked; for the next 14
   days a third of their transactions have their amount multiplied by 5 and are fraud.

Two switches make the world drift (both off by default):

- ``new_pattern_day``: from that day, scenario 4, **card testing**: each day a few customers'
  cards are tested by a fraudster with a night-time burst of tiny payments at random terminals
  anywhere on the map. A model trained before that day has never seen it.
- ``seasonal_day``: from that day, a harmless change in the legitimate population: customers spend
  more (amounts × ``seasonal_amount_factor`` and transactions per day ×
  ``seasonal_tx_factor``, ramped in over ``seasonal_ramp_days``). The fraud mechanisms keep their
  counts: scenario 1's "unusually large amount" threshold rises with the same factor (otherwise
  ordinary payments pushed over 220 would become fraud by the rule and double the fraud rate).
  A drift detector must not call this fraud drift.

Interface (stable; level 4 part 2 builds on it):

- :class:`SimulationConfig` (pydantic) — all knobs, seed and size.
- :class:`TransactionSimulator` — ``customers`` and ``terminals`` frames, ``day(d)`` →
  one day's transactions, ``iter_days(start, stop)`` streaming generator, ``simulate(n_days)``
  → a concatenated frame for small runs.

Every day is generated from a random stream keyed by ``(seed, day)``; compromised terminals and
customers of day ``d`` depend only on the draws of the days before, also keyed by day. So any day
can be produced alone, in any order, and the same seed gives the same data, which is what lets
10M transactions stream without ever sitting in memory.

Columns of a day's frame: ``tx_id`` (int64, unique and increasing over the whole simulation),
``tx_datetime`` (datetime64), ``customer_id``, ``terminal_id`` (int64), ``tx_amount`` (float),
``tx_time_seconds`` (seconds since the start), ``tx_time_days`` (day index), ``tx_fraud``
(0/1), ``tx_fraud_scenario`` (0 legitimate, 1–4 scenario).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from level4_fraud.config import SimulationConfig

SECONDS_PER_DAY = 86_400
COLUMNS = [
    "tx_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "tx_amount",
    "tx_time_seconds",
    "tx_time_days",
    "tx_fraud",
    "tx_fraud_scenario",
]
# Stream identifiers inside one day's generator keys, so draws never collide.
_LEGIT, _TERMINALS, _CUSTOMERS, _SCENARIO3, _PATTERN, _PATTERN_PICK, _PATTERN_COUNT = range(7)


class TransactionSimulator:
    """Customers, terminals and a day-by-day transaction stream, all from one seed.

    Args:
        config: the simulated world's settings.
    """

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self.config = config or SimulationConfig()
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 999_999])
        mean_amount = rng.uniform(5, 100, cfg.n_customers)
        self.customers = pd.DataFrame(
            {
                "customer_id": np.arange(cfg.n_customers, dtype=np.int64),
                "x": rng.uniform(0, 100, cfg.n_customers),
                "y": rng.uniform(0, 100, cfg.n_customers),
                "mean_amount": mean_amount,
                "std_amount": mean_amount / 2,
                "mean_nb_tx_per_day": rng.uniform(0, 4, cfg.n_customers),
            }
        )
        self.terminals = pd.DataFrame(
            {
                "terminal_id": np.arange(cfg.n_terminals, dtype=np.int64),
                "x": rng.uniform(0, 100, cfg.n_terminals),
                "y": rng.uniform(0, 100, cfg.n_terminals),
            }
        )
        # Reachable terminals of all customers in one flat array (customer c's are the slice
        # starting at _reach_start[c], _reach_count[c] long), so a day draws them vectorised.
        reachable = self._reachable_terminals()
        self._reach_count = np.array([len(r) for r in reachable], dtype=np.int64)
        self._reach_start = np.cumsum(self._reach_count) - self._reach_count
        self._reach_flat = np.concatenate(reachable)
        self._start = pd.Timestamp(cfg.start_date)
        # Expected transactions per day so tx_id ranges per day never overlap: a generous bound.
        self._id_stride = int(max(1000, 40 * cfg.n_customers))

    # -- the static world -------------------------------------------------------------------
    def _reachable_terminals(self) -> list[np.ndarray]:
        """For each customer, the terminals within ``radius`` (grid-bucketed, no N×M matrix)."""
        cfg = self.config
        cell = cfg.radius
        tx, ty = self.terminals["x"].to_numpy(), self.terminals["y"].to_numpy()
        n_cells = int(np.ceil(100 / cell)) + 1
        cx, cy = (tx // cell).astype(int), (ty // cell).astype(int)
        order = np.lexsort((cy, cx))
        keys = cx[order] * n_cells + cy[order]
        reachable = []
        for x, y in zip(self.customers["x"], self.customers["y"], strict=True):
            gx, gy = int(x // cell), int(y // cell)
            cand = []
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    k = (gx + dx) * n_cells + (gy + dy)
                    lo, hi = np.searchsorted(keys, k), np.searchsorted(keys, k, side="right")
                    cand.append(order[lo:hi])
            idx = np.concatenate(cand)
            dist = np.hypot(tx[idx] - x, ty[idx] - y)
            reachable.append(np.sort(idx[dist < cfg.radius]))
        return reachable

    def _rng(self, day: int, stream: int) -> np.random.Generator:
        # Days before 0 (the fraud processes start in steady state) get their own offset keys.
        return np.random.default_rng([self.config.seed, day + 1_000_000, stream])

    def compromised_terminals(self, day: int) -> np.ndarray:
        """Terminals whose transactions on ``day`` are fraud (scenario 2)."""
        cfg = self.config
        return self._compromised(
            day,
            _TERMINALS,
            cfg.n_terminals,
            cfg.n_compromised_terminals,
            cfg.terminal_compromise_days,
        )

    def compromised_customers(self, day: int) -> np.ndarray:
        """Customers whose credentials are in fraudsters' hands on ``day`` (scenario 3)."""
        cfg = self.config
        return self._compromised(
            day,
            _CUSTOMERS,
            cfg.n_customers,
            cfg.n_compromised_customers,
            cfg.customer_compromise_days,
        )

    def _compromised(
        self, day: int, stream: int, population: int, per_day: int, lasts_days: int
    ) -> np.ndarray:
        # Each day draws ``per_day`` new victims; a victim stays compromised for ``lasts_days``.
        picks = [
            self._rng(d, stream).choice(population, size=min(per_day, population), replace=False)
            for d in range(day - lasts_days + 1, day + 1)
        ]
        return np.unique(np.concatenate(picks)) if picks else np.empty(0, dtype=np.int64)

    def seasonal_factor(self, day: int) -> tuple[float, float]:
        """(amount factor, transactions-per-day factor) of the seasonal change on ``day``."""
        cfg = self.config
        if cfg.seasonal_day is None or day < cfg.seasonal_day:
            return 1.0, 1.0
        ramp = min(1.0, (day - cfg.seasonal_day + 1) / cfg.seasonal_ramp_days)
        return (
            1 + ramp * (cfg.seasonal_amount_factor - 1),
            1 + ramp * (cfg.seasonal_tx_factor - 1),
        )

    # -- one day ----------------------------------------------------------------------------
    def day(self, day: int) -> pd.DataFrame:
        """All transactions of ``day`` (0-based), sorted by time, with labels."""
        cfg = self.config
        rng = self._rng(day, _LEGIT)
        amount_factor, tx_factor = self.seasonal_factor(day)
        cust = self.customers
        n_tx = rng.poisson(cust["mean_nb_tx_per_day"].to_numpy() * tx_factor)
        n_tx = np.where(self._reach_count > 0, n_tx, 0)
        customer_id = np.repeat(cust["customer_id"].to_numpy(), n_tx)
        total = int(n_tx.sum())
        seconds = rng.normal(SECONDS_PER_DAY / 2, 20_000, total)
        mean = cust["mean_amount"].to_numpy()[customer_id] * amount_factor
        std = cust["std_amount"].to_numpy()[customer_id] * amount_factor
        amount = rng.normal(mean, std)
        negative = amount < 0
        amount[negative] = rng.uniform(0, 2 * mean[negative])
        pick = rng.random(total)  # a uniform choice among the customer's reachable terminals
        offset = (pick * self._reach_count[customer_id]).astype(np.int64)
        terminal_id = self._reach_flat[self._reach_start[customer_id] + offset]
        keep = (seconds > 0) & (seconds < SECONDS_PER_DAY)  # the handbook drops out-of-day times
        frame = pd.DataFrame(
            {
                "customer_id": customer_id[keep],
                "terminal_id": terminal_id[keep],
                "tx_amount": np.round(amount[keep], 2),
                "tx_seconds_of_day": seconds[keep].astype(np.int64),
            }
        )
        frame["tx_fraud"] = 0
        frame["tx_fraud_scenario"] = 0
        frame = self._apply_fraud(frame, day)
        if cfg.new_pattern_day is not None and day >= cfg.new_pattern_day:
            frame = pd.concat([frame, self._card_testing(day)], ignore_index=True)
        frame = frame.sort_values(["tx_seconds_of_day", "customer_id"], kind="stable")
        frame = frame.reset_index(drop=True)
        seconds_total = day * SECONDS_PER_DAY + frame.pop("tx_seconds_of_day").to_numpy()
        frame["tx_time_seconds"] = seconds_total
        frame["tx_time_days"] = day
        frame["tx_datetime"] = self._start + pd.to_timedelta(seconds_total, unit="s")
        frame["tx_id"] = day * self._id_stride + np.arange(len(frame), dtype=np.int64)
        frame["tx_fraud"] = frame["tx_fraud"].astype(np.int8)
        frame["tx_fraud_scenario"] = frame["tx_fraud_scenario"].astype(np.int8)
        return frame[COLUMNS]

    def _apply_fraud(self, frame: pd.DataFrame, day: int) -> pd.DataFrame:
        cfg = self.config
        # The threshold follows the season's spending level so the rule labels as many payments.
        threshold = cfg.amount_threshold * self.seasonal_factor(day)[0]
        over = frame["tx_amount"].to_numpy() > threshold
        frame.loc[over, ["tx_fraud", "tx_fraud_scenario"]] = (1, 1)
        bad_terminal = frame["terminal_id"].isin(self.compromised_terminals(day)).to_numpy()
        frame.loc[bad_terminal, ["tx_fraud", "tx_fraud_scenario"]] = (1, 2)
        leaked = frame["customer_id"].isin(self.compromised_customers(day)).to_numpy()
        chosen = leaked & (self._rng(day, _SCENARIO3).random(len(frame)) < cfg.customer_fraud_share)
        frame.loc[chosen, "tx_amount"] = np.round(
            frame.loc[chosen, "tx_amount"] * cfg.customer_fraud_multiplier, 2
        )
        frame.loc[chosen, ["tx_fraud", "tx_fraud_scenario"]] = (1, 3)
        return frame

    def _card_testing(self, day: int) -> pd.DataFrame:
        """Scenario 4: night-time bursts of tiny payments on tested cards, at far terminals."""
        cfg = self.config
        rng = self._rng(day, _PATTERN)
        whole = int(cfg.new_pattern_cards_per_day)
        extra = cfg.new_pattern_cards_per_day - whole
        if extra > 0:  # the fractional part: one more card on that share of days
            whole += int(self._rng(day, _PATTERN_COUNT).random() < extra)
        n_cards = min(whole, cfg.n_customers)
        cards = self._rng(day, _PATTERN_PICK).choice(cfg.n_customers, n_cards, replace=False)
        bursts = rng.integers(cfg.new_pattern_burst[0], cfg.new_pattern_burst[1] + 1, n_cards)
        customer_id = np.repeat(cards, bursts)
        start = np.repeat(rng.uniform(3600, 4 * 3600, n_cards), bursts)
        offset = rng.uniform(0, 1800, len(customer_id))  # a burst lasts at most half an hour
        lo, hi = cfg.new_pattern_amount
        return pd.DataFrame(
            {
                "customer_id": customer_id.astype(np.int64),
                "terminal_id": rng.integers(0, cfg.n_terminals, len(customer_id)),
                "tx_amount": np.round(rng.uniform(lo, hi, len(customer_id)), 2),
                "tx_seconds_of_day": (start + offset).astype(np.int64),
                "tx_fraud": 1,
                "tx_fraud_scenario": 4,
            }
        )

    # -- streams ----------------------------------------------------------------------------
    def iter_days(self, start: int = 0, stop: int | None = None) -> Iterator[pd.DataFrame]:
        """Yield each day's transactions from ``start`` to ``stop`` (default ``n_days``)."""
        stop = self.config.n_days if stop is None else stop
        for d in range(start, stop):
            yield self.day(d)

    def simulate(self, n_days: int | None = None) -> pd.DataFrame:
        """All transactions of the first ``n_days`` days in one frame (for small runs)."""
        return pd.concat(list(self.iter_days(0, n_days)), ignore_index=True)


def simulate_to_parquet(config: SimulationConfig, path: str, *, progress: bool = True) -> int:
    """Stream the whole simulation into one parquet file, a day at a time; return the row count.

    Memory stays at one day's transactions however large ``n_days × n_customers`` is.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from ml_common.atomic import atomic_write

    sim = TransactionSimulator(config)
    rows = 0
    with atomic_write(path, "wb") as handle:
        writer = None
        for frame in tqdm(
            sim.iter_days(), total=config.n_days, disable=not progress, desc="simulate", unit="day"
        ):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(handle, table.schema)
            writer.write_table(table)
            rows += len(frame)
        if writer is not None:
            writer.close()
    return rows
