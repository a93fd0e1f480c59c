"""A minimal valid manifest of every kind wisp stores, and an in-process control API to send them to."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.api import VirtualKinds, build_api
from wisp.store import Store
from wisp.types import Resource

STORED_KINDS: tuple[Kind, ...] = tuple(kind for kind in k.ALL_KINDS if not kind.virtual)
VIRTUAL_KINDS: tuple[Kind, ...] = tuple(kind for kind in k.ALL_KINDS if kind.virtual)

_SINK = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "sink"}}
_TEMPLATE = {"spec": {"containers": [{"image": "./app"}]}}

# The part of each kind's manifest after apiVersion, kind and metadata.
_BODIES: dict[str, dict[str, Any]] = {
    "Service": {"spec": {"template": _TEMPLATE}},
    "Configuration": {"spec": {"template": _TEMPLATE}},
    "Revision": {"spec": {"containers": [{"image": "./app"}]}},
    "Route": {"spec": {"traffic": [{"configurationName": "app", "percent": 100}]}},
    "DomainMapping": {"spec": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "app"}}},
    "KafkaSource": {"spec": {"bootstrapServers": ["127.0.0.1:9092"], "topics": ["t"], "sink": _SINK}},
    "PingSource": {"spec": {"schedule": "*/1 * * * *", "sink": _SINK}},
    "SinkBinding": {"spec": {"subject": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "app"},
                             "sink": _SINK}},
    "Broker": {},
    "Trigger": {"spec": {"broker": "default", "subscriber": _SINK}},
    "InMemoryChannel": {},
    "Channel": {},
    "Subscription": {"spec": {"channel": {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                                          "name": "orders"}, "subscriber": _SINK}},
    "Sequence": {"spec": {"steps": [_SINK]}},
    "Parallel": {"spec": {"branches": [{"subscriber": _SINK}]}},
    "ContainerSource": {"spec": {"template": {"spec": {"containers": [{"name": "beat", "image": "./beat"}]}},
                                 "sink": _SINK}},
    "EventType": {"spec": {"attributes": [{"name": n} for n in ("type", "source", "specversion", "id")]}},
    "ApiServerSource": {"spec": {"resources": [{"apiVersion": "v1", "kind": "ConfigMap"}], "sink": _SINK}},
    "KafkaChannel": {"spec": {"numPartitions": 1}},
    "JobSink": {"spec": {"job": {"spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "main", "image": "./job"}]}}}}}},
    "Secret": {"stringData": {"token": "s3cr3t-value"}},
    "ConfigMap": {"data": {"greeting": "hello"}},
    "Namespace": {},
}


def sample_kinds() -> set[str]:
    return set(_BODIES)


def name_for(kind: Kind, base: str) -> str:
    """`base`, made a valid name for `kind` (a DomainMapping is named by its domain)."""
    return f"{base}.example.com" if kind is k.DOMAIN_MAPPING else base


def manifest(kind: Kind, name: str, namespace: str | None = None, **extra_meta: Any) -> Resource:
    """A valid manifest of `kind` named `name` (namespaced kinds in `namespace` when given)."""
    meta: dict[str, Any] = {"name": name, **extra_meta}
    if namespace is not None and kind.namespaced:
        meta["namespace"] = namespace
    return {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta, **copy.deepcopy(_BODIES[kind.kind])}


def item_path(kind: Kind, namespace: str, name: str) -> str:
    return f"{kind.collection_path(namespace if kind.namespaced else None)}/{name}"


def collection_path(kind: Kind, namespace: str) -> str:
    return kind.collection_path(namespace if kind.namespaced else None)


def _no_logs(namespace: str, service: str, follow: bool, tail: int) -> AsyncIterator[str]:
    raise AssertionError("not used")


def empty_virtual() -> VirtualKinds:
    return VirtualKinds(list_pods=lambda ns: [], list_autoscalers=lambda ns: [], service_logs=_no_logs,
                        info=lambda: {}, metrics=lambda: (b"", "text/plain"))


@asynccontextmanager
async def api_client(store: Store, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to a control API over `store`, in process."""
    app = build_api(store, empty_virtual(), **options)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wisp") as client:
        yield client
