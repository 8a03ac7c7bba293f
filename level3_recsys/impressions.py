"""Impressions: what the service showed, to whom, from which model — the only thing a click can
be recorded against.

Every recommendation response carries an ``impression_id`` (128 random bits, unguessable). The
service keeps, per impression, the model version that ranked the list and the item ids shown, in
a bounded, time-limited map (oldest evicted first, entries older than ``ttl_s`` forgotten). A
click counts only when it names a live impression and an item of that impression, and each item
of an impression counts at most once. So:

- CTR = clicks / impressions <= 1 by construction (clicks are a subset of what was shown);
- metric labels are model versions the service itself served (a bounded set);
- forged or replayed feedback changes nothing: no series, no counts, no drift values.

Held in process memory: one uvicorn worker per container (as this level runs it). Several workers
would need the map in a shared store (Redis with ``SET ... EX ttl``), with the same interface.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Impression:
    """One list shown: who ranked it and which items it held; which of them were clicked."""

    model_version: str
    items: frozenset[int]
    shown_at: float
    clicked: set[int] = field(default_factory=set)


class UnknownImpression(LookupError):
    """The impression id was never issued, has expired or was evicted."""


class ClickNotShown(ValueError):
    """A click names an item the impression did not show."""


@dataclass(frozen=True)
class ClickResult:
    """What one feedback call changed."""

    model_version: str
    accepted: list[int]
    duplicates: int


class ImpressionLog:
    """Bounded (``capacity`` entries) and time-limited (``ttl_s``) map impression id → Impression.

    Thread-safe: sync handlers run in the thread pool.
    """

    def __init__(
        self, capacity: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1 or ttl_s <= 0:
            raise ValueError("impression log needs capacity >= 1 and ttl_s > 0")
        self.capacity, self.ttl_s, self.clock = capacity, ttl_s, clock
        self._entries: OrderedDict[str, Impression] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def issue(self, model_version: str, items: list[int]) -> str:
        """Record a list just served; return its new impression id."""
        impression_id = secrets.token_urlsafe(16)
        now = self.clock()
        with self._lock:
            self._expire(now)
            self._entries[impression_id] = Impression(model_version, frozenset(items), now)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return impression_id

    def click(self, impression_id: str, items: list[int]) -> ClickResult:
        """Record clicks on items of a live impression, each item once.

        Raises :class:`UnknownImpression` or :class:`ClickNotShown`; nothing is recorded then.
        """
        with self._lock:
            self._expire(self.clock())
            impression = self._entries.get(impression_id)
            if impression is None:
                raise UnknownImpression(
                    "unknown or expired impression_id: clicks count only on a list the service "
                    f"served in the last {self.ttl_s:g} s"
                )
            not_shown = sorted(set(items) - impression.items)
            if not_shown:
                raise ClickNotShown(
                    f"items {not_shown[:10]} were not shown in this impression: nothing recorded"
                )
            accepted = [i for i in dict.fromkeys(items) if i not in impression.clicked]
            impression.clicked.update(accepted)
            return ClickResult(impression.model_version, accepted, len(items) - len(accepted))

    def _expire(self, now: float) -> None:
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if now - oldest.shown_at <= self.ttl_s:
                break
            self._entries.popitem(last=False)
