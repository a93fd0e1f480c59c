"""SinkBinding: reports the resolved sink; the binding itself acts through the bound workloads' environment
(`binding_env`, which the serving reconciler adds to each instance of a matching Service)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from wisp.api import kinds as k
from wisp.control.controller import Key, keys_of
from wisp.control.eventing import builders as b
from wisp.control.eventing.base import KindReconciler, name_of
from wisp.eventing.sink_binding import env_for_subject
from wisp.store import StoreEvent
from wisp.types import Resource


class SinkBindingReconciler(KindReconciler):
    kind = k.SINK_BINDING

    async def apply(self, binding: Resource) -> None:
        namespace, _ = name_of(binding)
        uri = self.ctx.sinks.reported_uri(binding["spec"].get("sink") or {}, namespace)
        self.write_status(binding, b.sink_binding_status(binding, uri))

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        yield from self.sink_dependents(event)
        kind, namespace, _ = event.key
        if kind is k.SINK_BINDING:
            # Bound workloads get K_SINK in their environment: their revisions pick it up.
            yield from keys_of(k.REVISION, self.ctx.store.list(k.REVISION, namespace))

    def binding_env(self, namespace: str, subject: Resource) -> dict[str, str]:
        """K_SINK / K_CE_OVERRIDES for a workload, from every SinkBinding whose subject it is."""

        def resolve(sink: Mapping[str, Any], ns: str) -> str:
            return self.ctx.sinks.instance_url(sink, ns) or ""

        return env_for_subject(self.ctx.store.list(k.SINK_BINDING, namespace), subject, resolve)
