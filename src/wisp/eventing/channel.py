"""InMemoryChannel: an addressable fan-out. Each event POSTed to the channel goes to every subscriber (with
its Subscription's delivery: retries, backoff, dead-letter sink); a subscriber's reply goes on to the
Subscription's reply destination. A Subscription with no subscriber forwards the event itself to its reply.

As Knative's in-memory dispatcher does by default, the channel answers the sender only after every
subscriber has settled (202 when all did, 500 when one could not, so the sender retries: at-least-once
within the retry budgets). The `messaging.knative.dev/async-handler: "true"` annotation answers 202 at once
and fans out afterwards (faster, and an event in flight is lost if wisp stops). Nothing is stored: events
live only while they are being delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wisp.eventing.cloudevents import CloudEvent
from wisp.eventing.delivery import Deliverer, DeliveryCounters, DeliverySpec, Destination
from wisp.eventing.event_intake import ASGIReceive, ASGISend, received_events, respond_text

log = logging.getLogger(__name__)


ASYNC_HANDLER_ANNOTATION = "messaging.knative.dev/async-handler"
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
# Async channels answer before delivering: this bounds the deliveries they hold (then 503, retried).
MAX_ASYNC_IN_FLIGHT = 10_000


def channel_host(name: str, namespace: str) -> str:
    """The address Knative gives a channel (its `{name}-kn-channel` Service)."""
    return f"{name}-kn-channel.{namespace}.svc.cluster.local"


@dataclass(frozen=True)
class ChannelSubscriber:
    """One Subscription as the channel runs it, destinations already resolved. `reply_channel` is the reply's
    channel when it is one of this machine's in-memory channels: the reply is handed to it in-process (no
    encoding, no ingress), and only a failed hand-over goes through `reply` with the delivery's retries."""

    uid: str
    generation: int
    subscriber: Destination | None
    reply: Destination | None
    delivery: DeliverySpec
    dead_letter: Destination | None = None
    reply_channel: InMemoryChannel | None = field(default=None, compare=False)


class InMemoryChannel:
    def __init__(self, namespace: str, name: str, deliverer: Deliverer, *, async_handler: bool = False,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.namespace = namespace
        self.name = name
        self.async_handler = async_handler
        self.counters = DeliveryCounters()
        self._deliverer = deliverer
        self._max_body = max_body_bytes
        self._subscribers: dict[str, ChannelSubscriber] = {}
        self._handlers: dict[str, Callable[[CloudEvent], Awaitable[bool]]] = {}
        self._tasks: set[asyncio.Task[bool]] = set()
        # Told of each event the channel takes (EventType auto-creation), when set.
        self.on_event: Callable[[CloudEvent], None] | None = None

    # -- subscribers (set by the Subscription reconciler) -------------------------------------------------
    def subscribers(self) -> list[ChannelSubscriber]:
        return list(self._subscribers.values())

    def subscribe(self, subscriber: ChannelSubscriber) -> None:
        self._subscribers[subscriber.uid] = subscriber

    def subscribe_handler(self, key: str, handler: Callable[[CloudEvent], Awaitable[bool]]) -> None:
        """A subscriber that is code rather than a destination (a channel-based Broker's Trigger): True when it
        settled the event."""
        self._handlers[key] = handler

    def unsubscribe(self, uid: str) -> None:
        self._subscribers.pop(uid, None)
        self._handlers.pop(uid, None)

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Nothing runs until an event arrives."""

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- fan-out ------------------------------------------------------------------------------------------
    async def publish(self, events: Sequence[CloudEvent]) -> bool:
        """Every event to every subscriber; True when all settled (delivered or dead-lettered)."""
        subscribers = list(self._subscribers.values())
        deliverer, counters = self._deliverer, self.counters
        work: list[Awaitable[bool]] = [dispatch(deliverer, counters, event, s) for event in events for s in subscribers]
        work += [handler(event) for event in events for handler in list(self._handlers.values())]
        if not work:
            return True
        if len(work) == 1:
            return await work[0]
        results = await asyncio.gather(*work)
        return all(results)

    async def take(self, events: Sequence[CloudEvent]) -> bool:
        """What the channel's address does with events, called in-process: fan out now, or later when async."""
        if self.on_event is not None:
            self._observe(events)
        if self.async_handler:
            return self.publish_later(events)
        return await self.publish(events)

    def publish_later(self, events: Sequence[CloudEvent]) -> bool:
        """Fan out in the background; False when too many deliveries are already in flight."""
        if len(self._tasks) >= MAX_ASYNC_IN_FLIGHT:
            return False
        task = asyncio.create_task(self.publish(events))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    # -- ingress ------------------------------------------------------------------------------------------
    async def __call__(self, scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        """The channel's address: POST a CloudEvent (binary, structured or batched) to any path."""
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await respond_text(send, 405, "a channel takes CloudEvents by POST", [(b"allow", b"POST")])
            return
        events = await received_events(scope, receive, send, self._max_body)
        if events is None:
            return
        if await self.take(events):
            await respond_text(send, 202, "")
        elif self.async_handler:
            await respond_text(send, 503, "the channel has too many events in flight", [(b"retry-after", b"1")])
        else:
            await respond_text(send, 500, "a subscriber could not take the event")

    def _observe(self, events: Sequence[CloudEvent]) -> None:
        assert self.on_event is not None
        for event in events:
            try:
                self.on_event(event)
            except Exception:  # the registry is a side effect: it must not cost the event
                log.exception("channel %s/%s: recording the type of event %s failed", self.namespace, self.name,
                              event.get("id"))


async def dispatch(deliverer: Deliverer, counters: DeliveryCounters, event: CloudEvent,
                   sub: ChannelSubscriber) -> bool:
    """One event to one subscription: its subscriber, then the reply (or, with no subscriber, the event) to its
    reply destination. True when it settled (delivered or dead-lettered)."""
    reply: CloudEvent | None = event
    if sub.subscriber is not None:
        result = await deliverer.deliver(event, sub.subscriber, sub.delivery, sub.dead_letter)
        counters.record(result)
        if result.outcome != "delivered":
            return result.outcome == "dead-lettered"
        reply = result.reply
    if reply is None or sub.reply is None:
        return True
    if sub.reply_channel is not None and await sub.reply_channel.take([reply]):
        counters.delivered += 1
        return True
    result = await deliverer.deliver(reply, sub.reply, sub.delivery, sub.dead_letter)
    counters.record(result)
    return result.outcome != "dropped"


class Channels:
    """The in-memory channels that exist, by (namespace, name), each served at its host through `hosts` (the
    ingress's virtual-host table, which the daemon shares with the channels)."""

    def __init__(self, hosts: MutableMapping[str, Any]) -> None:
        self.hosts = hosts
        self._channels: dict[tuple[str, str], InMemoryChannel] = {}

    def get(self, namespace: str, name: str) -> InMemoryChannel | None:
        return self._channels.get((namespace, name))

    def put(self, channel: InMemoryChannel) -> None:
        self._channels[(channel.namespace, channel.name)] = channel
        self.hosts[channel_host(channel.name, channel.namespace)] = channel

    def remove(self, namespace: str, name: str) -> InMemoryChannel | None:
        self.hosts.pop(channel_host(name, namespace), None)
        return self._channels.pop((namespace, name), None)

    def items(self) -> list[tuple[tuple[str, str], InMemoryChannel]]:
        return list(self._channels.items())


def is_async(annotations: Mapping[str, Any]) -> bool:
    return str(annotations.get(ASYNC_HANDLER_ANNOTATION, "")).strip().lower() == "true"
