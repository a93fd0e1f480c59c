"""Resources in SQLite, Kubernetes-shaped: uid, resourceVersion, generation, creationTimestamp, watch.

Writes are short synchronous transactions on the daemon's loop: the control path is not hot, and one
writer with no awaits inside a transaction keeps "nothing half-applied" trivially true.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from wisp.api.kinds import ALL_KINDS, Kind
from wisp.types import Clock, Resource

# The class below defines a `list` method; annotations inside it use this name for the builtin.
_List = list

Action = Literal["created", "configured", "unchanged", "deleted"]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]

# Fields of metadata that the server owns; a user's copy of them is ignored on apply.
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")


class NotFound(LookupError):
    pass


class Conflict(Exception):
    pass


@dataclass(frozen=True)
class ApplyResult:
    kind: Kind
    namespace: str
    name: str
    action: Action
    resource: Resource


@dataclass(frozen=True)
class StoreEvent:
    type: EventType
    kind: Kind
    resource: Resource

    @property
    def key(self) -> tuple[Kind, str, str]:
        meta = self.resource["metadata"]
        return self.kind, meta.get("namespace", ""), meta["name"]


def _kind_key(kind: Kind) -> str:
    return f"{kind.group}/{kind.plural}"


def _desired_part(resource: Resource) -> Any:
    """What the user controls: everything but status and server-owned metadata."""
    body = {k: v for k, v in resource.items() if k not in ("status", "metadata", "apiVersion")}
    meta = resource.get("metadata", {})
    body["metadata"] = {k: v for k, v in meta.items() if k not in _SERVER_METADATA}
    return body


def _generation_part(resource: Resource) -> Any:
    """Changes to this bump metadata.generation, as in Kubernetes (spec, or data for Secrets/ConfigMaps)."""
    return {k: v for k, v in resource.items() if k not in ("status", "metadata", "apiVersion", "kind")}


class Store:
    def __init__(self, path: Path | None, clock: Clock) -> None:
        self._path = path
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._subscribers: _List[asyncio.Queue[StoreEvent]] = []

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        target = ":memory:" if self._path is None else str(self._path)
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS resources (kind TEXT NOT NULL, namespace TEXT NOT NULL,"
            " name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, namespace, name))"
        )
        db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        db.execute("INSERT OR IGNORE INTO counters VALUES ('resourceVersion', 0)")
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    # -- watch -----------------------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[StoreEvent]:
        queue: asyncio.Queue[StoreEvent] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[StoreEvent]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def _publish(self, events: Iterable[StoreEvent]) -> None:
        for event in events:
            for queue in self._subscribers:
                queue.put_nowait(event)

    # -- reads -----------------------------------------------------------------------------------
    def get(self, kind: Kind, namespace: str, name: str) -> Resource | None:
        row = self.db.execute(
            "SELECT body FROM resources WHERE kind=? AND namespace=? AND name=?",
            (_kind_key(kind), self._ns(kind, namespace), name),
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def list(self, kind: Kind, namespace: str | None = None) -> _List[Resource]:
        if namespace is None or not kind.namespaced:
            rows = self.db.execute(
                "SELECT body FROM resources WHERE kind=? ORDER BY namespace, name", (_kind_key(kind),)
            )
        else:
            rows = self.db.execute(
                "SELECT body FROM resources WHERE kind=? AND namespace=? ORDER BY name",
                (_kind_key(kind), namespace),
            )
        return [dict(json.loads(r[0])) for r in rows]

    def all(self) -> _List[tuple[Kind, Resource]]:
        by_key = {_kind_key(k): k for k in ALL_KINDS}
        out: _List[tuple[Kind, Resource]] = []
        for key, body in self.db.execute("SELECT kind, body FROM resources ORDER BY kind, namespace, name"):
            if key in by_key:
                out.append((by_key[key], dict(json.loads(body))))
        return out

    # -- writes ----------------------------------------------------------------------------------
    def apply(self, items: _List[tuple[Kind, Resource]]) -> _List[ApplyResult]:
        """Create or update every item in one transaction: all are written or none is."""
        results: _List[ApplyResult] = []
        events: _List[StoreEvent] = []
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for kind, resource in items:
                result, event = self._upsert(kind, resource)
                results.append(result)
                if event is not None:
                    events.append(event)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._publish(events)
        return results

    def create(self, kind: Kind, resource: Resource) -> Resource:
        meta = resource["metadata"]
        if self.get(kind, meta.get("namespace", ""), meta["name"]) is not None:
            raise Conflict(f'{kind.plural} "{meta["name"]}" already exists')
        return self.apply([(kind, resource)])[0].resource

    def replace(self, kind: Kind, resource: Resource) -> Resource:
        meta = resource["metadata"]
        current = self.get(kind, meta.get("namespace", ""), meta["name"])
        if current is None:
            raise NotFound(f'{kind.plural} "{meta["name"]}" not found')
        wanted_version = meta.get("resourceVersion")
        if wanted_version and wanted_version != current["metadata"]["resourceVersion"]:
            raise Conflict(
                f'the object has been modified; resourceVersion {wanted_version} is not the latest '
                f'({current["metadata"]["resourceVersion"]})'
            )
        return self.apply([(kind, resource)])[0].resource

    def put_status(self, kind: Kind, namespace: str, name: str, status: dict[str, Any]) -> Resource | None:
        """Replace an object's status; no write (and no event) when nothing changed."""
        current = self.get(kind, namespace, name)
        if current is None:
            return None
        if current.get("status") == status:
            return current
        updated = dict(current)
        updated["status"] = status
        updated["metadata"] = dict(current["metadata"], resourceVersion=str(self._next_version()))
        self._write(kind, updated)
        self._publish([StoreEvent("MODIFIED", kind, updated)])
        return updated

    def delete(self, kind: Kind, namespace: str, name: str) -> Resource:
        """Delete an object and, as Kubernetes' garbage collector would, everything it owns."""
        current = self.get(kind, namespace, name)
        if current is None:
            raise NotFound(f'{kind.plural} "{name}" not found')
        events: _List[StoreEvent] = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._delete_tree(kind, current, events)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._publish(events)
        return current

    # -- internals -------------------------------------------------------------------------------
    @staticmethod
    def _ns(kind: Kind, namespace: str | None) -> str:
        return (namespace or "default") if kind.namespaced else ""

    def _next_version(self) -> int:
        row = self.db.execute(
            "UPDATE counters SET value = value + 1 WHERE name='resourceVersion' RETURNING value"
        ).fetchone()
        return int(row[0])

    def _write(self, kind: Kind, resource: Resource) -> None:
        meta = resource["metadata"]
        self.db.execute(
            "INSERT OR REPLACE INTO resources (kind, namespace, name, body) VALUES (?, ?, ?, ?)",
            (_kind_key(kind), self._ns(kind, meta.get("namespace")), meta["name"], json.dumps(resource)),
        )

    def _upsert(self, kind: Kind, incoming: Resource) -> tuple[ApplyResult, StoreEvent | None]:
        resource = copy.deepcopy(incoming)
        resource.pop("status", None)
        meta = resource.setdefault("metadata", {})
        for field in _SERVER_METADATA:
            meta.pop(field, None)
        if kind.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        resource["apiVersion"] = kind.api_version
        resource["kind"] = kind.kind
        namespace, name = meta.get("namespace", ""), meta["name"]
        current = self.get(kind, namespace, name)
        if current is None:
            meta.update(
                uid=str(uuid.uuid4()),
                generation=1,
                creationTimestamp=_timestamp(self._clock()),
                resourceVersion=str(self._next_version()),
            )
            self._write(kind, resource)
            return ApplyResult(kind, namespace, name, "created", resource), StoreEvent("ADDED", kind, resource)
        if _desired_part(current) == _desired_part(resource):
            return ApplyResult(kind, namespace, name, "unchanged", current), None
        old_meta = current["metadata"]
        generation = int(old_meta.get("generation", 1))
        if _generation_part(current) != _generation_part(resource):
            generation += 1
        meta.update(
            uid=old_meta["uid"],
            creationTimestamp=old_meta["creationTimestamp"],
            generation=generation,
            resourceVersion=str(self._next_version()),
        )
        if "status" in current:
            resource["status"] = current["status"]
        self._write(kind, resource)
        return ApplyResult(kind, namespace, name, "configured", resource), StoreEvent("MODIFIED", kind, resource)

    def _delete_tree(self, kind: Kind, resource: Resource, events: _List[StoreEvent]) -> None:
        meta = resource["metadata"]
        namespace = self._ns(kind, meta.get("namespace"))
        for child_kind, child in self._owned_by(meta["uid"], namespace):
            self._delete_tree(child_kind, child, events)
        self.db.execute(
            "DELETE FROM resources WHERE kind=? AND namespace=? AND name=?",
            (_kind_key(kind), namespace, meta["name"]),
        )
        events.append(StoreEvent("DELETED", kind, resource))

    def _owned_by(self, uid: str, namespace: str) -> _List[tuple[Kind, Resource]]:
        by_key = {_kind_key(k): k for k in ALL_KINDS}
        owned: _List[tuple[Kind, Resource]] = []
        rows = self.db.execute("SELECT kind, body FROM resources WHERE namespace=?", (namespace,))
        for key, body in rows.fetchall():
            obj = json.loads(body)
            refs = obj.get("metadata", {}).get("ownerReferences", [])
            if any(ref.get("uid") == uid for ref in refs) and key in by_key:
                owned.append((by_key[key], obj))
        return owned


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
