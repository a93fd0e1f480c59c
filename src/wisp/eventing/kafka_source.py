"""The KafkaSource dispatcher: a consumer group that turns records into CloudEvents and delivers them.

Per assigned partition a `_PartitionWorker` keeps up to `limit` deliveries in flight (1 for `ordered`, many
for `unordered`) and an offset tracker; the consumer loop fetches in batches, pauses partitions whose backlog
is full, and commits settled offsets periodically, on revocation and on stop. Records are never lost: an
offset is committed only once its record is delivered, dead-lettered or dropped after the retry budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.helpers import create_ssl_context

from wisp.eventing.cloudevents import CloudEvent, validate_attribute_name
from wisp.eventing.delivery import Deliverer, DeliveryCounters, DeliveryResult, DeliverySpec, Destination
from wisp.eventing.fetch_wait import SHORT, AdaptiveFetchWait, set_fetch_wait
from wisp.eventing.kafka_record import KafkaRecord, record_to_event
from wisp.eventing.offsets import PartitionOffsets
from wisp.observability.recorder import SpanRecorder
from wisp.observability.traceparent import child_of, parse_traceparent
from wisp.types import Clock

__all__ = [
    "KafkaAuth",
    "KafkaSourceCounters",
    "KafkaSourceDispatcher",
    "KafkaSourceSpec",
    "SinkResolver",
    "StatusCallback",
]

log = logging.getLogger(__name__)

Ordering = Literal["ordered", "unordered"]
InitialOffset = Literal["earliest", "latest"]
# Knative destination (`ref` / `uri`) → where to send, or None while it cannot be resolved.
SinkResolver = Callable[[Mapping[str, Any]], Destination | None]
# (ready, reason, message), called on every change of readiness.
StatusCallback = Callable[[bool, str, str], None]
# Called when the counters or the lag may have changed (records fetched, a delivery settled).
ProgressCallback = Callable[[], None]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class KafkaAuth:
    """Connection security with secret values already resolved (Knative's `net.sasl` / `net.tls`)."""

    sasl_enabled: bool = False
    sasl_mechanism: str = "PLAIN"  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    sasl_user: str | None = None
    sasl_password: str | None = None
    tls_enabled: bool = False
    ca_cert: str | None = None  # PEM
    client_cert: str | None = None  # PEM
    client_key: str | None = None  # PEM

    @property
    def security_protocol(self) -> str:
        if self.sasl_enabled:
            return "SASL_SSL" if self.tls_enabled else "SASL_PLAINTEXT"
        return "SSL" if self.tls_enabled else "PLAINTEXT"


@dataclass(frozen=True)
class KafkaSourceSpec:
    """What the dispatcher needs of a validated KafkaSource."""

    namespace: str
    name: str
    bootstrap_servers: tuple[str, ...]
    topics: tuple[str, ...]
    sink: Mapping[str, Any]
    consumer_group: str
    delivery: DeliverySpec = field(default_factory=DeliverySpec)
    ordering: Ordering = "ordered"
    initial_offset: InitialOffset = "latest"
    consumers: int = 1
    ce_overrides: Mapping[str, str] = field(default_factory=dict)
    auth: KafkaAuth = field(default_factory=KafkaAuth)
    # unordered: deliveries in flight per partition; also the backlog at which a partition's fetching pauses
    max_in_flight_per_partition: int = 256
    commit_interval: float = 1.0
    # How often the consumer loop looks at its state while nothing is fetched, in flight or uncommitted
    # (stop wakes it at once): it adapts the fetch wait and commits, so a while idle costs one wake-up.
    idle_poll_interval: float = 1.0

    def __post_init__(self) -> None:
        for key in self.ce_overrides:
            validate_attribute_name(key)
        if self.consumers < 1:
            raise ValueError("consumers must be >= 1")


@dataclass
class KafkaSourceCounters(DeliveryCounters):
    lag: int = 0


class _PartitionWorker:
    """Delivers one partition's records with at most `limit` in flight; tracks which offsets are settled."""

    def __init__(self, limit: int, handle: Callable[[KafkaRecord], Awaitable[None]]) -> None:
        self.limit = limit
        self.offsets = PartitionOffsets()
        self._handle = handle
        self._backlog: deque[KafkaRecord] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self.paused = False

    @property
    def load(self) -> int:
        return len(self._backlog) + len(self._tasks)

    def add(self, record: KafkaRecord) -> None:
        self.offsets.fetched(record.offset)
        self._backlog.append(record)
        self._pump()

    def _pump(self) -> None:
        while self._backlog and len(self._tasks) < self.limit:
            record = self._backlog.popleft()
            task = asyncio.get_running_loop().create_task(self._run(record))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._pump()

    async def _run(self, record: KafkaRecord) -> None:
        # Settled only when handling finished: a cancelled delivery (stop, revocation) stays uncommitted.
        try:
            await self._handle(record)
        except Exception:
            # `_handle` settles every payload itself; reaching here is a bug, and the record is redelivered.
            log.exception("unexpected failure handling %s-%d@%d", record.topic, record.partition, record.offset)
            return
        self.offsets.settled(record.offset)

    async def drain(self, grace: float) -> None:
        """Drop the backlog (the next owner re-reads it); give in-flight work `grace` seconds, then cancel."""
        self._backlog.clear()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, member: _Member) -> None:
        self._member = member

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._member.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._member.assigned(assigned)
        await self._member.commit_start(assigned)


