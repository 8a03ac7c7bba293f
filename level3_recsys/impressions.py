"""Impressions: what the service showed, to whom, from which model — the only thing a click can
be recorded against.

Every recommendation response carries an ``impression_id``. The service keeps, per impression,
the model version that ranked the list and the item ids shown, in a map bounded in **bytes**
(``budget_bytes``), with a per-client quota (``client_quota_bytes``) and a time limit (``ttl_s``).
A click counts only when it names a live impression and an item of that impression, and each item
of an impression counts at most once. So:

- CTR = clicks / impressions <= 1 by construction (clicks are a subset of what was shown);
- metric labels are model versions the service itself served (a bounded set);
- forged or replayed feedback changes nothing: no series, no counts, no drift values.

Compact storage: the items of one impression are one ``bytes`` of 32-bit ids (4 bytes an item),
the clicks a bit mask over their positions, the version a reference to one shared string; a
k = 100 list costs about 0.6 KB in all (``entry_bytes`` counts it; a test checks the count
against what ``tracemalloc`` sees).

Fairness: each client (the caller's address) may hold at most ``client_quota_bytes``; beyond it
that client's own oldest impressions go, nobody else's. When the whole budget is full (many
addresses at once), the client holding the most bytes loses its oldest impression (a lazy
max-heap finds it), so a real user with a few lists keeps them while any flooder holds more:
anonymous traffic can neither evict nor crowd out the others, from one address or from many.

Precise answers for a click on a missing impression: the id carries its issue time and a
keyed hash (HMAC with a per-process secret), so the service tells apart an id it never issued,
one that expired and one evicted, without keeping anything for impressions it no longer holds.

Held in process memory: one uvicorn worker per container (as this level runs it). Several workers
would need the map in a shared store (Redis with ``SET ... EX ttl``), with the same interface.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import secrets
import struct
import sys
import threading
import time
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

# Per-entry cost of the containers around an entry (the OrderedDict's hash slot and linked-list
# node, the client's deque slot), not visible to sys.getsizeof of the entry's own objects.
# Measured with tracemalloc on CPython 3.11 (tests/level3/test_hostile.py checks it still holds).
CONTAINER_BYTES_PER_ENTRY = 190
CLIENT_BYTES = 900  # one client's record: its key, its deque, the dict slot


class Impression:
    """One list shown: who ranked it, its items (4 bytes each), which were clicked (a bit mask)."""

    __slots__ = ("model_version", "items", "shown_at", "client", "clicked", "nbytes")

    def __init__(self, model_version: str, items: bytes, shown_at: float, client: str) -> None:
        self.model_version, self.items, self.shown_at = model_version, items, shown_at
        self.client, self.clicked, self.nbytes = client, 0, 0

    def item_ids(self) -> list[int]:
        return array("i", self.items).tolist()


class UnknownImpression(LookupError):
    """The impression id was never issued, has expired or was evicted (the message says which)."""


class ClickNotShown(ValueError):
    """A click names an item the impression did not show."""


@dataclass(frozen=True)
class ClickResult:
    """What one feedback call changed."""

    model_version: str
    accepted: list[int]
    duplicates: int


@dataclass
class _Client:
    ids: deque[str]
    nbytes: int = 0


class ImpressionLog:
    """Map impression id → :class:`Impression`, bounded in bytes, per client and in time.

    Thread-safe: sync handlers run in the thread pool.
    """

    def __init__(
        self,
        budget_bytes: int,
        ttl_s: float,
        client_quota_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if budget_bytes < 4096 or ttl_s <= 0:
            raise ValueError("impression log needs budget_bytes >= 4096 and ttl_s > 0")
        quota = budget_bytes if client_quota_bytes is None else client_quota_bytes
        if not 0 < quota <= budget_bytes:
            raise ValueError("client_quota_bytes must lie in (0, budget_bytes]")
        self.budget_bytes, self.client_quota_bytes, self.ttl_s = budget_bytes, quota, ttl_s
        self.clock, self.wall_clock = clock, wall_clock
        self._entries: OrderedDict[str, Impression] = OrderedDict()
        self._clients: dict[str, _Client] = {}
        self._versions: dict[str, str] = {}  # one string object per version, shared by entries
        self._secret = secrets.token_bytes(16)
        self._lock = threading.Lock()
        self.nbytes = 0
        # (-bytes held, client) pushed on every change; stale pairs are skipped when popped
        self._holders: list[tuple[int, str]] = []
        self.evicted_by_quota = 0
        self.evicted_by_budget = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def clients(self) -> int:
        return len(self._clients)

    # -- ids: 6 bytes issue time (ms) + 10 random bytes + 8 bytes keyed hash, base64url (32 chars)
    def _new_id(self, issued_ms: int) -> str:
        body = struct.pack(">Q", issued_ms)[2:] + secrets.token_bytes(10)
        tag = hmac.new(self._secret, body, hashlib.sha256).digest()[:8]
        return base64.urlsafe_b64encode(body + tag).decode()

    def _issued_ms(self, impression_id: str) -> int | None:
        """Issue time of an id this process issued; None for anything else."""
        try:
            raw = base64.urlsafe_b64decode(impression_id.encode())
        except (ValueError, UnicodeEncodeError):
            return None
        if len(raw) != 24:
            return None
        tag = hmac.new(self._secret, raw[:16], hashlib.sha256).digest()[:8]
        if not hmac.compare_digest(tag, raw[16:]):
            return None
        return struct.unpack(">Q", b"\0\0" + raw[:6])[0]

    @staticmethod
    def entry_bytes(impression_id: str, impression: Impression) -> int:
        """What one entry costs in memory: its objects plus the containers' share."""
        return (
            sys.getsizeof(impression_id)
            + sys.getsizeof(impression)
            + sys.getsizeof(impression.items)
            + CONTAINER_BYTES_PER_ENTRY
        )

    def issue(self, model_version: str, items: list[int], client: str = "anonymous") -> str:
        """Record a list just served to ``client`` (its address); return its new impression id."""
        now = self.clock()
        impression_id = self._new_id(int(self.wall_clock() * 1000))
        with self._lock:
            self._expire(now)
            version = self._versions.setdefault(model_version, model_version)
            entry = Impression(version, array("i", items).tobytes(), now, client)
            entry.nbytes = self.entry_bytes(impression_id, entry)
            owner = self._clients.get(client)
            if owner is None:
                owner = self._clients[client] = _Client(deque())
                self.nbytes += CLIENT_BYTES + sys.getsizeof(client)
            self._entries[impression_id] = entry
            owner.ids.append(impression_id)
            owner.nbytes += entry.nbytes
            self.nbytes += entry.nbytes
            while owner.nbytes > self.client_quota_bytes and len(owner.ids) > 1:
                self._drop(owner.ids[0])
                self.evicted_by_quota += 1
            self._push(client, owner)
            while self.nbytes > self.budget_bytes and len(self._entries) > 1:
                self._drop(self._clients[self._largest_holder()].ids[0])
                self.evicted_by_budget += 1
        return impression_id

    def _push(self, client: str, owner: _Client) -> None:
        heapq.heappush(self._holders, (-owner.nbytes, client))
        if len(self._holders) > 2 * len(self._clients) + 1024:  # drop the stale pairs
            self._holders = [(-o.nbytes, c) for c, o in self._clients.items()]
            heapq.heapify(self._holders)

    def _largest_holder(self) -> str:
        while self._holders:
            negative_bytes, client = self._holders[0]
            owner = self._clients.get(client)
            if owner is not None and owner.nbytes == -negative_bytes:
                return client
            heapq.heappop(self._holders)
        raise RuntimeError("impression log: no holder although entries remain")

    def click(self, impression_id: str, items: list[int]) -> ClickResult:
        """Record clicks on items of a live impression, each item once.

        Raises :class:`UnknownImpression` (the message says never issued / expired / evicted) or
        :class:`ClickNotShown`; nothing is recorded then.
        """
        with self._lock:
            self._expire(self.clock())
            impression = self._entries.get(impression_id)
            if impression is None:
                raise UnknownImpression(self._why_missing(impression_id))
            shown = impression.item_ids()
            position = {item: i for i, item in enumerate(shown)}
            not_shown = sorted(set(items) - position.keys())
            if not_shown:
                raise ClickNotShown(
                    f"items {not_shown[:10]} were not shown in this impression: nothing recorded"
                )
            accepted = []
            for item in dict.fromkeys(items):
                bit = 1 << position[item]
                if not impression.clicked & bit:
                    impression.clicked |= bit
                    accepted.append(item)
            return ClickResult(impression.model_version, accepted, len(items) - len(accepted))

    def _why_missing(self, impression_id: str) -> str:
        issued_ms = self._issued_ms(impression_id)
        if issued_ms is None:
            return (
                "unknown impression_id: this service never issued it (or issued it before a "
                "restart); send the impression_id of a list it served"
            )
        age_s = self.wall_clock() - issued_ms / 1000
        if age_s > self.ttl_s:
            return (
                f"expired impression_id: the list was served {age_s:.0f} s ago; clicks count only "
                f"within {self.ttl_s:g} s of the list"
            )
        return (
            f"evicted impression_id: the list was served {max(age_s, 0):.0f} s ago, within the "
            f"{self.ttl_s:g} s window, but the impression memory was full ({self.budget_bytes} "
            f"bytes, at most {self.client_quota_bytes} per client address) and the largest "
            "holder's oldest lists went first; nothing recorded"
        )

    def _drop(self, impression_id: str) -> None:
        entry = self._entries.pop(impression_id)
        owner = self._clients[entry.client]
        owner.ids.popleft() if owner.ids[0] == impression_id else owner.ids.remove(impression_id)
        owner.nbytes -= entry.nbytes
        self.nbytes -= entry.nbytes
        if not owner.ids:
            del self._clients[entry.client]
            self.nbytes -= CLIENT_BYTES + sys.getsizeof(entry.client)
        else:
            self._push(entry.client, owner)

    def _expire(self, now: float) -> None:
        while self._entries:
            oldest_id = next(iter(self._entries))
            if now - self._entries[oldest_id].shown_at <= self.ttl_s:
                break
            self._drop(oldest_id)
            self.expired += 1
