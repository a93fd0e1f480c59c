"""Trigger: its subscriber and dead-letter sink resolved here, then one dispatcher reading its broker (the
broker log with its own cursor, the broker's Kafka topic with its own consumer group, or a channel-based
Broker's trigger channel)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.api.kinds import Kind
from wisp.control.conditions import Condition
from wisp.control.controller import Key
from wisp.control.eventing import builders as b
from wisp.control.eventing.base import EventingContext, PieceReconciler, name_of
from wisp.control.eventing.channel_broker import (
    ChannelTemplateError,
    ChannelTrigger,
    broker_channel,
    running_channel,
)
from wisp.control.kafka_cluster import KafkaCluster
from wisp.eventing.broker import Brokers, is_kafka_broker, kafka_broker_topic
from wisp.eventing.broker_log import BrokerLog, CursorKey
from wisp.eventing.channel import Channels, InMemoryChannel
from wisp.eventing.delivery import Deliverer, DeliveryCounters, Destination
from wisp.eventing.filters import FilterError
from wisp.eventing.kafka_channel import KafkaChannelIngress, KafkaChannels
from wisp.eventing.trigger_dispatcher import (
    KafkaTriggerDispatcher,
    LogTriggerDispatcher,
    TriggerHandler,
    trigger_config,
)
from wisp.store import StoreEvent
from wisp.types import Resource

TriggerDispatcher = LogTriggerDispatcher | KafkaTriggerDispatcher | ChannelTrigger


class TriggerReconciler(PieceReconciler[TriggerDispatcher]):
    kind = k.TRIGGER

    def __init__(self, ctx: EventingContext, kafka: KafkaCluster, deliverer: Deliverer, brokers: Brokers,
                 broker_log: BrokerLog, channels: Channels | None = None,
                 kafka_channels: KafkaChannels | None = None) -> None:
        super().__init__(ctx)
        self._kafka = kafka
        self._deliverer = deliverer
        self._brokers = brokers
        self._broker_log = broker_log
        # A channel-based Broker's trigger channel is where its Triggers read (channel_broker.py).
        self._channels = channels or Channels({})
        self._kafka_channels = kafka_channels or KafkaChannels({})

    async def apply(self, trigger: Resource) -> None:
        key = name_of(trigger)
        namespace = key[0]
        broker_name = b.trigger_broker(trigger)
        broker = self.ctx.store.get(k.BROKER, namespace, broker_name)
        if broker is None:
            await self.pieces.stop(key)
            self.write_status(trigger, b.trigger_broker_missing(trigger))
            return
        subscriber = trigger["spec"].get("subscriber") or {}
        if self.ctx.sinks.destination(subscriber, namespace) is None:
            await self.pieces.stop(key)
            self.write_status(trigger, b.trigger_subscriber_missing(trigger))
            return
        subscriber_uri = self.ctx.sinks.reported_uri(subscriber, namespace)

        def resolve(destination: Mapping[str, Any]) -> Destination:
            found = self.ctx.sinks.destination(destination, namespace)
            if found is None:
                raise ManifestError([], f"destination {dict(destination)} cannot be resolved")
            return found

        try:
            config = trigger_config(trigger, broker, resolve)
        except (FilterError, ManifestError) as exc:
            await self.pieces.stop(key)
            self.write_status(trigger, b.invalid_spec(trigger, str(exc), subscriberUri=subscriber_uri))
            return
        kafka_class = is_kafka_broker(broker)
        try:
            found = broker_channel(self.ctx.store, broker)
        except ChannelTemplateError as exc:  # the Broker reports it too; its Triggers wait for it to be fixed
            await self.pieces.stop(key)
            self.write_status(trigger, (b.observed(trigger), [
                Condition.false("BrokerReady", "BrokerNotReady", f'Broker "{broker_name}": {exc}')]))
            return
        channel = running_channel(self._channels, self._kafka_channels, namespace, found) if found else None
        if found is not None and channel is None:
            await self.pieces.stop(key)
            self.write_status(trigger, (b.observed(trigger), [Condition.unknown(
                "BrokerReady", "ChannelNotReady", f'the trigger channel "{found.name}" of the broker is not ready')]))
            return

        async def build() -> TriggerDispatcher:
            handler = TriggerHandler(config, self._deliverer, self._brokers)
            if isinstance(channel, InMemoryChannel):
                return ChannelTrigger(str(trigger["metadata"]["uid"]), channel, handler)
            if isinstance(channel, KafkaChannelIngress):
                return KafkaTriggerDispatcher(handler, partial(AIOKafkaConsumer, bootstrap_servers=channel.bootstrap),
                                              channel.topic, initial_offset="latest")
            if not kafka_class:
                return LogTriggerDispatcher(handler, self._broker_log)
            bootstrap = await self._kafka.ensure()
            return KafkaTriggerDispatcher(handler, partial(AIOKafkaConsumer, bootstrap_servers=bootstrap),
                                          kafka_broker_topic(namespace, broker_name), initial_offset="latest")

        wanted = (b.trigger_wanted(trigger, config, kafka_class), id(channel))
        await self.pieces.ensure(key, wanted, build)
        self.write_status(trigger, b.trigger_ready(trigger, subscriber_uri))

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        await super().deleted(kind, resource)
        namespace, name = name_of(resource)
        await self._broker_log.drop_cursor(CursorKey(namespace, b.trigger_broker(resource), name))

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        return self.sink_dependents(event)

    def counters(self, namespace: str, name: str, piece: TriggerDispatcher) -> tuple[DeliveryCounters, int | None]:
        return piece.handler.counters, None
