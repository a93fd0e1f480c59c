"""The default-class broker's durable event log: SQLite (WAL) under the state dir.

One writer task owns every write and groups whatever is queued into one short transaction, so a burst of
appends and acks costs one commit. `append` and `ack` return only after their transaction committed.

Durability: `synchronous=FULL`. Surviving kill -9 of the daemon would already hold with NORMAL (a committed
WAL frame is in the OS page cache, which outlives the process); FULL also fsyncs the WAL at every commit, so
an event answered 202 survives an OS crash or power loss too. Batching amortises that fsync over many events.

Offsets are per broker (0, 1, 2, ...). A trigger's cursor is Kafka-shaped: the committed value is the next
offset it will read. A cursor created for a new trigger starts at the broker's end, as a new Knative trigger
sees only events sent after it exists; a restarted daemon resumes every trigger from its committed cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wisp.eventing.cloudevents import CloudEvent, event_from_json, event_to_json

__all__ = ["BrokerLog", "CursorKey", "LogRecord"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    namespace TEXT NOT NULL, broker TEXT NOT NULL, offset INTEGER NOT NULL, event BLOB NOT NULL,
    PRIMARY KEY (namespace, broker, offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (
    namespace TEXT NOT NULL, broker TEXT NOT NULL, trigger TEXT NOT NULL, committed INTEGER NOT NULL,
    PRIMARY KEY (namespace, broker, trigger)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ends (
    namespace TEXT NOT NULL, broker TEXT NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (namespace, broker)
) WITHOUT ROWID;
"""

BrokerKey = tuple[str, str]


@dataclass(frozen=True)
class CursorKey:
    """One trigger's position in one broker's log."""

    namespace: str
    broker: str
    trigger: str

    @property
    def broker_key(self) -> BrokerKey:
        return (self.namespace, self.broker)


@dataclass(frozen=True)
class LogRecord:
    offset: int
    event: CloudEvent


@dataclass
class _Op:
    kind: str  # "append" | "ack" | "open" | "drop" | "prune"
    args: tuple[Any, ...]
    future: asyncio.Future[Any] = field(repr=False)


