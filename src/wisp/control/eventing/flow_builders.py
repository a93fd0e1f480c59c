"""Pure builders for channels, subscriptions and flows: the objects Knative's controllers generate (names,
specs, ownerReferences) and the status each kind reports. None touches the store or the clock."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from wisp.control.conditions import Condition, get_condition
from wisp.control.eventing.builders import Status, observed
from wisp.control.serving_builders import owner_reference
from wisp.eventing.channel import ChannelSubscriber
from wisp.types import Resource

SUBSCRIPTION_API_VERSION = "messaging.knative.dev/v1"


def _meta(owner: Resource, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": owner["metadata"]["namespace"], "ownerReferences": [owner_reference(owner)]}


def owned_by(resource: Resource, owner: Resource) -> bool:
    """Is `resource` controlled by `owner` (Kubernetes' IsControlledBy)?"""
    uid = owner["metadata"].get("uid")
    return any(ref.get("uid") == uid and ref.get("controller") for ref in
               resource["metadata"].get("ownerReferences") or [])


def physical_channel(template: Mapping[str, Any], owner: Resource, name: str) -> Resource:
    """A channel of the template's kind, owned by `owner` (duck.NewPhysicalChannel)."""
    out: Resource = {"apiVersion": template["apiVersion"], "kind": template["kind"], "metadata": _meta(owner, name)}
    spec = template.get("spec")
    out["spec"] = copy.deepcopy(spec) if isinstance(spec, dict) else {}
    return out


def channel_ref(template: Mapping[str, Any], name: str, namespace: str | None = None) -> dict[str, Any]:
    ref = {"apiVersion": template["apiVersion"], "kind": template["kind"], "name": name}
    if namespace is not None:
        ref["namespace"] = namespace
    return ref


def object_ref(resource: Resource) -> dict[str, Any]:
    meta = resource["metadata"]
    return {"apiVersion": resource["apiVersion"], "kind": resource["kind"], "name": meta["name"],
            "namespace": meta["namespace"]}


def _destination(value: Any) -> dict[str, Any] | None:
    return copy.deepcopy(value) if isinstance(value, dict) and value else None


def subscription(owner: Resource, name: str, channel: dict[str, Any], subscriber: Any, reply: Any = None,
                 delivery: Any = None) -> Resource:
    spec: dict[str, Any] = {"channel": channel}
    for key, value in (("subscriber", subscriber), ("reply", reply), ("delivery", delivery)):
        dest = _destination(value)
        if dest is not None:
            spec[key] = dest
    return {"apiVersion": SUBSCRIPTION_API_VERSION, "kind": "Subscription", "metadata": _meta(owner, name),
            "spec": spec}


# -- readiness of generated objects --------------------------------------------------------------------------

def ready_of(resource: Resource | None, what: str) -> dict[str, Any]:
    """The child's Ready condition as a parent reports it (Unknown while it has none)."""
    unknown = {"type": "Ready", "status": "Unknown", "reason": "NoReady",
               "message": f"{what} does not have Ready condition"}
    return get_condition(resource or {}, "Ready") or unknown


def _all_ready(items: Sequence[Resource | None], what: str) -> bool:
    return bool(items) and all(ready_of(i, what)["status"] == "True" for i in items)


def address_of(resource: Resource | None) -> dict[str, Any] | None:
    address = (resource or {}).get("status", {}).get("address")
    return dict(address) if isinstance(address, dict) and address.get("url") else None


# -- InMemoryChannel -----------------------------------------------------------------------------------------

def imc_status(channel: Resource, url: str, subscribers: Sequence[ChannelSubscriber],
               dead_letter_uri: str | None) -> Status:
    status: dict[str, Any] = {**observed(channel), "address": {"url": url}}
    if subscribers:
        status["subscribers"] = [{"uid": s.uid, "observedGeneration": s.generation, "ready": "True"}
                                 for s in sorted(subscribers, key=lambda s: s.uid)]
    if dead_letter_uri:
        status["deadLetterSinkUri"] = dead_letter_uri
    return status, [Condition.true("Addressable"), Condition.true("ChannelServiceReady"),
                    Condition.true("DispatcherReady"), Condition.true("ServiceReady"),
                    Condition.true("EndpointsReady"), Condition.true("DeadLetterSinkResolved")]


def imc_dead_letter_missing(channel: Resource) -> Status:
    return observed(channel), [Condition.false("DeadLetterSinkResolved", "Unable to get the DeadLetterSink's URI",
                                               "spec.delivery.deadLetterSink: the sink does not exist yet")]


# -- Channel -------------------------------------------------------------------------------------------------

def channel_status(channel: Resource, backing: Resource | None) -> Status:
    status = observed(channel)
    if backing is None:
        return status, [Condition.unknown("BackingChannelReady", "BackingChannelNotFound",
                                          "the backing channel is being created")]
    status["channel"] = {k: v for k, v in object_ref(backing).items()}
    address = address_of(backing)
    if address is not None:
        status["address"] = address
    for key in ("subscribers", "deadLetterSinkUri"):
        if key in backing.get("status", {}):
            status[key] = copy.deepcopy(backing["status"][key])
    ready = ready_of(backing, "Channel")
    backing_ready = Condition.true("BackingChannelReady") if ready["status"] == "True" else Condition(
        "BackingChannelReady", ready["status"], ready.get("reason", "BackingChannelNotReady"),
        ready.get("message", ""))
    addressable = Condition.true("Addressable") if address else Condition.unknown(
        "Addressable", "emptyAddress", "the backing channel has no address yet")
    return status, [backing_ready, addressable]


# -- Subscription --------------------------------------------------------------------------------------------

def subscription_channel_missing(sub: Resource, message: str) -> Status:
    return observed(sub), [Condition.false("ReferencesResolved", "ChannelReferenceFailed", message)]


def subscription_unresolved(sub: Resource, reason: str, message: str) -> Status:
    return observed(sub), [Condition.true("ChannelReady"),
                           Condition.false("ReferencesResolved", reason, message)]


def subscription_ready(sub: Resource, subscriber_uri: str | None, reply_uri: str | None,
                       dead_letter_uri: str | None) -> Status:
    physical: dict[str, Any] = {}
    if subscriber_uri:
        physical["subscriberUri"] = subscriber_uri
    if reply_uri:
        physical["replyUri"] = reply_uri
    if dead_letter_uri:
        physical["deadLetterSinkUri"] = dead_letter_uri
    delivery = sub["spec"].get("delivery")
    if isinstance(delivery, dict):
        physical["delivery"] = copy.deepcopy(delivery)
    return {**observed(sub), "physicalSubscription": physical}, [
        Condition.true("ReferencesResolved"), Condition.true("AddedToChannel"), Condition.true("ChannelReady")]


# -- Sequence ------------------------------------------------------------------------------------------------

def sequence_channel_name(name: str, step: int) -> str:
    return f"{name}-kn-sequence-{step}"


def sequence_children(seq: Resource) -> tuple[list[Resource], list[Resource]]:
    """Knative's Sequence: one channel per step; step i's subscription reads channel i and replies to
    channel i+1, the last one to the Sequence's reply."""
    name, namespace = seq["metadata"]["name"], seq["metadata"]["namespace"]
    spec = seq["spec"]
    template = spec["channelTemplate"]
    steps = spec["steps"]
    channels = [physical_channel(template, seq, sequence_channel_name(name, i)) for i in range(len(steps))]
    subscriptions = []
    for i, step in enumerate(steps):
        destination = {k: v for k, v in step.items() if k != "delivery"}
        if i < len(steps) - 1:
            reply: Any = {"ref": channel_ref(template, sequence_channel_name(name, i + 1), namespace)}
        else:
            reply = spec.get("reply")
        subscriptions.append(subscription(seq, sequence_channel_name(name, i),
                                          channel_ref(template, sequence_channel_name(name, i)),
                                          destination, reply, step.get("delivery")))
    return channels, subscriptions


def _named_statuses(items: Sequence[tuple[Resource, Resource | None]], field: str, what: str) -> list[dict[str, Any]]:
    return [{field: object_ref(wanted), "ready": ready_of(found, what)} for wanted, found in items]


def sequence_status(seq: Resource, channels: Sequence[tuple[Resource, Resource | None]],
                    subscriptions: Sequence[tuple[Resource, Resource | None]]) -> Status:
    """`channels`/`subscriptions`: (what was wanted, what the store holds now) per step."""
    status: dict[str, Any] = {**observed(seq),
                              "channelStatuses": _named_statuses(channels, "channel", "Channel"),
                              "subscriptionStatuses": _named_statuses(subscriptions, "subscription", "Subscription")}
    address = address_of(channels[0][1]) if channels else None
    if address is not None:
        status["address"] = address
    return status, _flow_conditions([c for _, c in channels], [s for _, s in subscriptions], address)


def _flow_conditions(channels: Sequence[Resource | None], subscriptions: Sequence[Resource | None],
                     address: dict[str, Any] | None) -> list[Condition]:
    return [
        Condition.true("ChannelsReady") if _all_ready(channels, "Channel") else Condition.unknown(
            "ChannelsReady", "ChannelsNotReady", "Channels are not ready yet, or there are none"),
        Condition.true("SubscriptionsReady") if _all_ready(subscriptions, "Subscription") else Condition.unknown(
            "SubscriptionsReady", "SubscriptionsNotReady", "Subscriptions are not ready yet, or there are none"),
        Condition.true("Addressable") if address else Condition.unknown(
            "Addressable", "emptyAddress", "the first channel has no address yet"),
    ]


# -- Parallel ------------------------------------------------------------------------------------------------

def parallel_channel_name(name: str) -> str:
    return f"{name}-kn-parallel"


def parallel_branch_channel_name(name: str, branch: int) -> str:
    return f"{name}-kn-parallel-{branch}"


def parallel_filter_subscription_name(name: str, branch: int) -> str:
    return f"{name}-kn-parallel-filter-{branch}"


def parallel_children(par: Resource) -> tuple[list[Resource], list[tuple[Resource, Resource]]]:
    """Knative's Parallel: an ingress channel and one channel per branch; per branch a filter subscription
    (ingress → filter, its reply into the branch channel; with no filter the branch channel itself is the
    subscriber) and a subscription (branch channel → subscriber → the branch's reply, else the Parallel's)."""
    name, namespace = par["metadata"]["name"], par["metadata"]["namespace"]
    spec = par["spec"]
    template = spec["channelTemplate"]
    channels = [physical_channel(template, par, parallel_channel_name(name))]
    subscriptions = []
    for i, branch in enumerate(spec["branches"]):
        channels.append(physical_channel(template, par, parallel_branch_channel_name(name, i)))
        branch_channel = {"ref": channel_ref(template, parallel_branch_channel_name(name, i), namespace)}
        ingress = channel_ref(template, parallel_channel_name(name))
        if branch.get("filter") is None:
            filter_sub = subscription(par, parallel_filter_subscription_name(name, i), ingress, branch_channel)
        else:
            filter_sub = subscription(par, parallel_filter_subscription_name(name, i), ingress, branch["filter"],
                                      branch_channel)
        reply = branch.get("reply") if branch.get("reply") is not None else spec.get("reply")
        sub = subscription(par, parallel_branch_channel_name(name, i),
                           channel_ref(template, parallel_branch_channel_name(name, i)),
                           branch.get("subscriber"), reply, branch.get("delivery"))
        subscriptions.append((filter_sub, sub))
    return channels, subscriptions


def parallel_status(par: Resource, channels: Sequence[tuple[Resource, Resource | None]],
                    subscriptions: Sequence[tuple[tuple[Resource, Resource | None], tuple[Resource, Resource | None]]],
                    ) -> Status:
    """`channels`: the ingress channel then each branch's; `subscriptions`: per branch (filter, subscriber)."""
    ingress_wanted, ingress = channels[0]
    status: dict[str, Any] = {**observed(par), "ingressChannelStatus": {
        "channel": object_ref(ingress_wanted), "ready": ready_of(ingress, "Channel")}}
    branches = []
    for (branch_channel_wanted, branch_channel), (filter_pair, sub_pair) in zip(channels[1:], subscriptions,
                                                                                strict=True):
        branches.append({
            "filterSubscriptionStatus": {"subscription": object_ref(filter_pair[0]),
                                         "ready": ready_of(filter_pair[1], "Subscription")},
            "filterChannelStatus": {"channel": object_ref(branch_channel_wanted),
                                    "ready": ready_of(branch_channel, "Channel")},
            "subscriberSubscriptionStatus": {"subscription": object_ref(sub_pair[0]),
                                             "ready": ready_of(sub_pair[1], "Subscription")},
        })
    status["branchStatuses"] = branches
    address = address_of(ingress)
    if address is not None:
        status["address"] = address
    subs = [s for pair in subscriptions for _, s in pair]
    return status, _flow_conditions([c for _, c in channels], subs, address)
