"""What the eventing reconcilers share: their context (store, sink resolver, clock), reading the object a
key names, writing its status, and, for kinds that run something per object, the running pieces and their
counters for /metrics. Each kind's reconciler is a subclass holding only what that kind does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.conditions import Condition
from wisp.control.controller import Key, keys_of
from wisp.control.eventing.pieces import P, Pieces
from wisp.control.sinks import SinkResolver
from wisp.control.status import write_status
from wisp.eventing.delivery import DeliveryCounters
from wisp.observability.metrics import SourceState
from wisp.store import Store, StoreEvent
from wisp.types import Clock, Resource

# What a destination can name (a Route changes where a Service's URL leads; channels and flows are
# addressable once their status has an address).
SINK_TARGETS = (k.SERVICE, k.BROKER, k.ROUTE, k.IN_MEMORY_CHANNEL, k.KAFKA_CHANNEL, k.CHANNEL, k.SEQUENCE,
                k.PARALLEL, k.JOB_SINK)


@dataclass(frozen=True)
class EventingContext:
    store: Store
    sinks: SinkResolver
    clock: Clock

    def write_status(self, kind: Kind, resource: Resource, status: dict[str, Any],
                     conditions: list[Condition]) -> None:
        write_status(self.store, kind, resource, status, conditions, self.clock())


def name_of(resource: Resource) -> tuple[str, str]:
    meta = resource["metadata"]
    return meta.get("namespace", "default"), meta["name"]


class KindReconciler:
    """A Reconciler (control/controller.py) for one kind: `reconcile` reads the object, `apply` acts on it."""

    kind: ClassVar[Kind]

    def __init__(self, ctx: EventingContext) -> None:
        self.ctx = ctx

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return (self.kind,)

    async def reconcile(self, kind: Kind, namespace: str, name: str) -> None:
        resource = self.ctx.store.get(kind, namespace, name)
        if resource is not None:
            await self.apply(resource)

    async def apply(self, resource: Resource) -> None:
        raise NotImplementedError

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        """Nothing runs for the object by default, so nothing to undo."""

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        return ()

    def write_status(self, resource: Resource, status: tuple[dict[str, Any], list[Condition]]) -> None:
        self.ctx.write_status(self.kind, resource, *status)

    def sink_dependents(self, event: StoreEvent) -> list[Key]:
        """This kind's objects in the namespace of a changed Service, Broker or Route: a sink or subscriber
        they name may have appeared or gone. The resolver's cache is dropped first, so their reconcile sees it."""
        kind, namespace, _ = event.key
        if kind not in SINK_TARGETS:
            return []
        self.ctx.sinks.invalidate()
        return keys_of(self.kind, self.ctx.store.list(self.kind, namespace))


class PieceReconciler(KindReconciler, Generic[P]):
    """A kind that runs one piece per object (a dispatcher, a runner): stopped when the object is deleted,
    all stopped with `stop`, and each piece's delivery counters reported for /metrics."""

    def __init__(self, ctx: EventingContext) -> None:
        super().__init__(ctx)
        self.pieces: Pieces[P] = Pieces()

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        await self.pieces.stop(name_of(resource))

    async def stop(self) -> None:
        await self.pieces.stop_all()

    def counters(self, namespace: str, name: str, piece: P) -> tuple[DeliveryCounters, int | None]:
        """The piece's delivery counters and consumer lag (None where lag does not apply)."""
        raise NotImplementedError

    def source_states(self) -> list[SourceState]:
        states = []
        for (namespace, name), piece in self.pieces.items():
            counters, lag = self.counters(namespace, name, piece)
            states.append(SourceState(self.kind.kind, namespace, name, counters.delivered, counters.retried,
                                      counters.dead_lettered, counters.dropped, lag))
        return states
