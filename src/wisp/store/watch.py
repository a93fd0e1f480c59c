"""The store's change history and its watchers, for Kubernetes-style watches that resume from a resourceVersion.

Every write the store publishes is kept, with the resourceVersion it made, in a bounded in-memory history (the
Kubernetes watch cache plays this part over etcd): a watch that starts from version R replays what came after
R, then follows live changes. A version older than the history's floor is Expired (the API answers 410 Gone
and the client lists again).

Each watcher has a bounded buffer: a watcher that falls behind by more than that is ended as expired rather
than allowed to grow without bound or to slow the writer (the API server's cacher ends a slow watcher's watch
the same way). Watchers end at daemon shutdown (`end_all`) and, for those of one namespace, when that namespace
is deleted.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from wisp.api.kinds import NAMESPACE, Kind
from wisp.store.events import EventType, StoreEvent
from wisp.store.json_text import decode, encode

# Changes kept for resuming watches and continuing lists: kept as JSON, about twice an object's size each
# (5,000 changes of 3 kB objects: 30 MB).
DEFAULT_HISTORY = 5_000
DEFAULT_BUFFER = 1_000  # events a watcher may fall behind by before its watch is ended

# What a watcher sends for an event: its type (a label-selector watch turns a MODIFIED that leaves the
# selection into DELETED) or None to skip it.
Accept = Callable[[StoreEvent], EventType | None]


class Expired(Exception):
    """The asked resourceVersion is older than the history keeps."""

    def __init__(self, wanted: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {wanted} ({oldest})")
        self.wanted = wanted
        self.oldest = oldest


@dataclass(frozen=True)
class Change:
    version: int
    type: EventType
    event: StoreEvent


@dataclass(frozen=True)
class _Kept:
    """A change as the history keeps it: JSON text, a small fraction of the parsed objects' memory."""

    type: EventType
    kind: Kind
    resource: str
    old: str | None
    deleted_at: int

    @classmethod
    def of(cls, event: StoreEvent) -> _Kept:
        old = None if event.old is None else encode(event.old)
        return cls(event.type, event.kind, encode(event.resource), old, event.deleted_at)

    def event(self) -> StoreEvent:
        old = None if self.old is None else decode(self.old)
        return StoreEvent(self.type, self.kind, decode(self.resource), old, self.deleted_at)


class History:
    """The last `capacity` changes, ordered by version; `floor` is the oldest version a watch may resume from."""

    def __init__(self, floor: int, capacity: int = DEFAULT_HISTORY) -> None:
        self.capacity = capacity
        self.floor = floor
        self._versions: deque[int] = deque()
        self._kept: deque[_Kept] = deque()

    def record(self, version: int, event: StoreEvent) -> None:
        self._versions.append(version)
        self._kept.append(_Kept.of(event))
        while len(self._versions) > self.capacity:
            self.floor = self._versions.popleft()  # resuming from it replays everything after it
            self._kept.popleft()

    def since(self, version: int) -> list[tuple[int, StoreEvent]]:
        """Every change after `version` (fresh objects); Expired when some of them are no longer kept."""
        if version < self.floor:
            raise Expired(version, self.floor)
        start = bisect.bisect_right(self._versions, version)
        return [(self._versions[i], self._kept[i].event()) for i in range(start, len(self._versions))]


@dataclass(eq=False)
class Watcher:
    """One watch: the changes it accepts, buffered up to `capacity`; `expired` once it overflowed."""

    accept: Accept
    namespace: str | None = None
    capacity: int = DEFAULT_BUFFER
    expired: bool = False
    ended: bool = False
    _pending: deque[Change] = field(default_factory=deque)
    _waiter: asyncio.Future[None] | None = None

    def offer(self, version: int, event: StoreEvent) -> None:
        if self.ended:
            return
        sent = self.accept(event)
        if sent is None:
            return
        if len(self._pending) >= self.capacity:
            self.expired = self.ended = True  # too slow: drop what it holds, the client must list again
            self._pending.clear()
        else:
            self._pending.append(Change(version, sent, event))
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self, *_: object) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take(self) -> list[Change]:
        """Everything buffered, oldest first (empty when none)."""
        out = list(self._pending)
        self._pending.clear()
        return out

    async def wait(self, timeout: float | None) -> None:
        """Until something is buffered, the watch ended, or `timeout` seconds passed.

        A bare future and a timer rather than wait_for(Event.wait()): no task per wake, which a fan-out to
        many watchers pays on every change."""
        if self._pending or self.ended:
            return
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        timer = loop.call_later(timeout, self._wake) if timeout is not None else None
        try:
            await self._waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()


class Watchers:
    """The history and the live watchers of one store."""

    def __init__(self, floor: int, history: int = DEFAULT_HISTORY) -> None:
        self.history = History(floor, history)
        self._live: set[Watcher] = set()
        self.closed = False  # set by end_all: the daemon is stopping, a new watch ends at once

    def publish(self, changes: Iterable[tuple[int, StoreEvent]]) -> None:
        for version, event in changes:
            self.history.record(version, event)
            for watcher in self._live:
                watcher.offer(version, event)
            if event.kind is NAMESPACE and event.type == "DELETED":
                gone = event.resource["metadata"]["name"]
                for watcher in self._live:
                    if watcher.namespace == gone:
                        watcher.end()

    def start(self, watcher: Watcher, since: int | None) -> None:
        """Register `watcher`, first replaying the changes after `since` (None: live changes only)."""
        replay = self.history.since(since) if since is not None else []
        for version, event in replay:
            watcher.offer(version, event)
        self._live.add(watcher)
        if self.closed:
            watcher.end()

    def stop(self, watcher: Watcher) -> None:
        self._live.discard(watcher)

    def poke(self) -> None:
        """Wake every watcher to look at the time again (a test that moved its fake clock)."""
        for watcher in self._live:
            watcher._wake()

    def end_all(self) -> None:
        self.closed = True
        for watcher in self._live:
            watcher.end()

    def __len__(self) -> int:
        return len(self._live)