class _Member:
    """One consumer of the group and the partitions it owns."""

    def __init__(self, dispatcher: KafkaSourceDispatcher, consumer: AIOKafkaConsumer, now: float) -> None:
        self.dispatcher = dispatcher
        self.consumer = consumer
        self.workers: dict[TopicPartition, _PartitionWorker] = {}
        self.fresh: set[TopicPartition] = set()  # assigned, initial offset not committed yet
        self.fetch_wait = AdaptiveFetchWait(since=now)

    @property
    def quiet(self) -> bool:
        """Nothing for the consumer loop to do until records arrive: nothing in flight, paused or uncommitted."""
        return not self.fresh and all(w.load == 0 and not w.paused and w.offsets.committable() is None
                                      for w in self.workers.values())

    def assigned(self, assigned: set[TopicPartition]) -> None:
        limit = 1 if self.dispatcher.spec.ordering == "ordered" else self.dispatcher.spec.max_in_flight_per_partition
        for tp in assigned:
            if tp not in self.workers:
                self.workers[tp] = _PartitionWorker(limit, self.dispatcher._handle)
                self.fresh.add(tp)

    async def commit_start(self, assigned: set[TopicPartition]) -> None:
        """Commit where each newly owned partition without a committed offset starts (`latest` resolved to
        an offset now) and only then report Ready, as Knative commits a KafkaSource's initial offsets before
        it is Ready: a record produced after Ready is never skipped, even across a restart."""
        offsets = {}
        for tp in assigned:
            if tp in self.fresh and await self.consumer.committed(tp) is None:
                offsets[tp] = await self.consumer.position(tp)
        if offsets:
            try:
                await self.consumer.commit(offsets)
            except (CommitFailedError, KafkaError) as exc:
                log.warning("kafkasource %s: initial commit failed: %s", self.dispatcher.key, exc)
                return  # a new rebalance is under way; its assignment commits again
        self.fresh.difference_update(assigned)
        self.dispatcher._report(True)

    async def revoked(self, revoked: set[TopicPartition]) -> None:
        workers = {tp: self.workers[tp] for tp in revoked if tp in self.workers}
        await asyncio.gather(*(w.drain(self.dispatcher.revoke_grace) for w in workers.values()))
        await self.commit(workers)
        for tp in workers:
            self.workers.pop(tp, None)
            self.fresh.discard(tp)

    async def commit(self, workers: Mapping[TopicPartition, _PartitionWorker] | None = None) -> None:
        workers = self.workers if workers is None else workers
        offsets = {}
        for tp, worker in workers.items():
            offset = worker.offsets.committable()
            if offset is None and tp in self.fresh:
                # Knative commits where a new group starts, so `latest` skips nothing after a rebalance.
                offset = worker.offsets.first_fetched
            if offset is not None:
                offsets[tp] = offset
                self.fresh.discard(tp)
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance is under way; the new owner re-reads from the last good commit (at-least-once).
            log.warning("kafkasource %s: commit failed: %s", self.dispatcher.key, exc)
            return
        for tp, offset in offsets.items():
            workers[tp].offsets.committed(offset)

    def apply_backpressure(self) -> None:
        high = self.dispatcher.spec.max_in_flight_per_partition * 2
        for tp, worker in self.workers.items():
            if not worker.paused and worker.load >= high:
                self.consumer.pause(tp)
                worker.paused = True
            elif worker.paused and worker.load < high // 2:
                self.consumer.resume(tp)
                worker.paused = False

    def lag(self) -> int:
        total = 0
        for tp, worker in self.workers.items():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            committed = worker.offsets.committable()
            position = committed if committed is not None else worker.offsets.last_fetched
            if position is None:
                continue
            total += max(0, highwater - position)
        return total


