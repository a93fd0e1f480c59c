"""Broker: registers the broker with the ingress (a log in broker.db, or a Kafka topic for the Kafka class)."""

from __future__ import annotations

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.eventing import builders as b
from wisp.control.eventing.base import EventingContext, KindReconciler, name_of
from wisp.control.eventing.kafka_source import LOCAL_PARTITIONS
from wisp.control.eventing.producer import SharedProducer
from wisp.control.kafka_cluster import KafkaCluster
from wisp.eventing.broker import Brokers, KafkaBroker, LogBroker, is_kafka_broker, kafka_broker_topic
from wisp.eventing.broker_log import BrokerLog
from wisp.eventing.local_kafka import ensure_topics
from wisp.types import Resource


class BrokerReconciler(KindReconciler):
    kind = k.BROKER

    def __init__(self, ctx: EventingContext, kafka: KafkaCluster, brokers: Brokers, broker_log: BrokerLog,
                 producer: SharedProducer) -> None:
        super().__init__(ctx)
        self._kafka = kafka
        self._brokers = brokers
        self._broker_log = broker_log
        self._producer = producer

    async def apply(self, broker: Resource) -> None:
        namespace, name = name_of(broker)
        if is_kafka_broker(broker):
            bootstrap = await self._kafka.ensure()
            await ensure_topics(bootstrap, [kafka_broker_topic(namespace, name)], partitions=LOCAL_PARTITIONS)
            self._brokers.put(KafkaBroker(await self._producer.get(bootstrap), namespace, name))
        else:
            self._brokers.put(LogBroker(self._broker_log, namespace, name))
        url = self.ctx.sinks.reported_uri({"ref": {"kind": "Broker", "name": name, "namespace": namespace}}, namespace)
        self.write_status(broker, b.broker_status(broker, url))

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        self._brokers.remove(*name_of(resource))
