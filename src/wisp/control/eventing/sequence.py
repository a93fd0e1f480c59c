"""Sequence: one channel per step and one subscription per step, named and wired as Knative's controller
does (`{name}-kn-sequence-{i}`); its address is the first channel's."""

from __future__ import annotations

from wisp.api import kinds as k
from wisp.control.conditions import Condition
from wisp.control.eventing import flow_builders as fb
from wisp.control.eventing.builders import observed
from wisp.control.eventing.flows import FlowReconciler, NotOwned
from wisp.types import Resource


class SequenceReconciler(FlowReconciler):
    kind = k.SEQUENCE

    async def apply(self, seq: Resource) -> None:
        channels, subscriptions = fb.sequence_children(seq)
        try:
            stored = self.sync_children(seq, channels, subscriptions)
        except NotOwned as exc:
            self.write_status(seq, (observed(seq), [Condition.false("ChannelsReady", "NotOwned", str(exc))]))
            return
        channel_kind = k.for_manifest(seq["spec"]["channelTemplate"]["apiVersion"],
                                      seq["spec"]["channelTemplate"]["kind"])
        self.write_status(seq, fb.sequence_status(
            seq, [(c, stored[(channel_kind, c["metadata"]["name"])]) for c in channels],
            [(s, stored[(k.SUBSCRIPTION, s["metadata"]["name"])]) for s in subscriptions]))
