"""Broker: registers the broker with the ingress (a log in broker.db, a Kafka topic for the Kafka class, or
the trigger channel of a channel-based MTChannelBasedBroker), which also registers the types of the events it
takes when EventType auto-creation is on."""

from __future__ import annotations

from collections.abc import Iterable

from wisp.api import kinds as k
from wisp.api.defaults_flows import EVENTING_NAMESPACE
from wisp.api.kinds import Kind
from wisp.control.conditions import Condition
from wisp.control.controller import Key, keys_of
from wisp.control.eventing import builders as b
from wisp.control.eventing import flow_builders as fb
from wisp.control.eventing.base import EventingContext, KindReconciler, name_of
from wisp.control.eventing.builders import Status
from wisp.control.eventing.channel_broker import (
    CHANNEL_KINDS,
    ChannelBroker,
    ChannelTemplateError,
    broker_channel,
    running_channel,
)
from wisp.control.eventing.event_type import CONFIG_FEATURES, AutoEventTypes, ObservedBroker, auto_create_enabled
from wisp.control.eventing.kafka_source import LOCAL_PARTITIONS
from wisp.control.eventing.producer import SharedProducer
from wisp.control.kafka_cluster import KafkaCluster
from wisp.eventing.broker import Broker, Brokers, KafkaBroker, LogBroker, is_kafka_broker, kafka_broker_topic
from wisp.eventing.broker_log import BrokerLog
from wisp.eventing.channel import Channels
from wisp.eventing.kafka_channel import KafkaChannels
from wisp.eventing.local_kafka import ensure_topics
from wisp.store import StoreEvent
from wisp.types import Resource


class BrokerReconciler(KindReconciler):
    kind = k.BROKER

    def __init__(self, ctx: EventingContext, kafka: KafkaCluster, brokers: Brokers, broker_log: BrokerLog,
                 producer: SharedProducer, event_types: AutoEventTypes | None = None,
                 channels: Channels | None = None, kafka_channels: KafkaChannels | None = None) -> None:
        super().__init__(ctx)
        self._kafka = kafka
        self._brokers = brokers
        self._broker_log = broker_log
        self._producer = producer
        self._event_types = event_types  # EventType auto-creation, when the feature is on
        # The channels a channel-based Broker runs on (channel_broker.py).
        self._channels = channels or Channels({})
        self._kafka_channels = kafka_channels or KafkaChannels({})

    async def _on_channel(self, broker: Resource) -> Broker | Status | None:
        """A channel-based Broker's trigger channel made and, once it runs, the broker taking events into it; a
        status to write while it cannot; None for a Broker on the broker log."""
        namespace, name = name_of(broker)
        try:
            found = broker_channel(self.ctx.store, broker)
        except ChannelTemplateError as exc:
            return b.invalid_spec(broker, str(exc))
        if found is None:
            return None
        self.ctx.store.apply([(found.kind, fb.physical_channel(found.template, broker, found.name))])
        channel = running_channel(self._channels, self._kafka_channels, namespace, found)
        if channel is None:
            return b.observed(broker), [Condition.unknown("TriggerChannelReady", "ChannelNotReady",
                                                           f'{found.kind.kind} "{found.name}" is not ready yet')]
        return ChannelBroker(namespace, name, channel)

    async def apply(self, broker: Resource) -> None:
        namespace, name = name_of(broker)
        taker: Broker
        on_channel = await self._on_channel(broker)
        if isinstance(on_channel, tuple):
            self._brokers.remove(namespace, name)
            self.write_status(broker, on_channel)
            return
        if on_channel is not None:
            taker = on_channel
        elif is_kafka_broker(broker):
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
        """Every Broker when a ConfigMap changes (Knative's feature flags, or a channel-based Broker's config);
        the Broker owning a trigger channel that changed."""
        kind, namespace, name = event.key
        if kind is k.CONFIG_MAP:
            if (namespace, name) == (EVENTING_NAMESPACE, CONFIG_FEATURES):
                return keys_of(k.BROKER, self.ctx.store.list(k.BROKER))
            return keys_of(k.BROKER, [br for br in self.ctx.store.list(k.BROKER)
                                      if ((br.get("spec") or {}).get("config") or {}).get("name") == name])
        if kind in CHANNEL_KINDS:
            meta = event.resource["metadata"]
            return [(k.BROKER, namespace, ref["name"]) for ref in meta.get("ownerReferences") or []
                    if ref.get("kind") == "Broker" and ref.get("controller")]
        return []
