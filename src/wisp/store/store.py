"""Resources in SQLite, Kubernetes-shaped: uid, resourceVersion, generation, creationTimestamp, watch.

Writes are short synchronous transactions on the daemon's loop: the control path is not hot, and one
writer with no awaits inside a transaction keeps "nothing half-applied" trivially true.

Integrity: opening runs SQLite's `quick_check` and refuses a damaged file (StoreCorrupt). Every row carries a
SHA-256 of its key and body, so `damaged()` finds an object whose bytes changed on disk (which quick_check cannot
see); such an object is `set_aside()`: moved to the `set_aside` table, out of reach of the API and the
reconcilers, kept for the user to inspect. Write failures surface as StoreError (StoreFull for a full disk).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wisp.api.kinds import ALL_KINDS, Kind
from wisp.api.timestamps import rfc3339
from wisp.store.errors import StoreCorrupt, corrupt_message, translate
from wisp.store.events import EventType, StoreEvent
from wisp.store.json_text import decode
from wisp.store.state_dir import private_dir, private_file
from wisp.store.watch import DEFAULT_HISTORY, Watchers
from wisp.types import Clock, Resource

# The class below defines a `list` method; annotations inside it use this name for the builtin.
_List = list

Action = Literal["created", "configured", "unchanged", "deleted"]
__all__ = ["Action", "ApplyResult", "Conflict", "DamagedRow", "EventType", "NotFound", "Store", "StoreEvent"]

# Fields of metadata that the server owns; a user's copy of them is ignored on apply.
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")
# Server-owned fields that say nothing about what was asked for (managedFields does: who set what).
_VOLATILE_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "selfLink")


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


class _DryRun(Exception):
    """Rolls a dry-run transaction back once its outcome is known."""


@dataclass(frozen=True)
class DamagedRow:
    """A stored object that cannot be trusted, and why."""

    kind_key: str  # group/plural, as stored
    namespace: str
    name: str
    reason: str

    @property
    def kind(self) -> Kind | None:
        return _BY_KEY.get(self.kind_key)

    def describe(self) -> str:
        kind = self.kind
        what = kind.kind if kind is not None else self.kind_key
        return f"{what} {self.namespace + '/' if self.namespace else ''}{self.name}"


def _kind_key(kind: Kind) -> str:
    return f"{kind.group}/{kind.plural}"


_BY_KEY = {_kind_key(k): k for k in ALL_KINDS}


def _checksum(kind_key: str, namespace: str, name: str, body: str) -> str:
    return hashlib.sha256(f"{kind_key}\0{namespace}\0{name}\0{body}".encode()).hexdigest()


def _desired_part(resource: Resource) -> Any:
    """What the user controls: everything but status and server-owned metadata."""
    body = {k: v for k, v in resource.items() if k not in ("status", "metadata", "apiVersion")}
    meta = resource.get("metadata", {})
    body["metadata"] = {k: v for k, v in meta.items() if k not in _VOLATILE_METADATA}
    return body


def _generation_part(resource: Resource) -> Any:
    """Changes to this bump metadata.generation, as in Kubernetes (spec, or data for Secrets/ConfigMaps)."""
    return {k: v for k, v in resource.items() if k not in ("status", "metadata", "apiVersion", "kind")}


class Store:
    def __init__(self, path: Path | None, clock: Clock, history: int = DEFAULT_HISTORY) -> None:
        """`history`: how many changes are kept for watches resuming from a resourceVersion."""
        self._path = path
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._subscribers: _List[asyncio.Queue[StoreEvent]] = []
        self._history = history
        self.watchers = Watchers(0, history)

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Open (or create) the database; StoreCorrupt when the file is damaged, StoreError when unusable."""
        target = ":memory:" if self._path is None else str(self._path)
        if self._path is not None:
            if not self._path.parent.is_dir():
                private_dir(self._path.parent)
            private_file(self._path)  # 0600 before SQLite writes a byte; its -wal and -shm follow the file's mode
        db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            problems = [line.strip() for row in db.execute("PRAGMA quick_check(5)") for line in str(row[0]).splitlines()
                        if line.strip() and not line.startswith("***")]
            if problems != ["ok"]:
                raise StoreCorrupt(corrupt_message(self._path, "quick_check: " + "; ".join(problems)))
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS resources (kind TEXT NOT NULL, namespace TEXT NOT NULL,"
                " name TEXT NOT NULL, body TEXT NOT NULL, checksum TEXT, PRIMARY KEY (kind, namespace, name))"
            )
            db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
            db.execute("INSERT OR IGNORE INTO counters VALUES ('resourceVersion', 0)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS set_aside (kind TEXT NOT NULL, namespace TEXT NOT NULL,"
                " name TEXT NOT NULL, body TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL)"
            )
            self._add_checksums(db)
        except sqlite3.Error as exc:
            db.close()
            raise translate(exc, self._path) from exc
        except StoreCorrupt:
            db.close()
            raise
        self._db = db
        self.watchers = Watchers(self.version(), self._history)  # changes before this start cannot be replayed

    @staticmethod
    def _add_checksums(db: sqlite3.Connection) -> None:
        """Stores written before checksums existed get them now, trusting what they hold today."""
        columns = {row[1] for row in db.execute("PRAGMA table_info(resources)")}
        if "checksum" not in columns:
            db.execute("ALTER TABLE resources ADD COLUMN checksum TEXT")
        rows = db.execute("SELECT kind, namespace, name, body FROM resources WHERE checksum IS NULL").fetchall()
        for kind, namespace, name, body in rows:
            db.execute("UPDATE resources SET checksum=? WHERE kind=? AND namespace=? AND name=?",
                       (_checksum(kind, namespace, name, body), kind, namespace, name))

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
        events = list(events)
        for event in events:
            for queue in self._subscribers:
                queue.put_nowait(event)
        self.watchers.publish((e.version, e) for e in events)

    def version(self) -> int:
        """The resourceVersion of the last write (a list's resourceVersion)."""
        row = self.db.execute("SELECT value FROM counters WHERE name='resourceVersion'").fetchone()
        return int(row[0])

    # -- reads -----------------------------------------------------------------------------------
    def get(self, kind: Kind, namespace: str, name: str) -> Resource | None:
        row = self.db.execute(
            "SELECT body FROM resources WHERE kind=? AND namespace=? AND name=?",
            (_kind_key(kind), self._ns(kind, namespace), name),
        ).fetchone()
        return None if row is None else decode(row[0])

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
        return [decode(r[0]) for r in rows]

    def all(self) -> _List[tuple[Kind, Resource]]:
        out: _List[tuple[Kind, Resource]] = []
        for key, body in self.db.execute("SELECT kind, body FROM resources ORDER BY kind, namespace, name"):
            if key in _BY_KEY:
                out.append((_BY_KEY[key], decode(body)))
        return out

    # -- integrity -------------------------------------------------------------------------------
    def damaged(self) -> _List[DamagedRow]:
        """Objects whose stored bytes cannot be trusted: changed on disk, not JSON, or not the object their
        key names. Objects of kinds this wisp does not know are left alone (a newer wisp may have written them)."""
        out: _List[DamagedRow] = []
        rows = self.db.execute("SELECT kind, namespace, name, body, checksum FROM resources ORDER BY kind, namespace,"
                               " name")
        for kind_key, namespace, name, body, checksum in rows.fetchall():
            reason = _damage(kind_key, namespace, name, body, checksum)
            if reason is not None and kind_key in _BY_KEY:
                out.append(DamagedRow(kind_key, namespace, name, reason))
        return out

    def set_aside(self, kind_key: str, namespace: str, name: str, reason: str) -> None:
        """Move an object out of the live table into `set_aside`: no longer served, reconciled or listed.
        What it owns stays (as `kubectl delete --cascade=orphan` leaves it); re-applying it adopts them again."""
        with self._transaction() as db:
            row = db.execute("SELECT body FROM resources WHERE kind=? AND namespace=? AND name=?",
                             (kind_key, namespace, name)).fetchone()
            if row is None:
                return
            db.execute("INSERT INTO set_aside (kind, namespace, name, body, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
                       (kind_key, namespace, name, row[0], reason, rfc3339(self._clock())))
            db.execute("DELETE FROM resources WHERE kind=? AND namespace=? AND name=?", (kind_key, namespace, name))

    # -- writes ----------------------------------------------------------------------------------
    def apply(self, items: _List[tuple[Kind, Resource]], *, dry_run: bool = False,
              keep_managed_fields: bool = False) -> _List[ApplyResult]:
        """Create or update every item in one transaction: all are written or none is.

        `dry_run`: the outcome as it would be, nothing stored or published. `keep_managed_fields`: the items'
        metadata.managedFields are stored as given (the API computed them); otherwise an item's are ignored
        and the stored object keeps its own.
        """
        results: _List[ApplyResult] = []
        events: _List[StoreEvent] = []
        with self._writing(dry_run):
            for kind, resource in items:
                result, event = self._upsert(kind, resource, keep_managed_fields)
                results.append(result)
                if event is not None:
                    events.append(event)
        if not dry_run:
            self._publish(events)
        return results

    def create(self, kind: Kind, resource: Resource, *, dry_run: bool = False,
               keep_managed_fields: bool = False) -> Resource:
        meta = resource["metadata"]
        if self.get(kind, meta.get("namespace", ""), meta["name"]) is not None:
            raise Conflict(f'{kind.plural} "{meta["name"]}" already exists')
        return self.apply([(kind, resource)], dry_run=dry_run, keep_managed_fields=keep_managed_fields)[0].resource

    def replace(self, kind: Kind, resource: Resource, *, dry_run: bool = False,
                keep_managed_fields: bool = False) -> Resource:
        meta = resource["metadata"]
        current = self.get(kind, meta.get("namespace", ""), meta["name"])
        if current is None:
            raise NotFound(f'{kind.plural} "{meta["name"]}" not found')
        _check_version(kind, current, meta.get("resourceVersion"))
        return self.apply([(kind, resource)], dry_run=dry_run, keep_managed_fields=keep_managed_fields)[0].resource

    def put_status(self, kind: Kind, namespace: str, name: str, status: dict[str, Any], *,
                   expected_version: str | None = None, dry_run: bool = False) -> Resource | None:
        """Replace an object's status; no write (and no event) when nothing changed. Conflict when
        `expected_version` is given and is not the stored one."""
        current = self.get(kind, namespace, name)
        if current is None:
            return None
        _check_version(kind, current, expected_version)
        if current.get("status") == status:
            return current
        updated = dict(current)
        updated["status"] = status
        with self._writing(dry_run):
            updated["metadata"] = dict(current["metadata"], resourceVersion=str(self._next_version()))
            self._write(kind, updated)
        if not dry_run:
            self._publish([StoreEvent("MODIFIED", kind, updated, current)])
        return updated

    def delete(self, kind: Kind, namespace: str, name: str, *, dry_run: bool = False,
               orphan: bool = False) -> Resource:
        """Delete an object and, as Kubernetes' garbage collector would, everything it owns (`orphan`: its
        dependents stay, without their reference to it)."""
        current = self.get(kind, namespace, name)
        if current is None:
            raise NotFound(f'{kind.plural} "{name}" not found')
        events: _List[StoreEvent] = []
        with self._writing(dry_run):
            self._delete_tree(kind, current, events, orphan)
        if not dry_run:
            self._publish(events)
        return current

    def delete_many(self, keys: _List[tuple[Kind, str, str]], *, dry_run: bool = False,
                    orphan: bool = False) -> _List[Resource | None]:
        """Delete each object (and what it owns) in one transaction: all or none. None for one already gone."""
        deleted: _List[Resource | None] = []
        events: _List[StoreEvent] = []
        with self._writing(dry_run):
            for kind, namespace, name in keys:
                current = self.get(kind, namespace, name)
                if current is not None:
                    self._delete_tree(kind, current, events, orphan)
                deleted.append(current)
        if not dry_run:
            self._publish(events)
        return deleted

    # -- internals -------------------------------------------------------------------------------
    @contextmanager
    def _writing(self, dry_run: bool) -> Iterator[None]:
        """A write transaction; a dry run's is rolled back whole once its outcome is known."""
        try:
            with self._transaction():
                yield
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed whole or rolled back whole; SQLite's errors become StoreErrors."""
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                # SQLite may already have rolled back (e.g. on SQLITE_FULL); a second ROLLBACK would mask the cause.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise translate(exc, self._path) from exc

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
        key, namespace, name, body = _kind_key(kind), self._ns(kind, meta.get("namespace")), meta["name"], \
            json.dumps(resource)
        self.db.execute(
            "INSERT OR REPLACE INTO resources (kind, namespace, name, body, checksum) VALUES (?, ?, ?, ?, ?)",
            (key, namespace, name, body, _checksum(key, namespace, name, body)),
        )

    def _upsert(self, kind: Kind, incoming: Resource, keep_managed_fields: bool = False,
                ) -> tuple[ApplyResult, StoreEvent | None]:
        resource = copy.deepcopy(incoming)
        resource.pop("status", None)
        meta = resource.setdefault("metadata", {})
        managed = meta.get("managedFields")
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
        if keep_managed_fields:
            if managed:
                meta["managedFields"] = managed
        elif current is not None and current["metadata"].get("managedFields"):
            meta["managedFields"] = current["metadata"]["managedFields"]
        if current is None:
            meta.update(
                uid=str(uuid.uuid4()),
                generation=1,
                creationTimestamp=rfc3339(self._clock()),
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
        return (ApplyResult(kind, namespace, name, "configured", resource),
                StoreEvent("MODIFIED", kind, resource, current))

    def _delete_tree(self, kind: Kind, resource: Resource, events: _List[StoreEvent], orphan: bool = False) -> None:
        meta = resource["metadata"]
        namespace = self._ns(kind, meta.get("namespace"))
        for child_kind, child in self._owned_by(meta["uid"], namespace):
            others = [ref for ref in child["metadata"]["ownerReferences"] if ref.get("uid") != meta["uid"]]
            if orphan or any(self._uid_exists(ref.get("uid"), namespace) for ref in others):
                # Kubernetes' garbage collector deletes a dependent only once all its owners are gone;
                # until then it just drops the reference to the one that went.
                kept = copy.deepcopy(child)
                kept["metadata"]["ownerReferences"] = others
                if not others:
                    del kept["metadata"]["ownerReferences"]
                kept["metadata"]["resourceVersion"] = str(self._next_version())
                self._write(child_kind, kept)
                events.append(StoreEvent("MODIFIED", child_kind, kept, child))
            else:
                self._delete_tree(child_kind, child, events)
        self.db.execute(
            "DELETE FROM resources WHERE kind=? AND namespace=? AND name=?",
            (_kind_key(kind), namespace, meta["name"]),
        )
        # The deletion is a change with a version of its own, as in Kubernetes: a watch resumes past it.
        events.append(StoreEvent("DELETED", kind, resource, resource, deleted_at=self._next_version()))

    def _uid_exists(self, uid: object, namespace: str) -> bool:
        # Owners live in the dependent's namespace or are cluster-scoped (stored under "").
        rows = self.db.execute("SELECT body FROM resources WHERE namespace IN (?, '')", (namespace,))
        return any(decode(body).get("metadata", {}).get("uid") == uid for (body,) in rows.fetchall())

    def _owned_by(self, uid: str, namespace: str) -> _List[tuple[Kind, Resource]]:
        owned: _List[tuple[Kind, Resource]] = []
        rows = self.db.execute("SELECT kind, body FROM resources WHERE namespace=?", (namespace,))
        for key, body in rows.fetchall():
            obj = decode(body)
            refs = obj.get("metadata", {}).get("ownerReferences", [])
            if any(ref.get("uid") == uid for ref in refs) and key in _BY_KEY:
                owned.append((_BY_KEY[key], obj))
        return owned


def _check_version(kind: Kind, current: Resource, wanted: str | None) -> None:
    """Conflict, in the API server's words, when `wanted` is given and is not the stored resourceVersion."""
    if wanted and wanted != current["metadata"]["resourceVersion"]:
        name = current["metadata"]["name"]
        what = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
        raise Conflict(f'Operation cannot be fulfilled on {what} "{name}": the object has been modified; '
                       "please apply your changes to the latest version and try again")


def _damage(kind_key: str, namespace: str, name: str, body: str, checksum: str | None) -> str | None:
    """Why a stored row cannot be trusted, or None."""
    if checksum is not None and checksum != _checksum(kind_key, namespace, name, body):
        return "its stored bytes changed since wisp wrote them (checksum mismatch)"
    try:
        obj = json.loads(body)
    except ValueError as exc:
        return f"its stored body is not JSON ({exc})"
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or meta.get("name") != name or (meta.get("namespace") or "") != namespace:
        return "its stored body is not the object its key names"
    return None
