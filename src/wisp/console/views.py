"""Pure functions from stored objects (and the running state read beside them) to what the pages show."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from wisp.api import kinds as k
from wisp.api.names import SERVICE_LABEL
from wisp.observability.metrics import SourceState
from wisp.types import Resource

READY_UNKNOWN = {"status": "Unknown", "reason": "", "message": ""}


def condition(resource: Resource, kind: str = "Ready") -> dict[str, str]:
    for cond in resource.get("status", {}).get("conditions", []) or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return {"status": str(cond.get("status", "Unknown")), "reason": str(cond.get("reason", "")),
                    "message": str(cond.get("message", ""))}
    return dict(READY_UNKNOWN)


def _traffic(service: Resource) -> list[dict[str, Any]]:
    status = service.get("status", {})
    out = []
    for target in status.get("traffic", []) or []:
        if not isinstance(target, dict):
            continue
        revision = target.get("revisionName") or status.get("latestReadyRevisionName") or ""
        out.append({"revision": str(revision), "percent": int(target.get("percent") or 0),
                    "tag": str(target.get("tag") or ""), "latest": bool(target.get("latestRevision")),
                    "url": str(target.get("url") or "")})
    return out


def service_row(service: Resource, point: Mapping[str, float | None] | None, changed_at: float) -> dict[str, Any]:
    """One line of the services list."""
    meta, status = service["metadata"], service.get("status", {})
    ready = condition(service)
    point = point or {}
    return {
        "key": f"{meta['namespace']}/{meta['name']}", "namespace": meta["namespace"], "name": meta["name"],
        "url": str(status.get("url", "")), "ready": ready["status"], "reason": ready["reason"],
        "message": ready["message"],
        "latestRevision": str(status.get("latestReadyRevisionName") or status.get("latestCreatedRevisionName") or ""),
        "traffic": _traffic(service),
        "instances": int(point.get("ready") or 0), "desired": int(point.get("desired") or 0),
        "rps": point.get("rps") or 0.0, "changedAt": changed_at,
    }


def service_detail(service: Resource, revisions: Iterable[Resource]) -> dict[str, Any]:
    """A Service's page header and revisions: traffic, tags and conditions per revision."""
    meta, status = service["metadata"], service.get("status", {})
    traffic = _traffic(service)
    rows = []
    for revision in sorted(revisions, key=lambda r: r["metadata"].get("creationTimestamp", ""), reverse=True):
        name = revision["metadata"]["name"]
        targets = [t for t in traffic if t["revision"] == name]
        rows.append({
            "name": name, "created": revision["metadata"].get("creationTimestamp", ""),
            "percent": sum(t["percent"] for t in targets), "tags": [t["tag"] for t in targets if t["tag"]],
            "conditions": [condition(revision, c) | {"type": c} for c in ("Ready", "ContainerHealthy",
                                                                           "ResourcesAvailable", "Active")],
        })
    return {
        "namespace": meta["namespace"], "name": meta["name"], "url": str(status.get("url", "")),
        "ready": condition(service), "annotations": dict(meta.get("annotations") or {}),
        "labels": dict(meta.get("labels") or {}), "traffic": traffic, "revisions": rows,
        "latestRevision": str(status.get("latestReadyRevisionName") or ""),
    }


def revisions_of(revisions: Iterable[Resource], namespace: str, service: str) -> list[Resource]:
    return [r for r in revisions if r["metadata"]["namespace"] == namespace
            and (r["metadata"].get("labels") or {}).get(SERVICE_LABEL) == service]


# -- eventing ---------------------------------------------------------------------------------------------------

SOURCE_KINDS = (k.KAFKA_SOURCE, k.PING_SOURCE, k.SINK_BINDING)
FLOW_KINDS = (*SOURCE_KINDS, k.BROKER, k.TRIGGER, k.CHANNEL, k.IN_MEMORY_CHANNEL, k.SUBSCRIPTION)


def _hop(kind: str, namespace: str, name: str, detail: str = "", resource: Resource | None = None,
         counters: SourceState | None = None) -> dict[str, Any]:
    hop: dict[str, Any] = {"kind": kind, "namespace": namespace, "name": name, "detail": detail}
    if resource is not None:
        ready = condition(resource)
        hop["ready"], hop["reason"] = ready["status"], ready["reason"]
    if counters is not None:
        hop["counters"] = {"delivered": counters.delivered, "retried": counters.retried,
                           "deadLettered": counters.dead_lettered, "dropped": counters.dropped, "lag": counters.lag}
    return hop


def _destination(dest: Any, namespace: str, resolved: str) -> dict[str, Any]:
    """A Destination (ref and/or uri) as the last hop of a flow."""
    if isinstance(dest, dict) and isinstance(dest.get("ref"), dict):
        ref = dest["ref"]
        hop = _hop(str(ref.get("kind", "")), str(ref.get("namespace") or namespace), str(ref.get("name", "")),
                   resolved or str(dest.get("uri", "")))
        return hop
    uri = str(dest.get("uri", "")) if isinstance(dest, dict) else ""
    return _hop("URI", namespace, uri or resolved or "(none)", resolved)


