"""InMemoryChannel: its fan-out dispatcher, served at `{name}-kn-channel.{namespace}.svc.cluster.local`
through the ingress; status lists the subscribers the Subscriptions put on it."""

from __future__ import annotations

from collections.abc import Iterable

from wisp.api import kinds as k
from wisp.api.defaults_flows import EVENTING_NAMESPACE
from wisp.api.kinds import Kind
from wisp.control.controller import Key, keys_of
from wisp.control.eventing import flow_builders as fb
from wisp.control.eventing.base import EventingContext, PieceReconciler, name_of
from wisp.control.eventing.event_type import CONFIG_FEATURES, AutoEventTypes, auto_create_enabled
from wisp.eventing.channel import DEFAULT_MAX_BODY_BYTES, Channels, InMemoryChannel, channel_host, is_async
from wisp.eventing.delivery import Deliverer, DeliveryCounters
from wisp.store import StoreEvent
from wisp.types import Resource


class InMemoryChannelReconciler(PieceReconciler[InMemoryChannel]):
    kind = k.IN_MEMORY_CHANNEL

    def __init__(self, ctx: EventingContext, deliverer: Deliverer, channels: Channels,
                 max_body_bytes: int | None = None, event_types: AutoEventTypes | None = None) -> None:
        super().__init__(ctx)
        self._event_types = event_types
        self._deliverer = deliverer
        self.channels = channels
        self._max_body = max_body_bytes

    async def apply(self, imc: Resource) -> None:
        namespace, name = key = name_of(imc)

        async def build() -> InMemoryChannel:
            channel = InMemoryChannel(namespace, name, self._deliverer,
                                      max_body_bytes=self._max_body or DEFAULT_MAX_BODY_BYTES)
            self.channels.put(channel)
            return channel

        # Built once per object: its subscribers are set by the Subscriptions, and must outlive spec changes.
        channel = await self.pieces.ensure(key, None, build)
        channel.async_handler = is_async(imc["metadata"].get("annotations") or {})
        auto = self._event_types is not None and auto_create_enabled(self.ctx.store)
        channel.on_event = self._event_types.observer(imc) if auto and self._event_types else None
        dead_letter = ((imc.get("spec") or {}).get("delivery") or {}).get("deadLetterSink")
        dead_letter_uri = None
        if dead_letter:
            dead_letter_uri = self.ctx.sinks.reported_uri(dead_letter, namespace)
            if dead_letter_uri is None:
                self.write_status(imc, fb.imc_dead_letter_missing(imc))
                return
        url = f"http://{channel_host(name, namespace)}"
        self.write_status(imc, fb.imc_status(imc, url, channel.subscribers(), dead_letter_uri))

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        await super().deleted(kind, resource)
        self.channels.remove(*name_of(resource))

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        """A Subscription changed: the channel it names (or a Channel's backing one) lists its subscribers."""
        kind, namespace, name = event.key
        if kind is k.CONFIG_MAP and (namespace, name) == (EVENTING_NAMESPACE, CONFIG_FEATURES):
            return keys_of(k.IN_MEMORY_CHANNEL, self.ctx.store.list(k.IN_MEMORY_CHANNEL))
        if kind is k.SUBSCRIPTION:
            ref = (event.resource.get("spec") or {}).get("channel") or {}
            if ref.get("kind") in ("InMemoryChannel", "Channel") and ref.get("name"):
                return [(k.IN_MEMORY_CHANNEL, namespace, str(ref["name"]))]
            return []
        return self.sink_dependents(event) if kind not in (k.IN_MEMORY_CHANNEL,) else []

    def counters(self, namespace: str, name: str, piece: InMemoryChannel) -> tuple[DeliveryCounters, int | None]:
        return piece.counters, None