class BrokerLog:
    """Append-only per-broker event log with per-trigger committed cursors; `start()`/`stop()` pair."""

    def __init__(self, path: Path, *, max_batch: int = 1024, prune_every: int = 1000) -> None:
        self._path = path
        self._max_batch = max_batch
        # Pruning rides along in the writer's transaction every `prune_every` acks: no timer, no extra task.
        self._prune_every = prune_every
        self._acks_since_prune = 0
        self._queue: asyncio.Queue[_Op | None] = asyncio.Queue()
        # A single thread each, so each sqlite3 connection is only ever used from the thread that made it.
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="broker-log-w")
        self._read_pool = ThreadPoolExecutor(1, thread_name_prefix="broker-log-r")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._writer: asyncio.Task[None] | None = None
        self._ends: dict[BrokerKey, int] = {}
        self._appended = asyncio.Condition()

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._wconn = await loop.run_in_executor(self._write_pool, self._open_writer)
        self._rconn = await loop.run_in_executor(self._read_pool, self._open_reader)
        self._ends = await loop.run_in_executor(self._write_pool, self._load_ends)
        self._writer = asyncio.create_task(self._write_loop(), name="broker-log-writer")

    async def stop(self) -> None:
        if self._writer is not None:
            await self._queue.put(None)  # drains everything queued before it, then exits
            await self._writer
            self._writer = None
        loop = asyncio.get_running_loop()
        if self._wconn is not None:
            await loop.run_in_executor(self._write_pool, self._wconn.close)
            self._wconn = None
        if self._rconn is not None:
            await loop.run_in_executor(self._read_pool, self._rconn.close)
            self._rconn = None
        self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)
        async with self._appended:
            self._appended.notify_all()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.executescript(_SCHEMA)
        return conn

    def _open_reader(self) -> sqlite3.Connection:
        return self._connect()

    def _load_ends(self) -> dict[BrokerKey, int]:
        assert self._wconn is not None
        rows = self._wconn.execute("SELECT namespace, broker, next_offset FROM ends").fetchall()
        return {(ns, b): int(n) for ns, b, n in rows}

    # -- public API ----------------------------------------------------------------------------------------

    async def append(self, namespace: str, broker: str, events: Sequence[CloudEvent]) -> list[int]:
        """Append events; returns their offsets once the transaction holding them is durable."""
        if not events:
            return []
        blobs = [event_to_json(e) for e in events]
        result: list[int] = await self._submit("append", namespace, broker, blobs)
        return result

    async def open_cursor(self, key: CursorKey) -> int:
        """The committed offset of a trigger; a new trigger's cursor is created at the broker's end."""
        result: int = await self._submit("open", key)
        return result

    async def ack(self, key: CursorKey, next_offset: int) -> None:
        """Persist `next_offset` as the trigger's committed cursor (every offset below it is settled).

        Monotonic: a value below the stored one is ignored, so late acks cannot move a cursor backwards.
        """
        await self._submit("ack", key, next_offset)

    async def drop_cursor(self, key: CursorKey) -> None:
        """Forget a deleted trigger, so it no longer holds events back from pruning."""
        await self._submit("drop", key)

    async def prune(self) -> int:
        """Delete events every trigger of their broker has passed; returns how many were deleted."""
        result: int = await self._submit("prune")
        return result

    def end_offset(self, namespace: str, broker: str) -> int:
        """The offset the next appended event of this broker will get."""
        return self._ends.get((namespace, broker), 0)

    async def read(self, namespace: str, broker: str, offset: int, limit: int = 256) -> list[LogRecord]:
        """Up to `limit` records of a broker starting at `offset` (in offset order)."""
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._read_pool, self._read_rows, namespace, broker, offset, limit)
        return [LogRecord(int(off), event_from_json(blob)) for off, blob in rows]

    async def read_from(self, key: CursorKey, offset: int, limit: int = 256) -> list[LogRecord]:
        """`read` for a trigger's broker."""
        return await self.read(key.namespace, key.broker, offset, limit)

    async def wait_beyond(self, namespace: str, broker: str, offset: int) -> None:
        """Return once the broker has an event at or after `offset` (or the log stopped)."""
        async with self._appended:
            await self._appended.wait_for(
                lambda: self._writer is None or self.end_offset(namespace, broker) > offset
            )

    # -- the writer ----------------------------------------------------------------------------------------

    def _read_rows(self, namespace: str, broker: str, offset: int, limit: int) -> list[tuple[int, bytes]]:
        assert self._rconn is not None
        cur = self._rconn.execute(
            "SELECT offset, event FROM events WHERE namespace=? AND broker=? AND offset>=? "
            "ORDER BY offset LIMIT ?",
            (namespace, broker, offset, limit),
        )
        return [(int(o), bytes(b)) for o, b in cur.fetchall()]

    async def _submit(self, kind: str, *args: Any) -> Any:
        if self._writer is None:
            raise RuntimeError("BrokerLog is not started")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Op(kind, args, future))
        return await future

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            batch: list[_Op] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            while len(batch) < self._max_batch and not self._queue.empty():
                op = self._queue.get_nowait()
                if op is None:
                    stopping = True
                    continue
                batch.append(op)
            if not batch:
                continue
            try:
                results, ends = await loop.run_in_executor(self._write_pool, self._apply, batch)
            except Exception as exc:  # the whole transaction rolled back: every caller in it learns why
                log.exception("broker log write failed")
                for op in batch:
                    if not op.future.done():
                        op.future.set_exception(exc)
                continue
            self._ends.update(ends)
            for op, value in zip(batch, results, strict=True):
                if not op.future.done():
                    op.future.set_result(value)
            if ends:
                async with self._appended:
                    self._appended.notify_all()

    def _apply(self, batch: list[_Op]) -> tuple[list[Any], dict[BrokerKey, int]]:
        """Run a batch in one transaction (writer thread). Returns per-op results and the new broker ends."""
        conn = self._wconn
        assert conn is not None
        ends: dict[BrokerKey, int] = {}

        def end_of(key: BrokerKey) -> int:
            return ends.get(key, self._ends.get(key, 0))

        results: list[Any] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op in batch:
                if op.kind == "append":
                    namespace, broker, blobs = op.args
                    start = end_of((namespace, broker))
                    offsets = list(range(start, start + len(blobs)))
                    conn.executemany(
                        "INSERT INTO events(namespace, broker, offset, event) VALUES (?,?,?,?)",
                        [(namespace, broker, o, b) for o, b in zip(offsets, blobs, strict=True)],
                    )
                    ends[(namespace, broker)] = start + len(blobs)
                    results.append(offsets)
                elif op.kind == "open":
                    (key,) = op.args
                    row = conn.execute(
                        "SELECT committed FROM cursors WHERE namespace=? AND broker=? AND trigger=?",
                        (key.namespace, key.broker, key.trigger),
                    ).fetchone()
                    if row is None:
                        committed = end_of(key.broker_key)
                        conn.execute(
                            "INSERT INTO cursors(namespace, broker, trigger, committed) VALUES (?,?,?,?)",
                            (key.namespace, key.broker, key.trigger, committed),
                        )
                    else:
                        committed = int(row[0])
                    results.append(committed)
                elif op.kind == "ack":
                    key, next_offset = op.args
                    conn.execute(
                        "INSERT INTO cursors(namespace, broker, trigger, committed) VALUES (?,?,?,?) "
                        "ON CONFLICT(namespace, broker, trigger) "
                        "DO UPDATE SET committed=max(committed, excluded.committed)",
                        (key.namespace, key.broker, key.trigger, int(next_offset)),
                    )
                    results.append(None)
                elif op.kind == "drop":
                    (key,) = op.args
                    conn.execute(
                        "DELETE FROM cursors WHERE namespace=? AND broker=? AND trigger=?",
                        (key.namespace, key.broker, key.trigger),
                    )
                    results.append(None)
                elif op.kind == "prune":
                    results.append(self._prune(conn))
                else:  # pragma: no cover - programming error
                    raise ValueError(f"unknown op {op.kind}")
            self._acks_since_prune += sum(1 for op in batch if op.kind == "ack")
            if self._prune_every and self._acks_since_prune >= self._prune_every:
                self._acks_since_prune = 0
                self._prune(conn)
            for (namespace, broker), next_offset in ends.items():
                conn.execute(
                    "INSERT INTO ends(namespace, broker, next_offset) VALUES (?,?,?) "
                    "ON CONFLICT(namespace, broker) DO UPDATE SET next_offset=excluded.next_offset",
                    (namespace, broker, next_offset),
                )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return results, ends

    def _prune(self, conn: sqlite3.Connection) -> int:
        # A broker without any cursor keeps nothing: a trigger created later starts at the end anyway.
        cur = conn.execute(
            "DELETE FROM events WHERE offset < COALESCE("
            " (SELECT min(c.committed) FROM cursors c"
            "  WHERE c.namespace = events.namespace AND c.broker = events.broker),"
            " (SELECT e.next_offset FROM ends e"
            "  WHERE e.namespace = events.namespace AND e.broker = events.broker))"
        )
        return int(cur.rowcount)
