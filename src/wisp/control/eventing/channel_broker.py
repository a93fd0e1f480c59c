"""MTChannelBasedBroker on channels, as Knative's runs it: a Broker whose `spec.config` names a ConfigMap with
`channel-template-spec` (the docs' `config-br-default-channel` shape) gets the channel `{broker}-kne-trigger` of
that kind, owned by it. The broker ingress hands events to that channel; each Trigger takes them from it: an
InMemoryChannel calls the Trigger's filter-and-deliver for each event (the broker filter's job), a KafkaChannel
is read by the Trigger's own consumer group. A Broker without such a config keeps wisp's durable broker log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from wisp.api import kinds as k
from wisp.api.errors import UnknownKindError
from wisp.api.kinds import Kind
from wisp.eventing.broker import broker_class
from wisp.eventing.channel import Channels, InMemoryChannel
from wisp.eventing.cloudevents import CloudEvent
from wisp.eventing.kafka_channel import KafkaChannelIngress, KafkaChannels
from wisp.eventing.trigger_dispatcher import TriggerHandler
from wisp.store import Store
from wisp.types import Resource

TEMPLATE_KEY = "channel-template-spec"
CHANNEL_KINDS = (k.IN_MEMORY_CHANNEL, k.KAFKA_CHANNEL)
_MAX_TEMPLATE_BYTES = 64 * 1024


class ChannelTemplateError(ValueError):
    """The broker's config names no usable channel template; the message says why."""


def trigger_channel_name(broker: str) -> str:
    return f"{broker}-kne-trigger"


@dataclass(frozen=True)
class BrokerChannel:
    kind: Kind
    name: str
    template: Mapping[str, Any]


def broker_channel(store: Store, broker: Resource) -> BrokerChannel | None:
    """The channel a channel-based Broker runs on; None for a Broker that keeps the broker log.
    ChannelTemplateError when its config is there but unusable (a missing ConfigMap, a bad template)."""
    config = (broker.get("spec") or {}).get("config") or {}
    if broker_class(broker) != "MTChannelBasedBroker" or config.get("kind") != "ConfigMap":
        return None
    namespace = str(config.get("namespace") or broker["metadata"]["namespace"])
    config_map = store.get(k.CONFIG_MAP, namespace, str(config.get("name", "")))
    if config_map is None:
        raise ChannelTemplateError(f'spec.config: ConfigMap "{namespace}/{config.get("name")}" does not exist')
    text = str((config_map.get("data") or {}).get(TEMPLATE_KEY) or "")
    if not text or len(text.encode()) > _MAX_TEMPLATE_BYTES:
        raise ChannelTemplateError(f"spec.config: its ConfigMap has no usable {TEMPLATE_KEY}")
    try:
        template = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ChannelTemplateError(f"spec.config: {TEMPLATE_KEY} is not YAML: {exc}") from None
    if not isinstance(template, dict):
        raise ChannelTemplateError(f"spec.config: {TEMPLATE_KEY} must be a mapping with apiVersion and kind")
    try:
        kind = k.for_manifest(str(template.get("apiVersion", "")), str(template.get("kind", "")))
    except UnknownKindError as exc:
        raise ChannelTemplateError(f"spec.config: {TEMPLATE_KEY}: {exc}") from None
    if kind not in CHANNEL_KINDS:
        raise ChannelTemplateError(f"spec.config: {TEMPLATE_KEY} names {kind.kind}, not a channel wisp runs")
    return BrokerChannel(kind, trigger_channel_name(broker["metadata"]["name"]), template)


class ChannelBroker:
    """A Broker (the ingress's view) whose events go into its trigger channel."""

    def __init__(self, namespace: str, name: str, channel: InMemoryChannel | KafkaChannelIngress) -> None:
        self._namespace = namespace
        self._name = name
        self.channel = channel

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def name(self) -> str:
        return self._name

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        if isinstance(self.channel, KafkaChannelIngress):
            await self.channel.publish(list(events))
        elif not await self.channel.take(events):
            raise RuntimeError("a trigger could not take the event")  # the ingress answers 500: the sender retries


def running_channel(channels: Channels, kafka_channels: KafkaChannels, namespace: str,
                    found: BrokerChannel) -> InMemoryChannel | KafkaChannelIngress | None:
    if found.kind is k.IN_MEMORY_CHANNEL:
        return channels.get(namespace, found.name)
    return kafka_channels.get(namespace, found.name)


class ChannelTrigger:
    """A Trigger on an in-memory trigger channel: the channel calls its handler for each event."""

    def __init__(self, key: str, channel: InMemoryChannel, handler: TriggerHandler) -> None:
        self.key = key
        self.channel = channel
        self.handler = handler

    async def _take(self, event: CloudEvent) -> bool:
        result = await self.handler.handle(event)
        return result is None or result.outcome != "dropped"

    async def start(self) -> None:
        self.channel.subscribe_handler(self.key, self._take)

    async def stop(self) -> None:
        self.channel.unsubscribe(self.key)