def trigger_filter(trigger: Resource) -> str:
    spec = trigger.get("spec", {})
    parts: list[str] = []
    attributes = (spec.get("filter") or {}).get("attributes") or {}
    if isinstance(attributes, dict):
        parts.extend(f"{key}={value}" for key, value in sorted(attributes.items()))
    if spec.get("filters"):
        parts.append(f"filters: {len(spec['filters'])} expression(s)")
    return ", ".join(parts) or "all events"


def _source_detail(source: Resource) -> str:
    spec = source.get("spec", {})
    if isinstance(spec.get("topics"), list):
        return "topics: " + ", ".join(str(t) for t in spec["topics"])
    if spec.get("schedule"):
        return f"schedule: {spec['schedule']}"
    subject = spec.get("subject")
    if isinstance(subject, dict):
        return f"subject: {subject.get('kind', '')}/{subject.get('name', '')}"
    return ""


def eventing_flows(objects: Mapping[k.Kind, list[Resource]], states: Iterable[SourceState]) -> list[list[dict]]:
    """Every path an event takes: source → broker → trigger (filter) → subscriber, or source → channel →
    subscription → subscriber, with the delivery counters of each hop that has them."""
    counters = {(s.kind, s.namespace, s.name): s for s in states}
    triggers: dict[tuple[str, str], list[Resource]] = {}
    for trigger in objects.get(k.TRIGGER, []):
        broker_name = str(trigger.get("spec", {}).get("broker", "default"))
        triggers.setdefault((trigger["metadata"]["namespace"], broker_name), []).append(trigger)

    def trigger_hops(namespace: str, broker: str) -> list[list[dict[str, Any]]]:
        out = []
        for trigger in triggers.get((namespace, broker), []):
            meta = trigger["metadata"]
            out.append([
                _hop("Trigger", namespace, meta["name"], trigger_filter(trigger), trigger,
                     counters.get(("Trigger", namespace, meta["name"]))),
                _destination(trigger.get("spec", {}).get("subscriber"), namespace,
                             str(trigger.get("status", {}).get("subscriberUri", ""))),
            ])
        return out

    subscriptions: dict[tuple[str, str], list[Resource]] = {}
    for subscription in objects.get(k.SUBSCRIPTION, []):
        channel = subscription.get("spec", {}).get("channel") or {}
        subscriptions.setdefault((subscription["metadata"]["namespace"], str(channel.get("name", ""))),
                                 []).append(subscription)

    def subscription_hops(namespace: str, channel: str) -> list[list[dict[str, Any]]]:
        out = []
        for subscription in subscriptions.get((namespace, channel), []):
            meta = subscription["metadata"]
            physical = subscription.get("status", {}).get("physicalSubscription") or {}
            out.append([
                _hop("Subscription", namespace, meta["name"], "", subscription,
                     counters.get(("Subscription", namespace, meta["name"]))),
                _destination(subscription.get("spec", {}).get("subscriber"), namespace,
                             str(physical.get("subscriberUri", ""))),
            ])
        return out

    flows: list[list[dict[str, Any]]] = []
    fed: set[tuple[str, str]] = set()
    brokers = {(b["metadata"]["namespace"], b["metadata"]["name"]): b for b in objects.get(k.BROKER, [])}
    channels = {(c["metadata"]["namespace"], c["metadata"]["name"]): c
                for kind in (k.CHANNEL, k.IN_MEMORY_CHANNEL) for c in objects.get(kind, [])}
    for kind in SOURCE_KINDS:
        for source in objects.get(kind, []):
            meta = source["metadata"]
            head = _hop(kind.kind, meta["namespace"], meta["name"], _source_detail(source), source,
                        counters.get((kind.kind, meta["namespace"], meta["name"])))
            sink = _destination(source.get("spec", {}).get("sink"), meta["namespace"],
                                str(source.get("status", {}).get("sinkUri", "")))
            broker_key = (sink["namespace"], sink["name"])
            if sink["kind"] == "Broker" and broker_key in brokers:
                fed.add(broker_key)
                broker_hop = _hop("Broker", sink["namespace"], sink["name"], sink["detail"], brokers[broker_key])
                tails = trigger_hops(*broker_key) or [[]]
                flows.extend([head, broker_hop, *tail] for tail in tails)
            elif sink["kind"] in ("Channel", "InMemoryChannel") and broker_key in channels:
                fed.add(broker_key)
                channel_hop = _hop(sink["kind"], sink["namespace"], sink["name"], sink["detail"], channels[broker_key])
                flows.extend([head, channel_hop, *tail] for tail in subscription_hops(*broker_key) or [[]])
            else:
                flows.append([head, sink])
    for key, resource in sorted(brokers.items()):
        if key not in fed:
            broker_hop = _hop("Broker", key[0], key[1], "", resource)
            flows.extend([broker_hop, *tail] for tail in (trigger_hops(*key) or [[]]))
    for key, resource in sorted(channels.items()):
        if key not in fed:
            channel_hop = _hop(str(resource.get("kind", "Channel")), key[0], key[1], "", resource)
            flows.extend([channel_hop, *tail] for tail in (subscription_hops(*key) or [[]]))
    return flows
