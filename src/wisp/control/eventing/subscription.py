"""Subscription: its channel found (an InMemoryChannel or KafkaChannel, or a Channel's backing one), its
subscriber, reply and dead-letter sink resolved, then attached: put on an in-memory channel's dispatcher, or
given a consumer group of its own on a KafkaChannel's topic. A channel that does not exist (yet) is
Ready=False, never a refusal: the Subscription attaches when the channel appears."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.api.kinds import Kind
from wisp.control.controller import Key, keys_of
from wisp.control.eventing import flow_builders as fb
from wisp.control.eventing.base import EventingContext, PieceReconciler, name_of
from wisp.eventing.channel import Channels, ChannelSubscriber, InMemoryChannel
from wisp.eventing.delivery import Deliverer, DeliveryCounters, DeliverySpec, Destination
from wisp.eventing.kafka_channel import (
    KafkaChannelIngress,
    KafkaChannels,
    KafkaSubscriptionDispatcher,
    SubscriptionHandler,
    kafka_subscription_group,
)
from wisp.store import StoreEvent
from wisp.types import Resource

_CHANNEL_KINDS = {"InMemoryChannel": k.IN_MEMORY_CHANNEL, "KafkaChannel": k.KAFKA_CHANNEL}
# Deliveries a KafkaChannel subscription keeps in flight (its consumer reads ahead this far).
KAFKA_SUBSCRIPTION_IN_FLIGHT = 100


class _Unresolved(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SubscriptionReconciler(PieceReconciler[KafkaSubscriptionDispatcher]):
    """Pieces: the consumer groups of subscriptions on KafkaChannels (in-memory ones need none)."""

    kind = k.SUBSCRIPTION

    def __init__(self, ctx: EventingContext, channels: Channels, kafka_channels: KafkaChannels | None = None,
                 deliverer: Deliverer | None = None) -> None:
        super().__init__(ctx)
        self._channels = channels
        self._kafka_channels = kafka_channels or KafkaChannels({})
        self._deliverer = deliverer
        # uid → the in-memory dispatcher (namespace, channel name) the subscription is on
        self._attached: dict[str, tuple[str, str]] = {}

    def _physical(self, sub: Resource) -> tuple[Resource | None, str]:
        """The channel (InMemoryChannel or KafkaChannel) `spec.channel` leads to, or why there is none."""
        namespace = sub["metadata"]["namespace"]
        ref = sub["spec"]["channel"]
        kind, name = ref.get("kind"), str(ref.get("name", ""))
        if kind in _CHANNEL_KINDS:
            found = self.ctx.store.get(_CHANNEL_KINDS[kind], namespace, name)
            return found, "" if found else f'{kind} "{name}" does not exist'
        if kind == "Channel":
            channel = self.ctx.store.get(k.CHANNEL, namespace, name)
            if channel is None:
                return None, f'Channel "{name}" does not exist'
            backing_ref = channel.get("status", {}).get("channel") or {}
            backing_kind = _CHANNEL_KINDS.get(str(backing_ref.get("kind")))
            if backing_kind is None:
                return None, f'Channel "{name}" has no backing channel yet'
            backing = self.ctx.store.get(backing_kind, namespace, str(backing_ref.get("name")))
            return backing, "" if backing else f'the backing channel of Channel "{name}" does not exist yet'
        return None, f"channel kind {kind!r} is not one wisp runs"

    def _detach(self, uid: str) -> None:
        where = self._attached.pop(uid, None)
        if where is not None:
            channel = self._channels.get(*where)
            if channel is not None:
                channel.unsubscribe(uid)

    def _subscriber(self, sub: Resource, channel: Resource) -> ChannelSubscriber:
        """The subscription with its destinations resolved; _Unresolved or ManifestError when one cannot be."""
        namespace = sub["metadata"]["namespace"]
        spec = sub["spec"]

        def resolve(dest: Mapping[str, Any], field: str, reason: str) -> Destination:
            found = self.ctx.sinks.destination(dest, namespace)
            if found is None:
                raise _Unresolved(reason, f"Failed to resolve {field}: {dict(dest)} does not exist or is not "
                                          "addressable yet")
            return found

        subscriber = resolve(spec["subscriber"], "spec.subscriber", "SubscriberResolveFailed") \
            if spec.get("subscriber") else None
        reply = resolve(spec["reply"], "spec.reply", "ReplyResolveFailed") if spec.get("reply") else None
        # The subscription's delivery, else the channel's (as Knative's dispatcher falls back).
        delivery = DeliverySpec.from_knative(spec.get("delivery") or (channel.get("spec") or {}).get("delivery"))
        dead_letter = resolve(delivery.dead_letter_sink, "spec.delivery.deadLetterSink",
                              "DeadLetterSinkResolveFailed") if delivery.dead_letter_sink else None
        return ChannelSubscriber(str(sub["metadata"]["uid"]), int(sub["metadata"].get("generation", 1)), subscriber,
                                 reply, delivery, dead_letter, self._local_channel(spec.get("reply"), namespace))

    async def apply(self, sub: Resource) -> None:
        key = name_of(sub)
        namespace = key[0]
        uid = str(sub["metadata"]["uid"])
        channel, why = self._physical(sub)
        dispatcher: InMemoryChannel | None = None
        ingress: KafkaChannelIngress | None = None
        if channel is not None:
            channel_name = channel["metadata"]["name"]
            if channel["kind"] == "KafkaChannel":
                ingress = self._kafka_channels.get(namespace, channel_name)
            else:
                dispatcher = self._channels.get(namespace, channel_name)
            why = why or f'channel "{channel_name}" is not ready yet'
        if dispatcher is None and ingress is None:
            await self._leave(key, uid)
            self.write_status(sub, fb.subscription_channel_missing(sub, f"Failed to get Spec.Channel or backing "
                                                                          f"channel: {why}"))
            return
        assert channel is not None
        try:
            subscriber = self._subscriber(sub, channel)
        except _Unresolved as exc:
            await self._leave(key, uid)
            self.write_status(sub, fb.subscription_unresolved(sub, exc.reason, exc.message))
            return
        except ManifestError as exc:  # admission checks delivery; kept for objects stored by older versions
            await self._leave(key, uid)
            self.write_status(sub, fb.subscription_unresolved(sub, "InvalidDelivery", str(exc)))
            return
        if ingress is not None:
            self._detach(uid)
            await self._consume(key, sub, ingress, subscriber)
        else:
            assert dispatcher is not None
            await self.pieces.stop(key)
            where = (namespace, channel["metadata"]["name"])
            if self._attached.get(uid) not in (None, where):
                self._detach(uid)  # the channel changed (a flow regenerated it): leave the old one
            dispatcher.subscribe(subscriber)
            self._attached[uid] = where
        self.write_status(sub, fb.subscription_ready(
            sub, subscriber.subscriber.reported_url if subscriber.subscriber else None,
            subscriber.reply.reported_url if subscriber.reply else None,
            subscriber.dead_letter.reported_url if subscriber.dead_letter else None))

    async def _consume(self, key: tuple[str, str], sub: Resource, ingress: KafkaChannelIngress,
                       subscriber: ChannelSubscriber) -> None:
        deliverer = self._deliverer
        assert deliverer is not None, "KafkaChannel subscriptions need the delivery client"
        group = kafka_subscription_group(ingress.namespace, ingress.name, subscriber.uid)

        async def build() -> KafkaSubscriptionDispatcher:
            handler = SubscriptionHandler(key[0], key[1], ingress.name, subscriber, deliverer,
                                          KAFKA_SUBSCRIPTION_IN_FLIGHT)
            return KafkaSubscriptionDispatcher(
                handler, partial(AIOKafkaConsumer, bootstrap_servers=ingress.bootstrap), ingress.topic,
                initial_offset="latest", group_id=group)

        wanted = (ingress.topic, ingress.bootstrap, subscriber, id(subscriber.reply_channel))
        await self.pieces.ensure(key, wanted, build)

    async def _leave(self, key: tuple[str, str], uid: str) -> None:
        self._detach(uid)
        await self.pieces.stop(key)

    def _local_channel(self, reply: Mapping[str, Any] | None, namespace: str) -> InMemoryChannel | None:
        """The in-memory channel a reply names by reference (a Sequence's next step), if it runs here."""
        ref = (reply or {}).get("ref") or {}
        if ref.get("kind") not in ("InMemoryChannel", "Channel") or (reply or {}).get("uri"):
            return None
        # A Channel's backing InMemoryChannel has the Channel's name.
        return self._channels.get(str(ref.get("namespace") or namespace), str(ref.get("name", "")))

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        await super().deleted(kind, resource)
        self._detach(str(resource["metadata"].get("uid")))

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        """Every Subscription of the namespace when a channel, a flow or a sink changed (its channel may have
        appeared, or a destination it names may have become addressable)."""
        keys = self.sink_dependents(event)
        if event.kind in (k.IN_MEMORY_CHANNEL, k.KAFKA_CHANNEL) and event.type == "DELETED":
            # The dispatcher is gone with it: subscriptions on it must report that.
            keys = keys or keys_of(k.SUBSCRIPTION, self.ctx.store.list(k.SUBSCRIPTION, name_of(event.resource)[0]))
        return keys

    def counters(self, namespace: str, name: str,
                 piece: KafkaSubscriptionDispatcher) -> tuple[DeliveryCounters, int | None]:
        return piece.handler.counters, None
