"""ApiServerSource over wisp's own store: one runner per source, fed every change the store publishes (its
watch), turning the ones the source selects into `dev.knative.apiserver.*` events for the sink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.conditions import Condition
from wisp.control.controller import Key, keys_of
from wisp.control.eventing.base import EventingContext, PieceReconciler, name_of
from wisp.control.eventing.builders import observed
from wisp.eventing.api_server_source import ApiServerConfig, ApiServerRunner, Selection
from wisp.eventing.cloudevents import CloudEvent
from wisp.eventing.delivery import Deliverer, DeliveryCounters, DeliverySpec, Destination
from wisp.eventing.sink_binding import selector_matches
from wisp.store import StoreEvent
from wisp.types import Resource

log = logging.getLogger("wisp.eventing")


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


class ApiServerSourceReconciler(PieceReconciler[ApiServerRunner]):
    kind = k.API_SERVER_SOURCE

    def __init__(self, ctx: EventingContext, deliverer: Deliverer) -> None:
        super().__init__(ctx)
        self._deliverer = deliverer
        self._counters: dict[tuple[str, str], DeliveryCounters] = {}
        self._feed: asyncio.Task[None] | None = None

    def _namespaces(self, source: Resource) -> frozenset[str] | None:
        selector = source["spec"].get("namespaceSelector")
        if not selector:
            return None
        return frozenset(ns["metadata"]["name"] for ns in self.ctx.store.list(k.NAMESPACE)
                         if selector_matches(selector, ns["metadata"].get("labels") or {}))

    def _config(self, source: Resource) -> ApiServerConfig:
        namespace, name = name_of(source)
        spec = source["spec"]
        owner = spec.get("owner")
        return ApiServerConfig(
            namespace, name, str(spec.get("mode", "Reference")),
            tuple(Selection(_group(str(r["apiVersion"])), str(r["kind"]), r.get("selector"))
                  for r in spec["resources"]),
            (_group(str(owner.get("apiVersion", ""))), str(owner.get("kind", ""))) if owner else None,
            self._namespaces(source),
            tuple(sorted(((spec.get("ceOverrides") or {}).get("extensions") or {}).items())),
        )

    def _existing(self, config: ApiServerConfig) -> list[tuple[Resource, str]]:
        """What the store holds of the kinds the source selects (the informer's first list)."""
        found: list[tuple[Resource, str]] = []
        for kind in {kind for kind in k.ALL_KINDS if not kind.virtual
                     for s in config.resources if kind.group == s.group and kind.kind == s.kind}:
            found.extend((r, kind.plural) for r in self.ctx.store.list(kind))
        return found

    async def apply(self, source: Resource) -> None:
        key = name_of(source)
        sink = source["spec"].get("sink") or {}
        destination = self.ctx.sinks.destination(sink, key[0])
        if destination is None:
            await self.pieces.stop(key)
            self.write_status(source, (observed(source), [
                Condition.false("SinkProvided", "NotFound", "spec.sink: the sink does not exist yet")]))
            return
        config = self._config(source)
        unserved = [f"{s.group + '/' if s.group else ''}{s.kind}" for s in config.resources
                    if not any(kd.group == s.group and kd.kind == s.kind and not kd.virtual for kd in k.ALL_KINDS)]
        self._ensure_feed()

        async def build() -> ApiServerRunner:
            runner = ApiServerRunner(config, self._sender(key, destination))
            runner.offer_existing(self._existing(config))
            return runner

        await self.pieces.ensure(key, (config, destination), build)
        status: dict[str, Any] = {**observed(source), "sinkUri": self.ctx.sinks.reported_uri(sink, key[0]),
                                  "namespaces": sorted(config.namespaces or {key[0]})}
        deployed = Condition.true("Deployed") if not unserved else Condition(
            "Deployed", "True", "SomeKindsNotStored",
            f"wisp keeps no objects of {', '.join(unserved)}: no events for them")
        self.write_status(source, (status, [Condition.true("SinkProvided"), deployed,
                                            Condition.true("SufficientPermissions")]))

    def _sender(self, key: tuple[str, str], destination: Destination) -> Any:
        counters = self._counters.setdefault(key, DeliveryCounters())
        delivery = DeliverySpec()

        async def send(event: CloudEvent) -> None:
            result = await self._deliverer.deliver(event, destination, delivery)
            counters.record(result)
            if result.outcome != "delivered":
                log.warning("apiserversource %s/%s: event %s: %s", *key, result.outcome, result.reason)

        return send

    def _ensure_feed(self) -> None:
        if self._feed is None or self._feed.done():
            queue = self.ctx.store.subscribe()
            self._feed = asyncio.create_task(self._run_feed(queue), name="apiserversource feed")

    async def _run_feed(self, queue: asyncio.Queue[StoreEvent]) -> None:
        try:
            while True:
                event = await queue.get()
                if event.kind is self.kind:
                    continue  # a source's own status writes are not news to it
                for _, runner in self.pieces.items():
                    runner.offer(event.type, event.resource, event.kind.plural)
        finally:
            self.ctx.store.unsubscribe(queue)

    async def stop(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed
        await super().stop()

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        await super().deleted(kind, resource)
        self._counters.pop(name_of(resource), None)

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        if event.kind is k.NAMESPACE:
            return keys_of(self.kind, [s for s in self.ctx.store.list(self.kind) if s["spec"].get("namespaceSelector")])
        return self.sink_dependents(event)

    def counters(self, namespace: str, name: str, piece: ApiServerRunner) -> tuple[DeliveryCounters, int | None]:
        return self._counters.setdefault((namespace, name), DeliveryCounters()), None
