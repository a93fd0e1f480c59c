"""ResultTable on a SQLite file (WAL): the default, nothing to install."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from barrage_table.base import BarrageRow, StoredRow, check_table_name

T = TypeVar("T")

_COLUMNS = "id, text, lane, color, speed, sent_at, processed_at, run"


class SqliteResultTable:
    """One connection used from one worker thread, so all statements are serialised without locks.

    Several processes (processor instances, the HomePage) may open the same file: WAL lets readers run
    beside the writer and `busy_timeout` makes concurrent writers wait instead of failing.
    """

    def __init__(self, path: str, name: str, busy_timeout_ms: int = 30_000) -> None:
        self.path = path
        self.name = check_table_name(name)
        self._busy_timeout_ms = busy_timeout_ms
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{self.name}")
        await self._run(self._open)

    async def stop(self) -> None:
        if self._executor is None:
            return
        await self._run(self._close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def insert_many(self, rows: Sequence[BarrageRow]) -> int:
        if not rows:
            return 0
        params = [(r.id, r.text, r.lane, r.color, r.speed, r.sent_at, r.processed_at, r.run) for r in rows]

        def insert(conn: sqlite3.Connection) -> int:
            with conn:  # one transaction per batch: the group commit
                before = conn.total_changes
                conn.executemany(
                    f"INSERT OR IGNORE INTO {self.name} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", params
                )
                return conn.total_changes - before

        return await self._with_conn(insert)

    async def read_after(self, cursor: int, limit: int) -> list[StoredRow]:
        def read(conn: sqlite3.Connection) -> list[StoredRow]:
            cur = conn.execute(
                f"SELECT seq, {_COLUMNS} FROM {self.name} WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, limit)
            )
            return [
                StoredRow(seq, BarrageRow(i, text, lane, color, speed, sent_at, processed_at, run))
                for seq, i, text, lane, color, speed, sent_at, processed_at, run in cur.fetchall()
            ]

        return await self._with_conn(read)

    async def last_cursor(self) -> int:
        def last(conn: sqlite3.Connection) -> int:
            (value,) = conn.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {self.name}").fetchone()
            return int(value)

        return await self._with_conn(last)

    async def count(self, run: str | None = None) -> int:
        def count(conn: sqlite3.Connection) -> int:
            if run is None:
                (n,) = conn.execute(f"SELECT COUNT(*) FROM {self.name}").fetchone()
            else:
                (n,) = conn.execute(f"SELECT COUNT(*) FROM {self.name} WHERE run = ?", (run,)).fetchone()
            return int(n)

        return await self._with_conn(count)

    async def ids(self) -> set[str]:
        return await self._with_conn(lambda conn: {i for (i,) in conn.execute(f"SELECT id FROM {self.name}")})

    # -- internals -------------------------------------------------------------------------------

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across app crashes, fast commits
        # isolation_level=None is autocommit; `with conn` then needs an explicit BEGIN to batch.
        conn.isolation_level = "DEFERRED"
        with conn:
            # AUTOINCREMENT: seq never reuses a value, so a reader's cursor never skips a new row.
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.name} ("
                " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                " id TEXT NOT NULL UNIQUE,"
                " text TEXT NOT NULL,"
                " lane INTEGER NOT NULL,"
                " color TEXT NOT NULL,"
                " speed REAL NOT NULL,"
                " sent_at REAL NOT NULL,"
                " processed_at REAL NOT NULL,"
                " run TEXT NOT NULL DEFAULT '')"
            )
            conn.execute(f"CREATE INDEX IF NOT EXISTS {self.name}_run ON {self.name} (run)")
        self._conn = conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _with_conn(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise RuntimeError(f"table {self.name} is not started")
            return fn(self._conn)

        return await self._run(call)

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise RuntimeError(f"table {self.name} is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
