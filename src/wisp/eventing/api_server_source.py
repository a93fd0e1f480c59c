"""ApiServerSource: changes to wisp's objects as Knative's `dev.knative.apiserver.*` CloudEvents.

Each add, update and delete of an object the source selects (its `resources` by apiVersion group, kind and
label selector, in the namespaces it watches, with an owner of the `owner` kind when set) becomes one event,
delivered to the sink in the order the changes happened: in `Reference` mode the data is an object reference,
in `Resource` mode the object itself. As a Kubernetes informer does, a starting source first sends an add for
every object that already matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from wisp.eventing.cloudevents import CloudEvent, make_event
from wisp.eventing.sink_binding import selector_matches
from wisp.types import Resource

log = logging.getLogger(__name__)

Change = Literal["ADDED", "MODIFIED", "DELETED"]
# Where the events say they come from: the in-cluster name of the Kubernetes API server, which wisp stands for.
API_SERVER_SOURCE = "https://kubernetes.default.svc"
# Changes waiting for delivery; beyond this the oldest are dropped (and counted), so a dead sink cannot grow
# the daemon without bound.
MAX_PENDING = 10_000
_VERBS = {"ADDED": "add", "MODIFIED": "update", "DELETED": "delete"}


@dataclass(frozen=True)
class Selection:
    """One `spec.resources` entry."""

    group: str
    kind: str
    selector: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ApiServerConfig:
    namespace: str
    name: str
    mode: str  # Reference or Resource
    resources: tuple[Selection, ...]
    owner: tuple[str, str] | None = None  # (group, kind)
    namespaces: frozenset[str] | None = None  # None: only the source's own namespace
    extensions: tuple[tuple[str, str], ...] = ()


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def self_link(api_version: str, plural: str, namespace: str, name: str) -> str:
    """The event's subject, as Knative's adapter writes it."""
    return f"/apis/{api_version}/namespaces/{namespace}/{plural}/{name}"


def selects(config: ApiServerConfig, resource: Resource) -> bool:
    meta = resource.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    watched = config.namespaces if config.namespaces is not None else frozenset({config.namespace})
    if namespace not in watched:
        return False
    group, kind = _group(str(resource.get("apiVersion", ""))), resource.get("kind")
    labels = meta.get("labels") or {}
    if not any(s.group == group and s.kind == kind and (s.selector is None or selector_matches(s.selector, labels))
               for s in config.resources):
        return False
    if config.owner is not None:
        owner_group, owner_kind = config.owner
        return any(_group(str(ref.get("apiVersion", ""))) == owner_group and ref.get("kind") == owner_kind
                   for ref in meta.get("ownerReferences") or [])
    return True


def to_event(config: ApiServerConfig, change: Change, resource: Resource, plural: str) -> CloudEvent:
    meta = resource["metadata"]
    api_version, kind = str(resource["apiVersion"]), str(resource["kind"])
    reference = config.mode == "Reference"
    data: Any = {"kind": kind, "namespace": meta.get("namespace", ""), "name": meta["name"],
                 "apiVersion": api_version} if reference else resource
    attributes = {
        "specversion": "1.0", "id": str(uuid.uuid4()), "source": API_SERVER_SOURCE,
        "type": f"dev.knative.apiserver.{'ref' if reference else 'resource'}.{_VERBS[change]}",
        "subject": self_link(api_version, plural, str(meta.get("namespace", "")), str(meta["name"])),
        "datacontenttype": "application/json",
        "kind": kind, "apiversion": api_version, "name": str(meta["name"]),
        "namespace": str(meta.get("namespace", "")), **dict(config.extensions),
    }
    return make_event(attributes, data)


class ApiServerRunner:
    """Turns offered changes into events and delivers them one at a time, in order."""

    def __init__(self, config: ApiServerConfig, deliver: Callable[[CloudEvent], Awaitable[None]]) -> None:
        self.config = config
        self.dropped = 0
        self._deliver = deliver
        self._pending: deque[CloudEvent] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def offer(self, change: Change, resource: Resource, plural: str) -> None:
        if not selects(self.config, resource):
            return
        if len(self._pending) >= MAX_PENDING:
            self._pending.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("apiserversource %s/%s: the sink is behind; %d change(s) dropped",
                            self.config.namespace, self.config.name, self.dropped)
        self._pending.append(to_event(self.config, change, resource, plural))
        self._wake.set()

    def offer_existing(self, objects: Iterable[tuple[Resource, str]]) -> None:
        """An informer's first list: an add for each object that already matches."""
        for resource, plural in objects:
            self.offer("ADDED", resource, plural)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"apiserversource {self.config.name}")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._deliver(self._pending.popleft())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
