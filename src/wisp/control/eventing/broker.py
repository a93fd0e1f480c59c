"""Broker: registers the broker with the ingress (a log in broker.db, or a Kafka topic for the Kafka class),
which also registers the types of the events it takes when EventType auto-creation is on."""

from __future__ import annotations

from collections.abc import Iterable

from wisp.api import kinds as k
from wisp.api.defaults_flows import EVENTING_NAMESPACE
from wisp.api.kinds import Kind
from wisp.control.controller import Key, keys_of
from wisp.control.eventing import builders as b
from wisp.control.eventing.base import EventingContext, KindReconciler, name_of
from wisp.control.eventing.event_type import CONFIG_FEATURES, AutoEventTypes, ObservedBroker, auto_create_enabled
from wisp.control.eventing.kafka_source import LOCAL_PARTITIONS
from wisp.control.eventing.producer import SharedProducer
from wisp.control.kafka_cluster import KafkaCluster
from wisp.eventing.broker import Broker, Brokers, KafkaBroker, LogBroker, is_kafka_broker, kafka_broker_topic
from wisp.eventing.broker_log import BrokerLog
from wisp.eventing.local_kafka import ensure_topics
from wisp.store import StoreEvent
from wisp.types import Resource


class BrokerReconciler(KindReconciler):
    kind = k.BROKER

    def __init__(self, ctx: EventingContext, kafka: KafkaCluster, brokers: Brokers, broker_log: BrokerLog,
                 producer: SharedProducer, event_types: AutoEventTypes | None = None) -> None:
        super().__init__(ctx)
        self._kafka = kafka
        self._brokers = brokers
        self._broker_log = broker_log
        self._producer = producer
        self._event_types = event_types  # EventType auto-creation, when the feature is on

    async def apply(self, broker: Resource) -> None:
        namespace, name = name_of(broker)
        taker: Broker
        if is_kafka_broker(broker):
            bootstrap = await self._kafka.ensure()
            await ensure_topics(bootstrap, [kafka_broker_topic(namespace, name)], partitions=LOCAL_PARTITIONS)
            taker = KafkaBroker(await self._producer.get(bootstrap), namespace, name)
        else:
            taker = LogBroker(self._broker_log, namespace, name)
        if self._event_types is not None and auto_create_enabled(self.ctx.store):
            taker = ObservedBroker(taker, self._event_types.observer(broker))
        self._brokers.put(taker)
        url = self.ctx.sinks.reported_uri({"ref": {"kind": "Broker", "name": name, "namespace": namespace}}, namespace)
        self.write_status(broker, b.broker_status(broker, url))

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        self._brokers.remove(*name_of(resource))

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        """Every Broker when Knative's feature flags change (EventType auto-creation on or off)."""
        kind, namespace, name = event.key
        if kind is k.CONFIG_MAP and (namespace, name) == (EVENTING_NAMESPACE, CONFIG_FEATURES):
            return keys_of(k.BROKER, self.ctx.store.list(k.BROKER))
        return []
