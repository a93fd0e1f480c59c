"""Parallel: an ingress channel, a channel per branch, and per branch a filter subscription and a subscriber
subscription, named and wired as Knative's controller does (`{name}-kn-parallel`, `-kn-parallel-{i}`,
`-kn-parallel-filter-{i}`); its address is the ingress channel's."""

from __future__ import annotations

from wisp.api import kinds as k
from wisp.control.conditions import Condition
from wisp.control.eventing import flow_builders as fb
from wisp.control.eventing.builders import observed
from wisp.control.eventing.flows import FlowReconciler, NotOwned
from wisp.types import Resource


class ParallelReconciler(FlowReconciler):
    kind = k.PARALLEL

    async def apply(self, par: Resource) -> None:
        channels, pairs = fb.parallel_children(par)
        try:
            stored = self.sync_children(par, channels, [s for pair in pairs for s in pair])
        except NotOwned as exc:
            self.write_status(par, (observed(par), [Condition.false("ChannelsReady", "NotOwned", str(exc))]))
            return
        template = par["spec"]["channelTemplate"]
        channel_kind = k.for_manifest(template["apiVersion"], template["kind"])

        def sub(resource: Resource) -> tuple[Resource, Resource | None]:
            return resource, stored[(k.SUBSCRIPTION, resource["metadata"]["name"])]

        self.write_status(par, fb.parallel_status(
            par, [(c, stored[(channel_kind, c["metadata"]["name"])]) for c in channels],
            [(sub(f), sub(s)) for f, s in pairs]))
