"""Per-revision request admission: containerConcurrency per instance, a bounded queue, activator buffering.

A request takes a slot on a ready instance with free capacity, or waits in FIFO order. Freed capacity is
handed straight to the oldest waiter, so a burst never stampedes. With no ready instance at all (scale
from zero) requests wait here while `on_cold` asks the autoscaler for instances: nothing is dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from wisp.http_client.h2_pool import H2Pool
from wisp.http_client.pool import UpstreamPool


class QueueFull(Exception):
    """The revision's queue is at its bound; the ingress answers 503."""


class NoCapacity(TimeoutError):
    """No instance could take the request before its deadline."""


class Unavailable(Exception):
    """No instance is ready and none is coming soon (the revision fails to start, or the machine's instance
    limit leaves it none): the ingress answers 503 with this reason rather than holding the request."""


@dataclass(eq=False)
class Slot:
    """One instance as the throttler sees it."""

    name: str
    pool: UpstreamPool
    capacity: int  # 0 = unlimited
    ready: bool = False
    in_flight: int = 0
    requests_total: int = 0
    h2: H2Pool | None = None  # for a revision whose instances speak h2c (Throttler.h2c)

    def has_room(self) -> bool:
        # An unreachable instance (it refused a connection: dead, before its runner knows) gets no more requests.
        return self.ready and not self.pool.unreachable and (self.capacity == 0 or self.in_flight < self.capacity)


@dataclass
class ThrottlerHooks:
    """How the throttler tells the autoscaler what it sees (all optional)."""

    on_cold: Callable[[], None] = lambda: None  # a request arrived with no ready instance
    on_start: Callable[[], None] = lambda: None  # a request entered (queued or running)
    on_finish: Callable[[], None] = lambda: None  # a request left


@dataclass
class Throttler:
    capacity: int  # containerConcurrency; 0 = unlimited
    queue_depth: int
    hooks: ThrottlerHooks = field(default_factory=ThrottlerHooks)
    slots: list[Slot] = field(default_factory=list)
    # Set by the revision's runner while it cannot start instances; with no ready instance, requests are
    # answered with it at once instead of being held (`refuse`).
    refusal: str | None = None
    _waiters: deque[asyncio.Future[Slot]] = field(default_factory=deque)
    # The instances speak HTTP/2 over cleartext (the container port is named h2c, Knative's rule): each slot
    # gets an h2c pool beside its HTTP/1.1 one, and the ingress sends requests over it.
    h2c: bool = False

    @property
    def queued(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    @property
    def in_flight(self) -> int:
        return sum(s.in_flight for s in self.slots)

    @property
    def ready_count(self) -> int:
        return sum(1 for s in self.slots if s.ready)

    def add(self, slot: Slot) -> None:
        if self.h2c and slot.h2 is None:
            slot.h2 = H2Pool(slot.pool.host, slot.pool.port)
        self.slots.append(slot)
        self._dispatch()

    def set_h2c(self, h2c: bool) -> None:
        """Speak h2c to the instances (or stop): the slots there are get their pool now, new ones on `add`."""
        self.h2c = h2c
        for slot in self.slots:
            if h2c and slot.h2 is None:
                slot.h2 = H2Pool(slot.pool.host, slot.pool.port)

    def mark_ready(self, slot: Slot) -> None:
        slot.ready = True
        self._dispatch()

    def remove(self, slot: Slot) -> None:
        """Stop routing to an instance (draining or dead); its in-flight requests finish or fail on their own."""
        slot.ready = False
        if slot in self.slots:
            self.slots.remove(slot)
        if slot.h2 is not None:
            slot.h2.close()  # graceful: open streams finish

    def refuse(self, reason: str | None) -> None:
        """While `reason` is set and no instance is ready, answer requests with it (Unavailable) instead of
        holding them; those already held get it now. None: hold requests again (an instance is coming)."""
        self.refusal = reason
        if reason is None or self.ready_count:
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Unavailable(reason))

    def set_capacity(self, capacity: int) -> None:
        self.capacity = capacity
        for slot in self.slots:
            slot.capacity = capacity
        self._dispatch()

    def try_acquire(self) -> Slot | None:
        """A slot on a ready instance with room, at once, or None (then call `acquire`, which queues).

        The ingress's fast path: no coroutine and no future when capacity is free. A slot is handed out
        only while nobody waits, so a newcomer never overtakes the queue."""
        waiters = self._waiters
        while waiters and waiters[0].done():  # given up (timed out or cancelled) but not yet dropped
            waiters.popleft()
        if waiters:
            return None
        slot = self._pick()
        if slot is not None:
            self.hooks.on_start()
            self._take(slot)
        return slot

    async def acquire(self, timeout: float | None) -> Slot:
        self.hooks.on_start()
        try:
            slot = self._pick() if not self._waiters else None
            if slot is not None:
                self._take(slot)
                return slot
            if self.queued >= self.queue_depth:
                raise QueueFull(f"queue is full ({self.queue_depth} requests waiting)")
            if self.ready_count == 0:
                self.hooks.on_cold()  # may start an instance, or find that none can start (refusal)
                if self.refusal is not None:
                    raise Unavailable(self.refusal)
            return await self._wait(timeout)
        except BaseException:
            self.hooks.on_finish()
            raise

    async def _wait(self, timeout: float | None) -> Slot:
        """Queue for a slot. The timeout is a timer that cancels the waiter, not `asyncio.wait_for`
        (which would wrap the wait in a Task of its own)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Slot] = loop.create_future()
        self._waiters.append(waiter)
        self._dispatch()  # waiters that gave up may be all that stood in front of free capacity
        if waiter.done():
            return waiter.result()
        expired = False

        def expire() -> None:
            nonlocal expired
            if not waiter.done():
                expired = True
                waiter.cancel()

        timer = loop.call_later(timeout, expire) if timeout is not None else None
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result(), count=False)  # handed over just as we were cancelled
            waiter.cancel()
            if expired:
                raise NoCapacity("no instance became available in time") from None
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def release(self, slot: Slot, count: bool = True) -> None:
        slot.in_flight -= 1
        if count:
            self.hooks.on_finish()
        self._dispatch()

    def _pick(self) -> Slot | None:
        best: Slot | None = None
        for slot in self.slots:
            if slot.has_room() and (best is None or slot.in_flight < best.in_flight):
                best = slot
        return best

    @staticmethod
    def _take(slot: Slot) -> None:
        slot.in_flight += 1
        slot.requests_total += 1

    def _dispatch(self) -> None:
        while self._waiters:
            if self._waiters[0].done():
                self._waiters.popleft()
                continue
            slot = self._pick()
            if slot is None:
                return
            self._take(slot)
            self._waiters.popleft().set_result(slot)
