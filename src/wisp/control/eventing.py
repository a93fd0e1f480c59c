"""Reconcilers for KafkaSource, Broker, Trigger, PingSource and SinkBinding.

Each running piece (a source dispatcher, a trigger dispatcher, a ping runner) is kept with the spec it
was built from; a reconcile that finds the same spec changes nothing, a changed one restarts it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.api.kinds import Kind
from wisp.control.conditions import Condition
from wisp.control.controller import Key, keys_of
from wisp.control.kafka_cluster import KafkaCluster
from wisp.control.sinks import BROKER_INGRESS_HOST, SinkResolver
from wisp.control.status import write_status
from wisp.eventing.broker import (
    Brokers,
    KafkaBroker,
    LogBroker,
    broker_ingress_app,
    is_kafka_broker,
    kafka_broker_topic,
)
from wisp.eventing.broker_log import BrokerLog, CursorKey
from wisp.eventing.cloudevents import CloudEvent
from wisp.eventing.delivery import Deliverer, DeliveryCounters, DeliverySpec, Destination, kafka_source_delivery
from wisp.eventing.filters import FilterError
from wisp.eventing.kafka_source import KafkaAuth, KafkaSourceDispatcher, KafkaSourceSpec
from wisp.eventing.local_kafka import ensure_topics
from wisp.eventing.ping_source import PingRunner
from wisp.eventing.trigger_dispatcher import (
    KafkaTriggerDispatcher,
    LogTriggerDispatcher,
    TriggerHandler,
    trigger_config,
)
from wisp.observability.metrics import SourceState
from wisp.observability.recorder import SpanRecorder
from wisp.store import Store, StoreEvent
from wisp.types import Clock, Resource

log = logging.getLogger("wisp.eventing")

# Partitions of topics wisp creates on its local Kafka: enough for ordered sources to run in parallel.
LOCAL_PARTITIONS = 4
# A KafkaSource's status (delivery counters, lag) is rewritten at most this often while it has progress to
# report, and not at all while it has none.
STATUS_REFRESH_INTERVAL = 2.0


class _Stoppable(Protocol):
    async def stop(self) -> None: ...


@dataclass
class _Running:
    spec: Any  # what the piece was built from; equal spec → nothing to do
    piece: _Stoppable


def _secret_value(store: Store, namespace: str, ref: Mapping[str, Any] | None) -> str | None:
    key_ref = (ref or {}).get("secretKeyRef") if isinstance(ref, Mapping) else None
    if not isinstance(key_ref, Mapping):
        return None
    secret = store.get(k.SECRET, namespace, str(key_ref.get("name", "")))
    if secret is None:
        raise ManifestError([], f'secret "{key_ref.get("name")}" not found')
    key = str(key_ref.get("key", ""))
    if key in (secret.get("data") or {}):
        return base64.b64decode(secret["data"][key]).decode()
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    raise ManifestError([], f'key "{key}" not found in secret "{key_ref.get("name")}"')


def kafka_auth(store: Store, namespace: str, net: Mapping[str, Any] | None) -> KafkaAuth:
    """Knative's `net.sasl` / `net.tls` with every secret reference resolved."""
    net = net or {}
    sasl = net.get("sasl") or {}
    tls = net.get("tls") or {}
    return KafkaAuth(
        sasl_enabled=bool(sasl.get("enable")),
        sasl_mechanism=_secret_value(store, namespace, sasl.get("type")) or "PLAIN",
        sasl_user=_secret_value(store, namespace, sasl.get("user")),
        sasl_password=_secret_value(store, namespace, sasl.get("password")),
        tls_enabled=bool(tls.get("enable")),
        ca_cert=_secret_value(store, namespace, tls.get("caCert")),
        client_cert=_secret_value(store, namespace, tls.get("cert")),
        client_key=_secret_value(store, namespace, tls.get("key")),
    )


