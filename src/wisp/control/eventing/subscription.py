"""Subscription: its channel found (an InMemoryChannel, or a Channel's backing one), its subscriber, reply and
dead-letter sink resolved, then put on that channel's dispatcher. A channel that does not exist (yet) is
Ready=False, never a refusal: the Subscription attaches when the channel appears."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.api.kinds import Kind
from wisp.control.controller import Key, keys_of
from wisp.control.eventing import flow_builders as fb
from wisp.control.eventing.base import EventingContext, KindReconciler, name_of
from wisp.eventing.channel import Channels, ChannelSubscriber, InMemoryChannel
from wisp.eventing.delivery import DeliverySpec, Destination
from wisp.store import StoreEvent
from wisp.types import Resource


class SubscriptionReconciler(KindReconciler):
    kind = k.SUBSCRIPTION

    def __init__(self, ctx: EventingContext, channels: Channels) -> None:
        super().__init__(ctx)
        self._channels = channels
        # uid → the dispatcher (namespace, channel name) the subscription is on
        self._attached: dict[str, tuple[str, str]] = {}

    def _physical(self, sub: Resource) -> tuple[Resource | None, str]:
        """The in-memory channel the subscription's `spec.channel` leads to, or why there is none."""
        namespace = sub["metadata"]["namespace"]
        ref = sub["spec"]["channel"]
        kind, name = ref.get("kind"), str(ref.get("name", ""))
        if kind == "InMemoryChannel":
            imc = self.ctx.store.get(k.IN_MEMORY_CHANNEL, namespace, name)
            return imc, "" if imc else f'InMemoryChannel "{name}" does not exist'
        if kind == "Channel":
            channel = self.ctx.store.get(k.CHANNEL, namespace, name)
            if channel is None:
                return None, f'Channel "{name}" does not exist'
            backing_ref = channel.get("status", {}).get("channel") or {}
            if backing_ref.get("kind") != "InMemoryChannel":
                return None, f'Channel "{name}" has no backing channel yet'
            imc = self.ctx.store.get(k.IN_MEMORY_CHANNEL, namespace, str(backing_ref.get("name")))
            return imc, "" if imc else f'the backing channel of Channel "{name}" does not exist yet'
        return None, f"channel kind {kind!r} is not one wisp runs"

    def _detach(self, uid: str) -> None:
        where = self._attached.pop(uid, None)
        if where is not None:
            channel = self._channels.get(*where)
            if channel is not None:
                channel.unsubscribe(uid)

    async def apply(self, sub: Resource) -> None:
        namespace = sub["metadata"]["namespace"]
        uid = str(sub["metadata"]["uid"])
        spec = sub["spec"]
        imc, why = self._physical(sub)
        dispatcher: InMemoryChannel | None = None
        if imc is not None:
            dispatcher = self._channels.get(namespace, imc["metadata"]["name"])
            why = why or f'channel "{imc["metadata"]["name"]}" is not ready yet'
        if dispatcher is None:
            self._detach(uid)
            self.write_status(sub, fb.subscription_channel_missing(sub, f"Failed to get Spec.Channel or backing "
                                                                          f"channel: {why}"))
            return
        assert imc is not None

        def resolve(dest: Mapping[str, Any], field: str, reason: str) -> Destination:
            found = self.ctx.sinks.destination(dest, namespace)
            if found is None:
                raise _Unresolved(reason, f"Failed to resolve {field}: {dict(dest)} does not exist or is not "
                                          "addressable yet")
            return found

        try:
            subscriber = resolve(spec["subscriber"], "spec.subscriber", "SubscriberResolveFailed") \
                if spec.get("subscriber") else None
            reply = resolve(spec["reply"], "spec.reply", "ReplyResolveFailed") if spec.get("reply") else None
            # The subscription's delivery, else the channel's (as Knative's dispatcher falls back).
            raw_delivery = spec.get("delivery") or (imc.get("spec") or {}).get("delivery")
            delivery = DeliverySpec.from_knative(raw_delivery)
            dead_letter = resolve(delivery.dead_letter_sink, "spec.delivery.deadLetterSink",
                                  "DeadLetterSinkResolveFailed") if delivery.dead_letter_sink else None
        except _Unresolved as exc:
            self._detach(uid)
            self.write_status(sub, fb.subscription_unresolved(sub, exc.reason, exc.message))
            return
        except ManifestError as exc:  # admission checks delivery; kept for objects stored by older versions
            self._detach(uid)
            self.write_status(sub, fb.subscription_unresolved(sub, "InvalidDelivery", str(exc)))
            return
        where = (namespace, imc["metadata"]["name"])
        if self._attached.get(uid) not in (None, where):
            self._detach(uid)  # the channel changed (a flow regenerated it): leave the old one
        dispatcher.subscribe(ChannelSubscriber(uid, int(sub["metadata"].get("generation", 1)), subscriber, reply,
                                               delivery, dead_letter, self._local_channel(spec.get("reply"),
                                                                                          namespace)))
        self._attached[uid] = where
        self.write_status(sub, fb.subscription_ready(
            sub, subscriber.reported_url if subscriber else None, reply.reported_url if reply else None,
            dead_letter.reported_url if dead_letter else None))

    def _local_channel(self, reply: Mapping[str, Any] | None, namespace: str) -> InMemoryChannel | None:
        """The in-memory channel a reply names by reference (a Sequence's next step), if it runs here."""
        ref = (reply or {}).get("ref") or {}
        if ref.get("kind") not in ("InMemoryChannel", "Channel") or (reply or {}).get("uri"):
            return None
        # A Channel's backing InMemoryChannel has the Channel's name.
        return self._channels.get(str(ref.get("namespace") or namespace), str(ref.get("name", "")))

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        self._detach(str(resource["metadata"].get("uid")))

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        """Every Subscription of the namespace when a channel, a flow or a sink changed (its channel may have
        appeared, or a destination it names may have become addressable)."""
        keys = self.sink_dependents(event)
        if event.kind is k.IN_MEMORY_CHANNEL and event.type == "DELETED":
            # The dispatcher is gone with it: subscriptions on it must report that.
            keys = keys or keys_of(k.SUBSCRIPTION, self.ctx.store.list(k.SUBSCRIPTION, name_of(event.resource)[0]))
        return keys


class _Unresolved(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
