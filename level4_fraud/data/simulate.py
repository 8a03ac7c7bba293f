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

Both are shorthands for entries of ``drift_events``, the general form: a list of
:class:`~level4_fraud.config.DriftEvent` (kind, start day, volume, duration), each kind drawn
from its own random streams (keyed by the event's place in the list and the day):

- ``card_testing`` — scenario 4 above;
- ``terminal_wave`` — scenario 5: extra terminals compromised each day, their payments fraud at
  ordinary amounts (what scenario 2 does, several times as often);
- ``account_takeover`` — scenario 6: a fraudster adds daytime payments on taken-over accounts at
  terminals anywhere on the map, at 1.5–3 × the customer's usual amount, for ``takeover_days``;
- ``amount_shift`` — scenario 7: extra leaked cards whose stolen payments keep ordinary amounts
  (× 1–1.5 instead of scenario 3's × 5): fraud moved into the legitimate amount range;
- ``seasonal`` — the harmless change above (volume scales the rise);
- ``new_merchants`` — harmless: a new merchant group (5 % of terminals) takes a share of the
  payments of customers near it, at half the usual amount.

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
(0/1), ``tx_fraud_scenario`` (0 legitimate, 1–7 scenario; 4–7 are the drift events' fraud).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from level4_fraud.config import DriftEvent, SimulationConfig

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
_MERCHANT_GROUP = 8
# Scenario label of each fraud kind of drift event.
SCENARIO_OF_KIND = {"card_testing": 4, "terminal_wave": 5, "account_takeover": 6, "amount_shift": 7}
MERCHANT_GROUP_SHARE, MERCHANT_PAYMENT_SHARE, MERCHANT_AMOUNT_FACTOR = 0.05, 0.2, 0.5


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
        self.events = cfg.events()
        # The new merchant group (drawn even when no event uses it, so the world stays the same):
        # each customer's reachable terminals inside the group, as flat arrays like the above.
        group_rng = np.random.default_rng([cfg.seed, 999_999, _MERCHANT_GROUP])
        n_group = max(1, int(MERCHANT_GROUP_SHARE * cfg.n_terminals))
        in_group = np.zeros(cfg.n_terminals, dtype=bool)
        in_group[group_rng.choice(cfg.n_terminals, n_group, replace=False)] = True
        self.merchant_group = np.flatnonzero(in_group)
        group_reach = [r[in_group[r]] for r in reachable]
        self._group_count = np.array([len(r) for r in group_reach], dtype=np.int64)
        self._group_start = np.cumsum(self._group_count) - self._group_count
        self._group_flat = (
            np.concatenate(group_reach) if group_reach else np.empty(0, dtype=np.int64)
        )
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
        """(amount factor, transactions-per-day factor) of the seasonal change(s) on ``day``."""
        cfg = self.config
        amount, count = 1.0, 1.0
        for event in self.events:
            if event.kind != "seasonal" or not event.active(day):
                continue
            ramp = min(1.0, (day - event.start_day + 1) / cfg.seasonal_ramp_days) * event.volume
            amount *= 1 + ramp * (cfg.seasonal_amount_factor - 1)
            count *= 1 + ramp * (cfg.seasonal_tx_factor - 1)
        return amount, count

    def _event_rng(self, day: int, index: int, stream: int) -> np.random.Generator:
        # Events get streams of their own (index = place in the list), apart from the base ones.
        return self._rng(day, 100 + 10 * index + stream)

    def _daily_count(self, day: int, index: int, per_day: float) -> int:
        """``per_day`` as a whole count: the fraction is one more on that share of days."""
        whole = int(per_day)
        if per_day - whole > 0:
            whole += int(self._event_rng(day, index, 0).random() < per_day - whole)
        return whole

    def event_victims(self, event: DriftEvent, index: int, day: int) -> np.ndarray:
        """Terminals (``terminal_wave``) or customers (the other fraud kinds) that ``event`` has
        compromised and that are still so on ``day``."""
        cfg = self.config
        if event.kind == "terminal_wave":
            population, per_day = cfg.n_terminals, 4 * cfg.n_compromised_terminals
            lasts = cfg.terminal_compromise_days
        elif event.kind == "account_takeover":  # fewer victims: each pays many times a day
            population, per_day = cfg.n_customers, cfg.n_compromised_customers
            lasts = cfg.takeover_days
        else:
            population, per_day = cfg.n_customers, 4 * cfg.n_compromised_customers
            lasts = cfg.customer_compromise_days
        picks = []
        for d in range(day - lasts + 1, day + 1):
            if event.active(d):
                n = min(self._daily_count(d, index, per_day * event.volume), population)
                picks.append(self._event_rng(d, index, 1).choice(population, n, replace=False))
        return np.unique(np.concatenate(picks)) if picks else np.empty(0, dtype=np.int64)

    # -- one day ----------------------------------------------------------------------------
    def day(self, day: int) -> pd.DataFrame:
        """All transactions of ``day`` (0-based), sorted by time, with labels."""
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
        for index, event in enumerate(self.events):
            if event.kind == "new_merchants" and event.active(day):
                self._move_to_merchant_group(day, index, event, customer_id, terminal_id, amount)
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
        extra = []
        for index, event in enumerate(self.events):
            if event.kind == "card_testing" and event.active(day):
                extra.append(self._card_testing(day, index, event))
            elif event.kind in ("terminal_wave", "amount_shift"):
                frame = self._relabel_victims(frame, day, index, event)
            elif event.kind == "account_takeover":
                extra.append(self._takeover_payments(day, index, event))
        if extra:
            frame = pd.concat([frame, *extra], ignore_index=True)
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

    def _card_testing(self, day: int, index: int, event: DriftEvent) -> pd.DataFrame:
        """Scenario 4: night-time bursts of tiny payments on tested cards, at far terminals.

        The ``new_pattern_day`` shorthand keeps its original streams (same data as before)."""
        cfg = self.config
        legacy = event.start_day == cfg.new_pattern_day and index == len(cfg.drift_events)
        if legacy:
            rng, pick, count = (
                self._rng(day, _PATTERN),
                self._rng(day, _PATTERN_PICK),
                self._rng(day, _PATTERN_COUNT),
            )
        else:
            rng, pick, count = (self._event_rng(day, index, s) for s in (2, 1, 0))
        per_day = 6.0 * cfg.n_customers / 5000 * event.volume
        if legacy:
            per_day = cfg.new_pattern_cards_per_day
        whole = int(per_day)
        extra = per_day - whole
        if extra > 0:  # the fractional part: one more card on that share of days
            whole += int(count.random() < extra)
        n_cards = min(whole, cfg.n_customers)
        cards = pick.choice(cfg.n_customers, n_cards, replace=False)
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

    def _relabel_victims(
        self, frame: pd.DataFrame, day: int, index: int, event: DriftEvent
    ) -> pd.DataFrame:
        """Scenarios 5 and 7: ordinary-looking payments of the event's victims become fraud."""
        cfg = self.config
        victims = self.event_victims(event, index, day)
        clean = frame["tx_fraud"].to_numpy() == 0  # an earlier scenario's label stays
        if event.kind == "terminal_wave":
            hit = clean & frame["terminal_id"].isin(victims).to_numpy()
        else:
            rng = self._event_rng(day, index, 3)
            leaked = frame["customer_id"].isin(victims).to_numpy()
            hit = clean & leaked & (rng.random(len(frame)) < cfg.customer_fraud_share)
            factor = rng.uniform(1.0, 1.5, int(hit.sum()))  # ordinary amounts, not x 5
            frame.loc[hit, "tx_amount"] = np.round(frame.loc[hit, "tx_amount"] * factor, 2)
        frame.loc[hit, ["tx_fraud", "tx_fraud_scenario"]] = (1, SCENARIO_OF_KIND[event.kind])
        return frame

    def _takeover_payments(self, day: int, index: int, event: DriftEvent) -> pd.DataFrame:
        """Scenario 6: the fraudster's own daytime payments on taken-over accounts."""
        cfg = self.config
        victims = self.event_victims(event, index, day)
        rng = self._event_rng(day, index, 4)
        n = rng.poisson(2.0, len(victims))
        customer_id = np.repeat(victims, n).astype(np.int64)
        mean = self.customers["mean_amount"].to_numpy()[customer_id]
        seconds = np.clip(rng.normal(SECONDS_PER_DAY / 2, 15_000, len(customer_id)), 1, 86_399)
        return pd.DataFrame(
            {
                "customer_id": customer_id,
                "terminal_id": rng.integers(0, cfg.n_terminals, len(customer_id)),
                "tx_amount": np.round(mean * rng.uniform(1.5, 3.0, len(customer_id)), 2),
                "tx_seconds_of_day": seconds.astype(np.int64),
                "tx_fraud": 1,
                "tx_fraud_scenario": 6,
            }
        )

    def _move_to_merchant_group(
        self,
        day: int,
        index: int,
        event: DriftEvent,
        customer_id: np.ndarray,
        terminal_id: np.ndarray,
        amount: np.ndarray,
    ) -> None:
        """Harmless: some payments of customers near the new merchant group go there instead,
        at a lower amount (in place)."""
        rng = self._event_rng(day, index, 5)
        reach = self._group_count[customer_id]
        share = min(1.0, MERCHANT_PAYMENT_SHARE * event.volume)
        move = (reach > 0) & (rng.random(len(customer_id)) < share)
        offset = (rng.random(int(move.sum())) * reach[move]).astype(np.int64)
        terminal_id[move] = self._group_flat[self._group_start[customer_id[move]] + offset]
        amount[move] *= MERCHANT_AMOUNT_FACTOR

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
