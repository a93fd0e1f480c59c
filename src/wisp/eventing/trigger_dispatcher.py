"""Trigger dispatch: read a broker's events, filter, deliver to the subscriber, route replies back.

One dispatcher per Trigger. The shared part (`TriggerHandler` + the in-flight/settle bookkeeping of
`_Dispatcher`) is the same for both broker classes; only where events come from and where the cursor is
committed differ: the default class reads the `BrokerLog` from the trigger's cursor, the `Kafka` class
consumes the broker topic with a consumer group per trigger (`knative-trigger-{ns}-{name}`).

Many deliveries are in flight at once, but a cursor/offset is committed only past settled events (delivered,
dead-lettered, or dropped after the retry budget), so a crash redelivers and never loses.

Replies: a reply event goes back into the trigger's broker with `knativebrokerttl` one lower than the event
that caused it; when that reaches 0 the reply is dropped with a logged reason, which ends reply loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRebalanceListener
from aiokafka.structs import OffsetAndMetadata

from wisp.eventing.broker import DEFAULT_TTL, BrokerRegistry, event_from_record, get_ttl, with_ttl
from wisp.eventing.broker_log import BrokerLog, CursorKey
from wisp.eventing.cloudevents import CloudEvent, CloudEventError
from wisp.eventing.delivery import Deliverer, DeliveryCounters, DeliveryResult, DeliverySpec, Destination
from wisp.eventing.fetch_wait import SHORT, AdaptiveFetchWait, set_fetch_wait
from wisp.eventing.filters import Predicate, compile_filter
from wisp.types import Clock, Resource

__all__ = [
    "KafkaTriggerDispatcher",
    "LogTriggerDispatcher",
    "SettleTracker",
    "TriggerConfig",
    "TriggerHandler",
    "trigger_config",
    "trigger_group_id",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT = 100


@dataclass(frozen=True)
class TriggerConfig:
    """Everything a dispatcher needs about one Trigger, with references already resolved."""

    namespace: str
    name: str
    broker: str
    predicate: Predicate
    subscriber: Destination
    delivery: DeliverySpec
    dead_letter: Destination | None = None
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT


def trigger_config(
    trigger: Resource,
    broker: Resource | None,
    resolve: Callable[[Mapping[str, Any]], Destination],
    *,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
) -> TriggerConfig:
    """Build a TriggerConfig from a Trigger (and its Broker) resource.

    `resolve` turns a Knative Destination (`{ref: ...}` or `{uri: ...}`) into a `Destination`; the trigger's
    `spec.delivery` is used when present, else the broker's. Raises FilterError / ManifestError on bad specs.
    """
    spec = trigger.get("spec") or {}
    meta = trigger.get("metadata") or {}
    delivery_raw = spec.get("delivery")
    path = "spec.delivery"
    if not delivery_raw and broker is not None:
        delivery_raw = (broker.get("spec") or {}).get("delivery")
    delivery = DeliverySpec.from_knative(delivery_raw, path=path)
    dead_letter = resolve(delivery.dead_letter_sink) if delivery.dead_letter_sink else None
    return TriggerConfig(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta["name"]),
        broker=str(spec.get("broker") or "default"),
        predicate=compile_filter(spec),
        subscriber=resolve(spec["subscriber"]),
        delivery=delivery,
        dead_letter=dead_letter,
        max_in_flight=max_in_flight,
    )


def trigger_group_id(namespace: str, name: str) -> str:
    """The consumer group of a Kafka-class trigger (Knative's naming)."""
    return f"knative-trigger-{namespace}-{name}"


class SettleTracker:
    """Tracks offsets in flight for one partition; the committable point advances only past settled ones."""

    def __init__(self) -> None:
        self._order: deque[int] = deque()
        self._settled: set[int] = set()
        self.committable: int | None = None  # next offset to read after everything settled so far

    def begin(self, offset: int) -> None:
        self._order.append(offset)

    def settle(self, offset: int) -> bool:
        """Mark `offset` settled; True when the committable point moved."""
        self._settled.add(offset)
        moved = False
        while self._order and self._order[0] in self._settled:
            done = self._order.popleft()
            self._settled.discard(done)
            self.committable = done + 1
            moved = True
        return moved

    @property
    def in_flight(self) -> int:
        return len(self._order)


class TriggerHandler:
    """Filter → deliver → route the reply. The part every broker class shares."""

    def __init__(self, config: TriggerConfig, deliverer: Deliverer, brokers: BrokerRegistry) -> None:
        self.config = config
        self.counters = DeliveryCounters()
        self._deliverer = deliverer
        self._brokers = brokers

    async def handle(self, event: CloudEvent) -> DeliveryResult | None:
        """Settle one event: None when the filter rejects it, else the delivery result. Never raises for a
        sink's or reply's behaviour."""
        cfg = self.config
        if not cfg.predicate(event):
            return None
        try:
            ttl = get_ttl(event)
        except ValueError:
            ttl = None
        ttl = DEFAULT_TTL if ttl is None else ttl
        # The broker's hop counter is its own business: subscribers get the event without it, as in Knative.
        result = await self._deliverer.deliver(
            with_ttl(event, None), cfg.subscriber, cfg.delivery, cfg.dead_letter
        )
        self.counters.record(result)
        if result.reply is not None:
            await self._route_reply(result.reply, ttl - 1, event)
        return result

    async def _route_reply(self, reply: CloudEvent, ttl: int, cause: CloudEvent) -> None:
        cfg = self.config
        if ttl <= 0:
            log.warning(
                "trigger %s/%s: dropping reply %s to event %s: %s reached 0 (an event loop through the "
                "broker?)", cfg.namespace, cfg.name, reply.get("id"), cause.get("id"), "knativebrokerttl",
            )
            return
        broker = self._brokers.get(cfg.namespace, cfg.broker)
        if broker is None:
            log.warning("trigger %s/%s: dropping reply %s: broker %s is gone",
                        cfg.namespace, cfg.name, reply.get("id"), cfg.broker)
            return
        try:
            await broker.publish([with_ttl(reply, ttl)])
        except Exception:
            log.exception("trigger %s/%s: could not store reply %s", cfg.namespace, cfg.name, reply.get("id"))


class _Dispatcher:
    """In-flight bounding, settle tracking and a coalescing committer; subclasses feed events and commit."""

    def __init__(self, handler: TriggerHandler) -> None:
        self.handler = handler
        self._slots = asyncio.Semaphore(handler.config.max_in_flight)
        self._trackers: dict[Hashable, SettleTracker] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._dirty: set[Hashable] = set()
        self._commit_wanted = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._committer: asyncio.Task[None] | None = None

    @property
    def config(self) -> TriggerConfig:
        return self.handler.config

    async def _commit(self, partition: Hashable, next_offset: int) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        raise NotImplementedError

    def _launch(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=f"trigger-{self.config.name}")
        self._committer = asyncio.create_task(self._commit_loop(), name=f"trigger-commit-{self.config.name}")

    async def _submit(self, partition: Hashable, offset: int, event: CloudEvent) -> None:
        """Start handling one event; waits while `max_in_flight` deliveries are running."""
        tracker = self._trackers.setdefault(partition, SettleTracker())
        await self._slots.acquire()
        tracker.begin(offset)
        task = asyncio.create_task(self._handle(tracker, partition, offset, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _skip(self, partition: Hashable, offset: int) -> None:
        """An offset with nothing to deliver (undecodable record): settled at once."""
        tracker = self._trackers.setdefault(partition, SettleTracker())
        tracker.begin(offset)
        self._settled(tracker, partition, offset)

    async def _handle(
        self, tracker: SettleTracker, partition: Hashable, offset: int, event: CloudEvent
    ) -> None:
        try:
            await self.handler.handle(event)
        except Exception:  # a bug, not sink behaviour: log and settle, so one event cannot wedge a trigger
            log.exception("trigger %s/%s: handling event %s failed",
                          self.config.namespace, self.config.name, event.get("id"))
        finally:
            self._slots.release()
        self._settled(tracker, partition, offset)

    def _settled(self, tracker: SettleTracker, partition: Hashable, offset: int) -> None:
        if tracker.settle(offset) and self._trackers.get(partition) is tracker:
            self._dirty.add(partition)
            self._commit_wanted.set()

    async def _commit_loop(self) -> None:
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            await self._flush_commits()

    async def _flush_commits(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for partition in dirty:
            tracker = self._trackers.get(partition)
            if tracker is not None and tracker.committable is not None:
                try:
                    await self._commit(partition, tracker.committable)
                except Exception:
                    log.exception("trigger %s/%s: commit failed", self.config.namespace, self.config.name)
                    self._dirty.add(partition)

    async def idle(self) -> None:
        """Wait until nothing is in flight and every settled offset is committed (for tests and drains)."""
        while self._tasks or self._dirty or any(t.in_flight for t in self._trackers.values()):
            if self._tasks:
                await asyncio.wait(set(self._tasks))
            await self._flush_commits()

    async def _shutdown(self) -> None:
        """Stop reading, cancel deliveries still running (they will be redelivered), commit what settled."""
        for task in (self._runner, self._committer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._runner = self._committer = None
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self._flush_commits()


class LogTriggerDispatcher(_Dispatcher):
    """A default-class trigger: reads the `BrokerLog` from its committed cursor."""

    def __init__(self, handler: TriggerHandler, broker_log: BrokerLog, *, read_batch: int = 256) -> None:
        super().__init__(handler)
        self._log = broker_log
        self._read_batch = read_batch
        cfg = handler.config
        self.cursor = CursorKey(cfg.namespace, cfg.broker, cfg.name)
        self._next = 0

    async def start(self) -> None:
        self._next = await self._log.open_cursor(self.cursor)
        self._launch()

    async def stop(self) -> None:
        await self._shutdown()

    async def _commit(self, partition: Hashable, next_offset: int) -> None:
        await self._log.ack(self.cursor, next_offset)

    async def _run(self) -> None:
        cfg = self.config
        while True:
            records = await self._log.read_from(self.cursor, self._next, self._read_batch)
            if not records:
                await self._log.wait_beyond(cfg.namespace, cfg.broker, self._next)
                continue
            for record in records:
                await self._submit(0, record.offset, record.event)
                self._next = record.offset + 1


class KafkaTriggerDispatcher(_Dispatcher):
    """A Kafka-class trigger: consumes the broker topic in its own consumer group.

    `consumer_factory(group_id)` returns an unstarted `aiokafka.AIOKafkaConsumer` for the bootstrap servers
    (the daemon's client settings stay in one place); this class sets the group, subscribes and commits.
    """

    def __init__(
        self,
        handler: TriggerHandler,
        consumer_factory: Callable[..., Any],
        topic: str,
        *,
        initial_offset: str = "latest",
        ready_timeout: float = 60.0,
        now: Clock = time.monotonic,
        group_id: str | None = None,
    ) -> None:
        """`group_id`: the consumer group (default: Knative's for the trigger; a KafkaChannel's subscription
        names its own)."""
        super().__init__(handler)
        cfg = handler.config
        self.topic = topic
        self.group_id = group_id or trigger_group_id(cfg.namespace, cfg.name)
        self._consumer = consumer_factory(
            group_id=self.group_id, enable_auto_commit=False, auto_offset_reset=initial_offset,
            fetch_max_wait_ms=round(SHORT * 1000),  # then adapted to idleness: see fetch_wait
            consumer_timeout_ms=1000,  # the fetcher's safety-net wake-up; it wakes on its events anyway
        )
        self._now = now
        self._fetch_wait = AdaptiveFetchWait(since=now())
        self._ready_timeout = ready_timeout
        self._assigned = asyncio.Event()

    async def start(self) -> None:
        """Start consuming; returns once partitions are assigned and positioned, so events sent after
        `start()` returns are seen even with `initial_offset="latest"`."""
        dispatcher = self

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await dispatcher._revoked(revoked)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                if assigned:
                    dispatcher._assigned.set()

        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_Listener())
        self._launch()
        try:
            await asyncio.wait_for(self._assigned.wait(), self._ready_timeout)
            for tp in self._consumer.assignment():
                await self._consumer.position(tp)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await self._shutdown()
        await self._consumer.stop()

    async def _revoked(self, revoked: Any) -> None:
        # Commit what settled before another member takes these partitions over (architecture.md: machine facts).
        for tp in revoked:
            tracker = self._trackers.pop(tp, None)
            if tracker is not None and tracker.committable is not None:
                with contextlib.suppress(Exception):
                    await self._commit(tp, tracker.committable)
            self._dirty.discard(tp)

    async def _commit(self, partition: Hashable, next_offset: int) -> None:
        await self._consumer.commit({partition: OffsetAndMetadata(next_offset, "")})

    async def _run(self) -> None:
        while True:
            set_fetch_wait(self._consumer, self._fetch_wait.wait(self._now()))
            batches = await self._consumer.getmany(timeout_ms=1000, max_records=self.config.max_in_flight)
            if batches:
                self._fetch_wait.records(self._now())
            for tp, records in batches.items():
                for record in records:
                    try:
                        event = event_from_record(record.value, list(record.headers or ()))
                    except CloudEventError as exc:
                        log.warning("trigger %s/%s: skipping %s@%d, not a CloudEvent: %s",
                                    self.config.namespace, self.config.name, tp, record.offset, exc)
                        self._skip(tp, record.offset)
                        continue
                    await self._submit(tp, record.offset, event)
