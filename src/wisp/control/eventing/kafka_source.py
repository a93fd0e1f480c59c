"""KafkaSource: a consumer-group dispatcher per source, its status from the dispatcher's reports and counters.

The sink and dead-letter sink are resolved here, at reconcile time, as a Trigger's subscriber is: a change of
the resolution restarts the dispatcher. Unlike a Trigger's, the dispatcher runs while its sink is missing: the
records wait in the consumer group (the lag shows them) from the offset it committed when it first joined."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.api.kinds import Kind
from wisp.control.controller import Enqueue, Key, keys_of
from wisp.control.eventing import builders as b
from wisp.control.eventing.base import EventingContext, PieceReconciler, name_of
from wisp.control.eventing.kafka_auth import kafka_auth
from wisp.control.eventing.status_refresh import STATUS_REFRESH_INTERVAL, StatusRefresh
from wisp.control.kafka_cluster import KafkaCluster
from wisp.eventing.delivery import Deliverer, DeliveryCounters
from wisp.eventing.kafka_source import KafkaSourceDispatcher
from wisp.eventing.local_kafka import ensure_topics
from wisp.observability.recorder import SpanRecorder
from wisp.store import StoreEvent
from wisp.types import Resource

# Partitions of topics wisp creates on its local Kafka: enough for ordered sources to run in parallel.
LOCAL_PARTITIONS = 4


class KafkaSourceReconciler(PieceReconciler[KafkaSourceDispatcher]):
    kind = k.KAFKA_SOURCE

    def __init__(self, ctx: EventingContext, kafka: KafkaCluster, deliverer: Deliverer, enqueue: Enqueue,
                 tracer: SpanRecorder | None = None, refresh_interval: float = STATUS_REFRESH_INTERVAL) -> None:
        super().__init__(ctx)
        self._kafka = kafka
        self._deliverer = deliverer
        self._enqueue = enqueue
        self._tracer = tracer
        self._connection: dict[tuple[str, str], b.Connection] = {}
        self.refresh = StatusRefresh(partial(enqueue, self.kind), refresh_interval)

    async def apply(self, source: Resource) -> None:
        key = name_of(source)
        namespace = key[0]
        sink_uri = self.ctx.sinks.reported_uri(source["spec"].get("sink") or {}, namespace)
        try:
            spec = b.kafka_source_spec(source, kafka_auth(self.ctx.store, namespace, source["spec"].get("net")))
        except (ManifestError, ValueError) as exc:
            await self.pieces.stop(key)
            self.write_status(source, b.invalid_spec(source, str(exc), **({"sinkUri": sink_uri} if sink_uri else {})))
            return
        sinks = b.resolve_sinks(spec, partial(self.ctx.sinks.destination, namespace=namespace))

        async def build() -> KafkaSourceDispatcher:
            if self._kafka.is_local and b.uses_local_kafka(spec.bootstrap_servers):
                bootstrap = await self._kafka.ensure()
                await ensure_topics(bootstrap, spec.topics, partitions=LOCAL_PARTITIONS)
            return KafkaSourceDispatcher(spec, self._deliverer, sinks, on_status=partial(self._on_status, *key),
                                         on_progress=partial(self.refresh.progress, *key), tracer=self._tracer)

        dispatcher = await self.pieces.ensure(key, (spec, sinks), build)
        stats = dispatcher.stats()
        self.write_status(source, b.kafka_source_status(source, sink_uri, stats, stats.lag, spec.consumers,
                                                        self._connection.get(key, b.CONNECTING)))

    def _on_status(self, namespace: str, name: str, ready: bool, reason: str, message: str) -> None:
        self._connection[(namespace, name)] = b.Connection(ready, reason, message)
        self._enqueue(self.kind, namespace, name)

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        await super().deleted(kind, resource)
        self._connection.pop(name_of(resource), None)

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        if event.key[0] is k.SECRET:  # net.sasl / net.tls read Secrets
            return keys_of(self.kind, self.ctx.store.list(self.kind, event.key[1]))
        return self.sink_dependents(event)

    async def stop(self) -> None:
        self.refresh.stop()
        await super().stop()

    def counters(self, namespace: str, name: str, piece: KafkaSourceDispatcher) -> tuple[DeliveryCounters, int | None]:
        stats = piece.stats()
        return stats, stats.lag

