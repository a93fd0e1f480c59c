"""PingSource: a cron runner per source delivering to the sink resolved here; its counters outlive restarts."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.controller import Key
from wisp.control.eventing import builders as b
from wisp.control.eventing.base import EventingContext, PieceReconciler, name_of
from wisp.eventing.cloudevents import CloudEvent
from wisp.eventing.delivery import Deliverer, DeliveryCounters, DeliverySpec, Destination
from wisp.eventing.ping_source import Emit, PingRunner
from wisp.store import StoreEvent
from wisp.types import Resource

log = logging.getLogger("wisp.eventing")


class PingSourceReconciler(PieceReconciler[PingRunner]):
    kind = k.PING_SOURCE

    def __init__(self, ctx: EventingContext, deliverer: Deliverer) -> None:
        super().__init__(ctx)
        self._deliverer = deliverer
        self._counters: dict[tuple[str, str], DeliveryCounters] = {}

    async def apply(self, source: Resource) -> None:
        key = name_of(source)
        sink = source["spec"].get("sink") or {}
        destination = self.ctx.sinks.destination(sink, key[0])
        if destination is None:
            await self.pieces.stop(key)
            self.write_status(source, b.ping_sink_missing(source))
            return
        delivery = DeliverySpec.from_knative(source["spec"].get("delivery"))

        async def build() -> PingRunner:
            return PingRunner(source, self._emitter(key, destination, delivery), clock=self.ctx.clock)

        await self.pieces.ensure(key, b.ping_wanted(source, destination, delivery), build)
        self.write_status(source, b.ping_deployed(source, self.ctx.sinks.reported_uri(sink, key[0])))

    def _emitter(self, key: tuple[str, str], destination: Destination, delivery: DeliverySpec) -> Emit:
        counters = self._counters.setdefault(key, DeliveryCounters())

        async def emit(event: CloudEvent) -> None:
            result = await self._deliverer.deliver(event, destination, delivery)
            counters.record(result)
            if result.outcome != "delivered":
                log.warning("pingsource %s/%s: event %s: %s", *key, result.outcome, result.reason)

        return emit

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        await super().deleted(kind, resource)
        self._counters.pop(name_of(resource), None)

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        return self.sink_dependents(event)

    def counters(self, namespace: str, name: str, piece: PingRunner) -> tuple[DeliveryCounters, int | None]:
        return self._counters.setdefault((namespace, name), DeliveryCounters()), None
