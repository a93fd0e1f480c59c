"""EventType (v1beta3): the registry of the events a namespace's brokers and channels carry. Each reports
whether the resource its `spec.reference` names exists. With Knative's `eventtype-auto-create` feature on
(`config-features` in knative-eventing), brokers and channels register each new (type, source) they take."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from wisp.api import kinds as k
from wisp.api.defaults_flows import EVENTING_NAMESPACE
from wisp.api.errors import UnknownKindError
from wisp.control.conditions import Condition
from wisp.control.controller import Key
from wisp.control.eventing.base import KindReconciler, name_of
from wisp.control.eventing.builders import observed
from wisp.eventing.broker import Broker
from wisp.eventing.cloudevents import CloudEvent
from wisp.store import Store, StoreEvent
from wisp.types import Resource

log = logging.getLogger("wisp.eventing")

CONFIG_FEATURES = "config-features"
AUTO_CREATE_FLAG = "eventtype-auto-create"
# A sender choosing a new type or source for every event must not fill the store: auto-creation stops here.
MAX_AUTO_CREATED = 10_000
_INVALID = re.compile(r"[^a-z0-9.-]")


def auto_create_enabled(store: Store) -> bool:
    features = store.get(k.CONFIG_MAP, EVENTING_NAMESPACE, CONFIG_FEATURES)
    return str(((features or {}).get("data") or {}).get(AUTO_CREATE_FLAG, "")).strip().lower() == "enabled"


def event_type_name(name: str, namespace: str, type_: str, source: str) -> str:
    """Knative's generated name: `et-{addressable}-{md5 of type, source, namespace, addressable}`."""
    digest = hashlib.md5((type_ + source + namespace + name).encode(), usedforsecurity=False).hexdigest()
    out = f"et-{name}-{digest}"
    if len(out) > 253:
        out = out[:248]
    return _INVALID.sub("", out.lower()).strip("-.")


def auto_event_type(addressable: Resource, event: CloudEvent) -> Resource:
    meta = addressable["metadata"]
    ref = {"apiVersion": addressable["apiVersion"], "kind": addressable["kind"], "name": meta["name"],
           "namespace": meta["namespace"]}
    schema = event.get("dataschema")
    return {
        "apiVersion": k.EVENT_TYPE.api_version, "kind": "EventType",
        "metadata": {"name": event_type_name(meta["name"], meta["namespace"], str(event["type"]),
                                             str(event["source"])),
                     "namespace": meta["namespace"],
                     "ownerReferences": [{**{key: ref[key] for key in ("apiVersion", "kind", "name")},
                                          "uid": meta["uid"]}]},
        "spec": {"reference": ref, "description": "Event Type auto-created by controller", "attributes": [
            {"name": "type", "value": str(event["type"]), "required": True},
            {"name": "source", "value": str(event["source"]), "required": True},
            {"name": "schemadata", "value": str(schema) if schema else "", "required": True},
            {"name": "specversion", "value": str(event["specversion"]), "required": True},
            {"name": "id", "required": True}]},
    }


class AutoEventTypes:
    """Creates the EventType of each (type, source) an addressable carries, once."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._seen: set[tuple[str, str, str, str]] = set()  # (namespace, addressable, type, source)
        self._full_reported = False

    def observer(self, addressable: Resource) -> Callable[[CloudEvent], None]:
        meta = addressable["metadata"]

        def observe(event: CloudEvent) -> None:
            # Checked before anything is built: every event an addressable takes passes here.
            seen = (meta["namespace"], meta["name"], str(event["type"]), str(event["source"]))
            if seen in self._seen:
                return
            if len(self._seen) >= MAX_AUTO_CREATED:
                if not self._full_reported:
                    log.warning("%d EventTypes auto-created: creating no more", MAX_AUTO_CREATED)
                    self._full_reported = True
                return
            self._seen.add(seen)
            wanted = auto_event_type(addressable, event)
            if self._store.get(k.EVENT_TYPE, meta["namespace"], wanted["metadata"]["name"]) is None:
                self._store.apply([(k.EVENT_TYPE, wanted)])

        return observe


class ObservedBroker:
    """A Broker whose accepted events are also told to `observe` (EventType auto-creation)."""

    def __init__(self, inner: Broker, observe: Callable[[CloudEvent], None]) -> None:
        self._inner = inner
        self._observe = observe

    @property
    def namespace(self) -> str:
        return self._inner.namespace

    @property
    def name(self) -> str:
        return self._inner.name

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        await self._inner.publish(events)
        for event in events:
            try:
                self._observe(event)
            except Exception:  # the registry is a side effect: the events are already stored
                log.exception("broker %s/%s: recording the type of event %s failed", self.namespace, self.name,
                              event.get("id"))


class EventTypeReconciler(KindReconciler):
    kind = k.EVENT_TYPE

    async def apply(self, event_type: Resource) -> None:
        namespace, _ = name_of(event_type)
        ref: dict[str, Any] = (event_type.get("spec") or {}).get("reference") or {}
        if not ref:
            condition = Condition("ReferenceExists", "True", "ReferenceNotSet", "spec.reference is not set")
        else:
            try:
                kind = k.for_manifest(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
            except UnknownKindError as exc:
                condition = Condition.unknown("ReferenceExists", "ReferenceGetFailed",
                                              f"Failed to get reference: {exc}")
            else:
                found = self.ctx.store.get(kind, str(ref.get("namespace") or namespace), str(ref.get("name", "")))
                condition = Condition.true("ReferenceExists") if found is not None else Condition.false(
                    "ReferenceExists", "ResourceDoesNotExist", "Resource in spec.reference does not exist")
        self.write_status(event_type, (observed(event_type), [condition]))

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        """EventTypes whose reference names the object that appeared, changed or went."""
        if event.kind is k.EVENT_TYPE or event.type == "MODIFIED":
            return []
        namespace, name = name_of(event.resource)
        return [(self.kind, namespace, name_of(et)[1]) for et in self.ctx.store.list(self.kind, namespace)
                if ((et.get("spec") or {}).get("reference") or {}).get("kind") == event.kind.kind
                and et["spec"]["reference"].get("name") == name]