def _split(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    return tuple(str(i).strip() for i in items if str(i).strip())


class EventingReconciler:
    kinds = (k.KAFKA_SOURCE, k.BROKER, k.TRIGGER, k.PING_SOURCE, k.SINK_BINDING)

    def __init__(self, store: Store, sinks: SinkResolver, kafka: KafkaCluster, state_dir: Path, clock: Clock,
                 tracer: SpanRecorder | None = None) -> None:
        self.store = store
        self.tracer = tracer
        self.sinks = sinks
        self.kafka = kafka
        self.clock = clock
        self.deliverer = Deliverer()
        self.broker_log = BrokerLog(state_dir / "broker.db")
        self.brokers = Brokers()
        self._producer: AIOKafkaProducer | None = None
        self._running: dict[tuple[Kind, str, str], _Running] = {}
        self._source_status: dict[tuple[str, str], tuple[bool, str, str]] = {}
        self._ping_counters: dict[tuple[str, str], DeliveryCounters] = {}
        self._refresh_due: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self.enqueue: Any = lambda kind, ns, name: None  # set by the daemon once the controller exists

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.deliverer.start()
        await self.broker_log.start()

    async def stop(self) -> None:
        """Dispatchers first (in-flight deliveries settle or are left uncommitted), then what they use."""
        for handle in self._refresh_due.values():
            handle.cancel()
        self._refresh_due.clear()
        await asyncio.gather(*(r.piece.stop() for r in self._running.values()), return_exceptions=True)
        self._running.clear()
        if self._producer is not None:
            await self._producer.stop()
        await self.broker_log.stop()
        await self.deliverer.stop()

    def source_states(self) -> list[SourceState]:
        """Delivery counters of every running KafkaSource, for /metrics."""
        states = []
        for (kind, namespace, name), running in list(self._running.items()):
            piece = running.piece
            lag: int | None = None
            if isinstance(piece, KafkaSourceDispatcher):
                counters: DeliveryCounters = piece.stats()
                lag = piece.stats().lag
            elif isinstance(piece, LogTriggerDispatcher | KafkaTriggerDispatcher):
                counters = piece.handler.counters
            else:
                counters = self._ping_counters.setdefault((namespace, name), DeliveryCounters())
            states.append(SourceState(kind.kind, namespace, name, counters.delivered, counters.retried,
                                      counters.dead_lettered, counters.dropped, lag))
        return states

    def ingress_app(self, max_body_bytes: int) -> Any:
        return broker_ingress_app(self.brokers, max_body_bytes=max_body_bytes)

    # -- dispatch --------------------------------------------------------------------------------
    async def reconcile(self, kind: Kind, namespace: str, name: str) -> None:
        resource = self.store.get(kind, namespace, name)
        if resource is None:
            return
        handler = {
            k.KAFKA_SOURCE: self._kafka_source, k.BROKER: self._broker, k.TRIGGER: self._trigger,
            k.PING_SOURCE: self._ping_source, k.SINK_BINDING: self._sink_binding,
        }[kind]
        await handler(resource)

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        meta = resource["metadata"]
        namespace, name = meta.get("namespace", "default"), meta["name"]
        await self._stop_piece((kind, namespace, name))
        if kind is k.BROKER:
            self.brokers.remove(namespace, name)
        elif kind is k.TRIGGER:
            broker = str(resource.get("spec", {}).get("broker", "default"))
            await self.broker_log.drop_cursor(CursorKey(namespace, broker, name))
        elif kind is k.KAFKA_SOURCE:
            self._source_status.pop((namespace, name), None)
        elif kind is k.PING_SOURCE:
            self._ping_counters.pop((namespace, name), None)

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        kind, namespace, _ = event.key
        if kind in (k.SERVICE, k.BROKER, k.ROUTE):
            self.sinks.invalidate()
            # A sink or subscriber may have appeared or gone.
            for sink_kind in (k.KAFKA_SOURCE, k.TRIGGER, k.PING_SOURCE, k.SINK_BINDING):
                yield from keys_of(sink_kind, self.store.list(sink_kind, namespace))
        if kind is k.SECRET:
            yield from keys_of(k.KAFKA_SOURCE, self.store.list(k.KAFKA_SOURCE, namespace))
        if kind is k.SINK_BINDING:
            # Bound workloads get K_SINK in their environment: their revisions pick it up.
            yield from keys_of(k.REVISION, self.store.list(k.REVISION, namespace))

    # -- KafkaSource -----------------------------------------------------------------------------
    async def _kafka_source(self, source: Resource) -> None:
        meta, spec = source["metadata"], source["spec"]
        namespace, name = meta["namespace"], meta["name"]
        key = (k.KAFKA_SOURCE, namespace, name)
        status: dict[str, Any] = {"observedGeneration": meta["generation"]}
        sink_uri = self.sinks.reported_uri(spec.get("sink") or {}, namespace)
        if sink_uri:
            status["sinkUri"] = sink_uri
        try:
            source_spec = KafkaSourceSpec(
                namespace=namespace, name=name,
                bootstrap_servers=_split(spec.get("bootstrapServers")), topics=_split(spec.get("topics")),
                sink=spec.get("sink") or {}, consumer_group=str(spec.get("consumerGroup")),
                delivery=kafka_source_delivery(spec.get("delivery"), meta.get("annotations") or {}),
                ordering=spec.get("ordering", "ordered"), initial_offset=spec.get("initialOffset", "latest"),
                consumers=int(spec.get("consumers", 1) or 1),
                ce_overrides=(spec.get("ceOverrides") or {}).get("extensions") or {},
                auth=kafka_auth(self.store, namespace, spec.get("net")),
            )
        except (ManifestError, ValueError) as exc:
            await self._stop_piece(key)
            self._put_status(k.KAFKA_SOURCE, source, status, [Condition.false("Ready", "InvalidSpec", str(exc))])
            return
        running = self._running.get(key)
        if running is None or running.spec != source_spec:
            await self._stop_piece(key)
            if self.kafka.is_local and any(s.split(":")[0] in ("127.0.0.1", "localhost")
                                           for s in source_spec.bootstrap_servers):
                bootstrap = await self.kafka.ensure()
                await ensure_topics(bootstrap, source_spec.topics, partitions=LOCAL_PARTITIONS)
            dispatcher = KafkaSourceDispatcher(
                source_spec, self.deliverer, lambda sink: self.sinks.destination(sink, namespace),
                on_status=partial(self._on_source_status, namespace, name),
                on_progress=partial(self._on_source_progress, namespace, name), tracer=self.tracer,
            )
            await dispatcher.start()
            self._running[key] = _Running(source_spec, dispatcher)
            running = self._running[key]
        assert isinstance(running.piece, KafkaSourceDispatcher)
        counters = running.piece.stats()
        status["deliveryStats"] = {"delivered": counters.delivered, "retried": counters.retried,
                                   "deadLettered": counters.dead_lettered, "dropped": counters.dropped,
                                   "lag": counters.lag}
        status["consumers"] = source_spec.consumers
        ready, reason, message = self._source_status.get((namespace, name), (False, "Connecting",
                                                                             "connecting to the Kafka cluster"))
        conditions = [Condition.true("SinkProvided") if sink_uri else
                      Condition.false("SinkProvided", "SinkNotFound", "the sink does not exist yet"),
                      Condition.true("ConnectionEstablished") if ready else
                      Condition.false("ConnectionEstablished", reason or "NotReady", message)]
        self._put_status(k.KAFKA_SOURCE, source, status, conditions)

    def _on_source_status(self, namespace: str, name: str, ready: bool, reason: str, message: str) -> None:
        self._source_status[(namespace, name)] = (ready, reason, message)
        self.enqueue(k.KAFKA_SOURCE, namespace, name)

    def _on_source_progress(self, namespace: str, name: str) -> None:
        """Records were fetched or settled: refresh the status once, STATUS_REFRESH_INTERVAL from now (the
        progress until then is in that one write). No progress, no timer: an idle source costs nothing."""
        key = (namespace, name)
        if key in self._refresh_due:
            return

        def refresh() -> None:
            self._refresh_due.pop(key, None)
            self.enqueue(k.KAFKA_SOURCE, namespace, name)

        self._refresh_due[key] = asyncio.get_running_loop().call_later(STATUS_REFRESH_INTERVAL, refresh)

    # -- Broker ----------------------------------------------------------------------------------
    async def _broker(self, broker: Resource) -> None:
        meta = broker["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        status: dict[str, Any] = {"observedGeneration": meta["generation"]}
        if is_kafka_broker(broker):
            bootstrap = await self.kafka.ensure()
            topic = kafka_broker_topic(namespace, name)
            await ensure_topics(bootstrap, [topic], partitions=LOCAL_PARTITIONS)
            if self._producer is None:
                self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
                await self._producer.start()
            self.brokers.put(KafkaBroker(self._producer, namespace, name))
        else:
            self.brokers.put(LogBroker(self.broker_log, namespace, name))
        url = self.sinks.reported_uri({"ref": {"kind": "Broker", "name": name, "namespace": namespace}}, namespace)
        status["address"] = {"url": url}
        status["url"] = url
        conditions = [Condition.true("Addressable"), Condition.true("IngressReady"),
                      Condition.true("TriggerChannelReady"), Condition.true("FilterReady")]
        self._put_status(k.BROKER, broker, status, conditions)

    # -- Trigger ---------------------------------------------------------------------------------
    async def _trigger(self, trigger: Resource) -> None:
        meta, spec = trigger["metadata"], trigger["spec"]
        namespace, name = meta["namespace"], meta["name"]
        key = (k.TRIGGER, namespace, name)
        status: dict[str, Any] = {"observedGeneration": meta["generation"]}
        broker_name = str(spec.get("broker", "default"))
        broker = self.store.get(k.BROKER, namespace, broker_name)
        if broker is None:
            await self._stop_piece(key)
            self._put_status(k.TRIGGER, trigger, status, [
                Condition.false("BrokerReady", "BrokerDoesNotExist", f'Broker "{broker_name}" does not exist')])
            return
        subscriber = self.sinks.destination(spec.get("subscriber") or {}, namespace)
        if subscriber is None:
            await self._stop_piece(key)
            self._put_status(k.TRIGGER, trigger, status, [
                Condition.true("BrokerReady"),
                Condition.false("SubscriberResolved", "Unable to get the Subscriber's URI",
                                "spec.subscriber: the subscriber does not exist yet")])
            return
        status["subscriberUri"] = self.sinks.reported_uri(spec.get("subscriber") or {}, namespace)

        def resolve(destination: Mapping[str, Any]) -> Destination:
            found = self.sinks.destination(destination, namespace)
            if found is None:
                raise ManifestError([], f"destination {dict(destination)} cannot be resolved")
            return found

        try:
            config = trigger_config(trigger, broker, resolve)
        except (FilterError, ManifestError) as exc:
            await self._stop_piece(key)
            self._put_status(k.TRIGGER, trigger, status, [Condition.false("Ready", "InvalidSpec", str(exc))])
            return
        wanted = (config.subscriber, config.delivery, config.dead_letter, repr(spec.get("filter")),
                  repr(spec.get("filters")), is_kafka_broker(broker))
        running = self._running.get(key)
        if running is None or running.spec != wanted:
            await self._stop_piece(key)
            handler = TriggerHandler(config, self.deliverer, self.brokers)
            dispatcher: LogTriggerDispatcher | KafkaTriggerDispatcher
            if is_kafka_broker(broker):
                bootstrap = await self.kafka.ensure()
                dispatcher = KafkaTriggerDispatcher(
                    handler, partial(AIOKafkaConsumer, bootstrap_servers=bootstrap),
                    kafka_broker_topic(namespace, broker_name), initial_offset="latest")
            else:
                dispatcher = LogTriggerDispatcher(handler, self.broker_log)
            await dispatcher.start()
            self._running[key] = _Running(wanted, dispatcher)
        conditions = [Condition.true("BrokerReady"), Condition.true("SubscriberResolved"),
                      Condition.true("DependencyReady")]
        self._put_status(k.TRIGGER, trigger, status, conditions)

    # -- PingSource ------------------------------------------------------------------------------
    async def _ping_source(self, source: Resource) -> None:
        meta, spec = source["metadata"], source["spec"]
        namespace, name = meta["namespace"], meta["name"]
        key = (k.PING_SOURCE, namespace, name)
        status: dict[str, Any] = {"observedGeneration": meta["generation"]}
        sink = spec.get("sink") or {}
        destination = self.sinks.destination(sink, namespace)
        if destination is None:
            await self._stop_piece(key)
            self._put_status(k.PING_SOURCE, source, status, [
                Condition.false("SinkProvided", "NotFound", "spec.sink: the sink does not exist yet")])
            return
        status["sinkUri"] = self.sinks.reported_uri(sink, namespace)
        delivery = DeliverySpec.from_knative(spec.get("delivery"))
        wanted = (spec.get("schedule"), spec.get("timezone"), spec.get("data"), spec.get("dataBase64"),
                  spec.get("contentType"), destination, delivery, repr(spec.get("ceOverrides")))
        running = self._running.get(key)
        if running is None or running.spec != wanted:
            await self._stop_piece(key)

            counters = self._ping_counters.setdefault((namespace, name), DeliveryCounters())

            async def emit(event: CloudEvent) -> None:
                result = await self.deliverer.deliver(event, destination, delivery)
                counters.record(result)
                if result.outcome != "delivered":
                    log.warning("pingsource %s/%s: event %s: %s", namespace, name, result.outcome, result.reason)

            runner = PingRunner(source, emit, clock=self.clock)
            await runner.start()
            self._running[key] = _Running(wanted, runner)
        self._put_status(k.PING_SOURCE, source, status, [Condition.true("SinkProvided"), Condition.true("Deployed")])

    # -- SinkBinding -----------------------------------------------------------------------------
    async def _sink_binding(self, binding: Resource) -> None:
        meta, spec = binding["metadata"], binding["spec"]
        status: dict[str, Any] = {"observedGeneration": meta["generation"]}
        uri = self.sinks.reported_uri(spec.get("sink") or {}, meta["namespace"])
        if uri is None:
            self._put_status(k.SINK_BINDING, binding, status, [
                Condition.false("SinkProvided", "NotFound", "spec.sink: the sink does not exist yet")])
            return
        status["sinkUri"] = uri
        self._put_status(k.SINK_BINDING, binding, status, [Condition.true("SinkProvided"),
                                                           Condition.true("BindingAvailable")])

    def binding_env(self, namespace: str, subject: Resource) -> dict[str, str]:
        """K_SINK / K_CE_OVERRIDES for a workload, from every SinkBinding whose subject it is."""
        from wisp.eventing.sink_binding import env_for_subject

        def resolve(sink: Mapping[str, Any], ns: str) -> str:
            return self.sinks.instance_url(sink, ns) or ""

        return env_for_subject(self.store.list(k.SINK_BINDING, namespace), subject, resolve)

    # -- helpers ---------------------------------------------------------------------------------
    async def _stop_piece(self, key: tuple[Kind, str, str]) -> None:
        running = self._running.pop(key, None)
        if running is not None:
            await running.piece.stop()

    def _put_status(self, kind: Kind, resource: Resource, status: dict[str, Any],
                    conditions: list[Condition]) -> None:
        write_status(self.store, kind, resource, status, conditions, self.clock())


__all__ = ["BROKER_INGRESS_HOST", "EventingReconciler"]
