"""Manifests and event helpers shared by the channel and flow end-to-end tests."""

from __future__ import annotations

from typing import Any

from wisp.eventing.channel import channel_host
from wisp.types import Resource

IMC = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"}


def ce_headers(event_id: str, type_: str = "e2e.test", source: str = "/e2e/flows") -> dict[str, str]:
    return {"ce-specversion": "1.0", "ce-id": event_id, "ce-source": source, "ce-type": type_,
            "content-type": "application/json"}


def imc(name: str, **annotations: str) -> Resource:
    return {**IMC, "metadata": {"name": name, "namespace": "default", "annotations": dict(annotations)}}


def subscription(name: str, channel: str, subscriber: dict[str, Any] | None, *, reply: dict[str, Any] | None = None,
                 channel_kind: str = "InMemoryChannel", delivery: dict[str, Any] | None = None) -> Resource:
    spec: dict[str, Any] = {"channel": {"apiVersion": "messaging.knative.dev/v1", "kind": channel_kind,
                                        "name": channel}}
    if subscriber is not None:
        spec["subscriber"] = subscriber
    if reply is not None:
        spec["reply"] = reply
    if delivery is not None:
        spec["delivery"] = delivery
    return {"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def host_of(channel: str) -> str:
    return channel_host(channel, "default")
