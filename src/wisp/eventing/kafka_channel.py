"""KafkaChannel: a durable channel on Kafka, as eventing-kafka-broker runs it.

The channel's address produces each CloudEvent to the topic `knative-messaging-kafka.{namespace}.{name}`
(Kafka's binary binding, acks=all) and answers 202 only once Kafka has it. Each Subscription is a consumer group
of its own (`kafka.{namespace}.{channel}.{subscription uid}`) that delivers to the subscriber, sends the reply
on, and commits an offset only past settled events: a crash redelivers, never loses.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from aiokafka.structs import OffsetAndMetadata

from wisp.eventing.broker import Brokers, event_to_record
from wisp.eventing.channel import DEFAULT_MAX_BODY_BYTES, ChannelSubscriber, channel_host, dispatch
from wisp.eventing.cloudevents import CloudEvent
from wisp.eventing.delivery import Deliverer, DeliveryResult
from wisp.eventing.event_intake import ASGIReceive, ASGISend, received_events, respond_text
from wisp.eventing.filters import compile_filter
from wisp.eventing.trigger_dispatcher import KafkaTriggerDispatcher, TriggerConfig, TriggerHandler

log = logging.getLogger(__name__)


def kafka_channel_topic(namespace: str, name: str) -> str:
    return f"knative-messaging-kafka.{namespace}.{name}"


def kafka_subscription_group(namespace: str, channel: str, uid: str) -> str:
    return f"kafka.{namespace}.{channel}.{uid}"


class KafkaChannelIngress:
    """The channel's address: events in, produced to its topic. `producer` is a started acks=all producer."""

    def __init__(self, namespace: str, name: str, producer: Any, bootstrap: str,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.namespace = namespace
        self.name = name
        self.topic = kafka_channel_topic(namespace, name)
        self.bootstrap = bootstrap
        self._producer = producer
        self._max_body = max_body_bytes

    async def publish(self, events: list[CloudEvent]) -> None:
        for event in events:
            key, value, headers = event_to_record(event)
            await self._producer.send_and_wait(self.topic, value=value, key=key, headers=headers)

    async def __call__(self, scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await respond_text(send, 405, "a channel takes CloudEvents by POST", [(b"allow", b"POST")])
            return
        events = await received_events(scope, receive, send, self._max_body)
        if events is None:
            return
        try:
            await self.publish(events)
        except Exception:
            log.exception("kafkachannel %s/%s could not store %d event(s)", self.namespace, self.name, len(events))
            await respond_text(send, 500, "the channel could not store the event")
            return
        await respond_text(send, 202, "")


class SubscriptionHandler(TriggerHandler):
    """A trigger dispatcher's handler that settles each event as a channel subscription does (no filter;
    subscriber, then reply)."""

    def __init__(self, namespace: str, name: str, channel: str, sub: ChannelSubscriber, deliverer: Deliverer,
                 max_in_flight: int) -> None:
        # The dispatcher reads name, namespace and max_in_flight from the config; the rest is unused here.
        placeholder = sub.subscriber or sub.reply
        assert placeholder is not None
        config = TriggerConfig(namespace, name, channel, compile_filter({}), placeholder, sub.delivery,
                               sub.dead_letter, max_in_flight)
        super().__init__(config, deliverer, Brokers())
        self.subscription = sub
        self._deliverer_ref = deliverer

    async def handle(self, event: CloudEvent) -> DeliveryResult | None:
        await dispatch(self._deliverer_ref, self.counters, event, self.subscription)
        return None


class KafkaSubscriptionDispatcher(KafkaTriggerDispatcher):
    """A subscription's consumer group. Its starting positions are committed before it reports ready, so a
    crash right after cannot move a new group to `latest` past events the channel already took."""

    async def start(self) -> None:
        await super().start()
        positions = {tp: OffsetAndMetadata(await self._consumer.position(tp), "")
                     for tp in self._consumer.assignment()}
        if positions:
            await self._consumer.commit(positions)


class KafkaChannels:
    """The KafkaChannels that exist, each served at its channel host through `hosts` (the ingress's table)."""

    def __init__(self, hosts: MutableMapping[str, Any]) -> None:
        self._hosts = hosts
        self._channels: dict[tuple[str, str], KafkaChannelIngress] = {}

    def get(self, namespace: str, name: str) -> KafkaChannelIngress | None:
        return self._channels.get((namespace, name))

    def put(self, channel: KafkaChannelIngress) -> None:
        self._channels[(channel.namespace, channel.name)] = channel
        self._hosts[channel_host(channel.name, channel.namespace)] = channel

    def remove(self, namespace: str, name: str) -> None:
        self._hosts.pop(channel_host(name, namespace), None)
        self._channels.pop((namespace, name), None)
