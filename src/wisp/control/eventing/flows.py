"""What Sequence and Parallel share: writing the channels and subscriptions they generate, deleting the ones
they no longer want (a step or branch removed), and being reconciled again when one of those changes."""

from __future__ import annotations

from collections.abc import Iterable

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.controller import Key
from wisp.control.eventing import flow_builders as fb
from wisp.control.eventing.base import KindReconciler, name_of
from wisp.store import StoreEvent
from wisp.types import Resource

_CHILD_KINDS = (k.IN_MEMORY_CHANNEL, k.KAFKA_CHANNEL, k.SUBSCRIPTION)


class NotOwned(Exception):
    """A generated name is taken by an object this flow does not control."""


class FlowReconciler(KindReconciler):
    def sync_children(self, owner: Resource, channels: list[Resource],
                      subscriptions: list[Resource]) -> dict[tuple[Kind, str], Resource | None]:
        """Write the wanted children (one transaction), delete the owner's others; what the store holds now."""
        namespace, _ = name_of(owner)
        wanted: list[tuple[Kind, Resource]] = [
            *((k.for_manifest(c["apiVersion"], c["kind"]), c) for c in channels),
            *((k.SUBSCRIPTION, s) for s in subscriptions)]
        for kind, child in wanted:
            existing = self.ctx.store.get(kind, namespace, child["metadata"]["name"])
            if existing is not None and not fb.owned_by(existing, owner):
                raise NotOwned(f'{kind.kind} "{child["metadata"]["name"]}" exists and is not owned by '
                               f'{owner["kind"]} "{owner["metadata"]["name"]}"')
        self.ctx.store.apply(wanted)
        names = {(kind, child["metadata"]["name"]) for kind, child in wanted}
        unwanted = [(kind, namespace, r["metadata"]["name"]) for kind in _CHILD_KINDS
                    for r in self.ctx.store.list(kind, namespace)
                    if fb.owned_by(r, owner) and (kind, r["metadata"]["name"]) not in names]
        if unwanted:
            self.ctx.store.delete_many(unwanted)
        return {(kind, child["metadata"]["name"]): self.ctx.store.get(kind, namespace, child["metadata"]["name"])
                for kind, child in wanted}

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        """The flow that owns a changed channel or subscription."""
        if event.kind not in _CHILD_KINDS:
            return []
        meta = event.resource["metadata"]
        return [(self.kind, meta.get("namespace", ""), ref["name"]) for ref in meta.get("ownerReferences") or []
                if ref.get("kind") == self.kind.kind and ref.get("controller")]
