"""Channel: the backing channel its `channelTemplate` names (same name, owned by the Channel), whose address
and subscribers it reports. Subscriptions to a Channel attach to the backing channel's dispatcher."""

from __future__ import annotations

from collections.abc import Iterable

from wisp.api import kinds as k
from wisp.api.errors import UnknownKindError
from wisp.control.conditions import Condition
from wisp.control.controller import Key
from wisp.control.eventing import flow_builders as fb
from wisp.control.eventing.base import KindReconciler, name_of
from wisp.control.eventing.builders import observed
from wisp.store import StoreEvent
from wisp.types import Resource


class ChannelReconciler(KindReconciler):
    kind = k.CHANNEL

    async def apply(self, channel: Resource) -> None:
        namespace, name = name_of(channel)
        template = channel["spec"]["channelTemplate"]
        try:
            backing_kind = k.for_manifest(template["apiVersion"], template["kind"])
        except UnknownKindError as exc:  # admission refuses these; a stored one from an older wisp may not
            self.write_status(channel, (observed(channel), [
                Condition.false("BackingChannelReady", "ChannelTemplateFailed", str(exc))]))
            return
        existing = self.ctx.store.get(backing_kind, namespace, name)
        if existing is not None and not fb.owned_by(existing, channel):
            self.write_status(channel, (observed(channel), [Condition.false(
                "BackingChannelReady", "NotOwned",
                f"{backing_kind.kind} {name!r} exists and is not owned by this Channel")]))
            return
        self.ctx.store.apply([(backing_kind, fb.physical_channel(template, channel, name))])
        self.write_status(channel, fb.channel_status(channel, self.ctx.store.get(backing_kind, namespace, name)))

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        """The Channel owning a changed backing channel."""
        if event.kind not in (k.IN_MEMORY_CHANNEL, k.KAFKA_CHANNEL):
            return []
        meta = event.resource["metadata"]
        return [(k.CHANNEL, meta.get("namespace", ""), ref["name"]) for ref in meta.get("ownerReferences") or []
                if ref.get("kind") == "Channel" and ref.get("controller")]