class KafkaSourceDispatcher:
    """Runs one KafkaSource: `start()` launches `spec.consumers` consumer tasks, `stop()` commits and stops.

    `deliverer` must be started by the caller (it is shared by all dispatchers); `resolve_sink` turns the
    spec's sink and dead-letter sink into Destinations; `on_status(ready, reason, message)` reports readiness.
    """

    def __init__(
        self,
        spec: KafkaSourceSpec,
        deliverer: Deliverer,
        resolve_sink: SinkResolver,
        *,
        on_status: StatusCallback | None = None,
        on_progress: ProgressCallback | None = None,
        now: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        reconnect_backoff: tuple[float, float] = (0.5, 30.0),
        revoke_grace: float = 5.0,
        fetch_max_records: int = 500,
        tracer: SpanRecorder | None = None,
    ) -> None:
        self.spec = spec
        self._tracer = tracer
        self.counters = KafkaSourceCounters()
        self.revoke_grace = revoke_grace
        self._deliverer = deliverer
        self._resolve_sink = resolve_sink
        self._on_status = on_status
        self._on_progress = on_progress
        self._now = now
        self._sleep = sleep
        self._reconnect_backoff = reconnect_backoff
        self._fetch_max_records = fetch_max_records
        self._tasks: list[asyncio.Task[None]] = []
        self._members: list[_Member] = []
        self._stopping = asyncio.Event()
        self._status: tuple[bool, str, str] | None = None
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def key(self) -> str:
        return f"{self.spec.namespace}/{self.spec.name}"

    @property
    def status(self) -> tuple[bool, str, str] | None:
        return self._status

    def _report(self, ready: bool, reason: str = "", message: str = "") -> None:
        status = (ready, reason, message)
        if status == self._status:
            return
        self._status = status
        if self._on_status is not None:
            try:
                self._on_status(ready, reason, message)
            except Exception:
                log.exception("kafkasource %s: status callback failed", self.key)

    def _progress(self) -> None:
        if self._on_progress is not None:
            try:
                self._on_progress()
            except Exception:
                log.exception("kafkasource %s: progress callback failed", self.key)

    async def start(self) -> None:
        if self._tasks:
            return
        self._stopping.clear()
        for index in range(self.spec.consumers):
            self._tasks.append(asyncio.create_task(self._run_member(index), name=f"kafkasource:{self.key}:{index}"))

    async def stop(self) -> None:
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
            self._tls_dir = None

    def stats(self) -> KafkaSourceCounters:
        """Counters, with consumer lag refreshed."""
        self.counters.lag = sum(member.lag() for member in self._members)
        return self.counters

    # --- the consumer ---------------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        auth = self.spec.auth
        if not auth.tls_enabled:
            return None
        certfile = keyfile = None
        if auth.client_cert and auth.client_key:
            # ssl can only load a client certificate from files.
            if self._tls_dir is None:
                self._tls_dir = tempfile.TemporaryDirectory(prefix="wisp-kafka-tls-")
            directory = Path(self._tls_dir.name)
            (directory / "user.crt").write_text(auth.client_cert)
            (directory / "user.key").write_text(auth.client_key)
            (directory / "user.key").chmod(0o600)
            certfile, keyfile = str(directory / "user.crt"), str(directory / "user.key")
        context: ssl.SSLContext = create_ssl_context(cadata=auth.ca_cert, certfile=certfile, keyfile=keyfile)
        return context

    def _consumer(self) -> AIOKafkaConsumer:
        auth = self.spec.auth
        extra: dict[str, Any] = {}
        if auth.sasl_enabled:
            extra.update(
                sasl_mechanism=auth.sasl_mechanism,
                sasl_plain_username=auth.sasl_user,
                sasl_plain_password=auth.sasl_password,
            )
        return AIOKafkaConsumer(
            bootstrap_servers=list(self.spec.bootstrap_servers),
            group_id=self.spec.consumer_group,
            client_id=f"wisp-kafkasource-{self.spec.namespace}-{self.spec.name}",
            enable_auto_commit=False,
            auto_offset_reset=self.spec.initial_offset,
            security_protocol=auth.security_protocol,
            ssl_context=self._ssl_context(),
            max_poll_records=self._fetch_max_records,
            fetch_max_wait_ms=round(SHORT * 1000),  # then adapted to idleness: see fetch_wait
            # The fetcher's safety-net wake-up (it also wakes on every event it waits for); 200 ms by default.
            consumer_timeout_ms=1000,
            **extra,
        )

    async def _wait_or_stop(self, seconds: float) -> bool:
        """Sleep `seconds` unless stopping; True when stopping."""
        if self._stopping.is_set():
            return True
        stop = asyncio.ensure_future(self._stopping.wait())
        nap = asyncio.ensure_future(self._sleep(seconds))
        await asyncio.wait({stop, nap}, return_when=asyncio.FIRST_COMPLETED)
        for fut in (stop, nap):
            fut.cancel()
        return self._stopping.is_set()

    async def _run_member(self, index: int) -> None:
        delay, max_delay = self._reconnect_backoff
        while not self._stopping.is_set():
            consumer = self._consumer()
            try:
                await consumer.start()
            except Exception as exc:  # KafkaConnectionError, auth failures, DNS errors...
                with contextlib.suppress(Exception):
                    await consumer.stop()
                self._report(
                    False,
                    "KafkaUnreachable",
                    f"cannot connect to {','.join(self.spec.bootstrap_servers)}: {exc}",
                )
                log.warning("kafkasource %s: consumer %d cannot connect: %s", self.key, index, exc)
                if await self._wait_or_stop(delay):
                    return
                delay = min(delay * 2, max_delay)
                continue
            delay = self._reconnect_backoff[0]
            member = _Member(self, consumer, self._now())
            self._members.append(member)
            try:
                await self._check_topics(consumer)
                consumer.subscribe(list(self.spec.topics), listener=_Rebalance(member))
                await self._consume(member)
            except Exception as exc:
                self._report(False, "ConsumerFailed", str(exc))
                log.exception("kafkasource %s: consumer %d failed; reconnecting", self.key, index)
                await self._wait_or_stop(delay)
            finally:
                self._members.remove(member)
                await self._shutdown_member(member)

    async def _check_topics(self, consumer: AIOKafkaConsumer) -> None:
        known = await consumer.topics()
        missing = [t for t in self.spec.topics if t not in known]
        if missing:
            # Keep consuming: metadata refreshes pick the topics up once they exist.
            self._report(False, "TopicsNotPresent", f"topics do not exist: {', '.join(missing)}")
        else:
            # Not Ready yet: with `initialOffset: latest`, records sent before the group has its
            # partitions would be skipped, so readiness waits for the assignment (as Knative's does).
            self._report(False, "JoiningGroup", f"joining consumer group {self.spec.consumer_group}")

    async def _consume(self, member: _Member) -> None:
        consumer = member.consumer
        last_commit = self._now()
        while not self._stopping.is_set():
            set_fetch_wait(consumer, member.fetch_wait.wait(self._now()))
            batches = await self._fetch(member)
            if batches:
                member.fetch_wait.records(self._now())
                self._progress()
            for tp, records in batches.items():
                worker = member.workers.get(tp)
                if worker is None:
                    continue
                for record in records:
                    worker.add(record)
            member.apply_backpressure()
            if self._now() - last_commit >= self.spec.commit_interval or (member.fresh and batches):
                last_commit = self._now()
                await member.commit()

    async def _fetch(self, member: _Member) -> dict[TopicPartition, list[KafkaRecord]]:
        """The next records. While there is work to follow (backpressure, commits) it waits 200 ms at most; while
        quiet, up to `idle_poll_interval`, and a stop ends the wait at once."""
        consumer, limit = member.consumer, self._fetch_max_records
        if not member.quiet:
            batches: dict[TopicPartition, list[KafkaRecord]] = await consumer.getmany(timeout_ms=200,
                                                                                        max_records=limit)
            return batches
        fetch = asyncio.ensure_future(consumer.getmany(timeout_ms=round(self.spec.idle_poll_interval * 1000),
                                                       max_records=limit))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            fetch.cancel()
            raise
        finally:
            stop.cancel()
        if fetch.done():
            batches = fetch.result()
            return batches
        fetch.cancel()  # stopping: whatever it would have returned stays unconsumed, hence uncommitted
        with contextlib.suppress(asyncio.CancelledError):
            await fetch
        return {}

    async def _shutdown_member(self, member: _Member) -> None:
        with contextlib.suppress(Exception):
            await asyncio.gather(*(w.drain(self.revoke_grace) for w in member.workers.values()))
            await member.commit()
        with contextlib.suppress(Exception):
            await member.consumer.stop()

    # --- one record -------------------------------------------------------------------------------------

    async def _destinations(self) -> tuple[Destination, Destination | None] | None:
        """The sink and dead-letter sink; waits (reporting Ready=False) while the sink cannot be resolved."""
        while True:
            sink = self._resolve_sink(self.spec.sink)
            if sink is not None:
                dls_ref = self.spec.delivery.dead_letter_sink
                dls = self._resolve_sink(dls_ref) if dls_ref else None
                return sink, dls
            self._report(False, "SinkNotResolved", "the sink cannot be resolved yet")
            if await self._wait_or_stop(1.0):
                return None

    async def _handle(self, record: KafkaRecord) -> None:
        """Deliver one record; returns (settling the offset) whatever the payload or the sink did."""
        try:
            event: CloudEvent = record_to_event(record, self.spec.namespace, self.spec.name, self.spec.ce_overrides)
        except Exception:
            log.exception(
                "kafkasource %s: dropping unmappable record %s-%d@%d",
                self.key,
                record.topic,
                record.partition,
                record.offset,
            )
            self.counters.dropped += 1
            self._progress()
            return
        targets = await self._destinations()
        if targets is None:
            raise asyncio.CancelledError  # stopping: leave the offset unsettled so it is redelivered
        sink, dead_letter = targets
        # Continue the producer's trace with this hop, so the sink's spans hang under the dispatch.
        parent = parse_traceparent(event.get("traceparent")) if self._tracer is not None else None
        hop = child_of(parent) if parent is not None and parent.sampled else None
        if hop is not None:
            event["traceparent"] = hop.header()
        start_ns = self._tracer.now_ns() if hop is not None and self._tracer is not None else 0
        try:
            result: DeliveryResult = await self._deliverer.deliver(event, sink, self.spec.delivery, dead_letter)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("kafkasource %s: delivery of %s failed unexpectedly; dropping", self.key, event["id"])
            self.counters.dropped += 1
            self._progress()
            return
        self.counters.record(result)
        self._progress()
        if hop is not None and parent is not None and self._tracer is not None:
            self._tracer.record_span(
                hop.trace_id, hop.span_id, parent.span_id, "kafka-source", "wisp", start_ns, self._tracer.now_ns(),
                {"wisp.source": self.key, "messaging.kafka.topic": record.topic,
                 "messaging.kafka.partition": record.partition, "messaging.kafka.offset": record.offset,
                 "wisp.outcome": result.outcome, "wisp.attempts": result.attempts},
                kind="CONSUMER", error=None if result.outcome == "delivered" else result.reason or result.outcome)
        if result.outcome == "dropped":
            log.warning(
                "kafkasource %s: dropped %s after %d attempt(s): %s",
                self.key,
                event["id"],
                result.attempts,
                result.reason,
            )
