"""ResultTable on PostgreSQL (psycopg 3, async): for when a SQLite file is not enough."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg

from barrage_table.base import BarrageRow, StoredRow, check_table_name

_COLUMNS = "id, text, lane, color, speed, sent_at, processed_at, run"


class PostgresResultTable:
    """One connection per process, used by one statement at a time.

    Every writing transaction first takes a transaction-scoped advisory lock on the table, so
    transactions commit in `seq` order: a reader that has seen seq N never later finds a row < N
    appear (which concurrent sequence allocation would otherwise allow), and its cursor stays valid.
    Batched inserts keep that serialisation cheap.
    """

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = check_table_name(name)
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if self._conn is not None:
            return
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=False)
        async with conn.transaction():
            # Two instances starting at once would race on CREATE TABLE IF NOT EXISTS.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"barrage:{self.name}",))
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.name} ("
                " seq BIGSERIAL NOT NULL UNIQUE,"
                " id TEXT PRIMARY KEY,"
                " text TEXT NOT NULL,"
                " lane INTEGER NOT NULL,"
                " color TEXT NOT NULL,"
                " speed DOUBLE PRECISION NOT NULL,"
                " sent_at DOUBLE PRECISION NOT NULL,"
                " processed_at DOUBLE PRECISION NOT NULL,"
                " run TEXT NOT NULL DEFAULT '')"
            )
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {self.name}_run ON {self.name} (run)")
        self._conn = conn

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def insert_many(self, rows: Sequence[BarrageRow]) -> int:
        if not rows:
            return 0
        columns: list[list[Any]] = [
            [r.id for r in rows],
            [r.text for r in rows],
            [r.lane for r in rows],
            [r.color for r in rows],
            [r.speed for r in rows],
            [r.sent_at for r in rows],
            [r.processed_at for r in rows],
            [r.run for r in rows],
        ]
        conn = self._need()
        async with self._lock, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"barrage:{self.name}",))
            # One statement for the whole batch; unnest keeps the batch order, so seq follows it.
            cur = await conn.execute(
                f"INSERT INTO {self.name} ({_COLUMNS}) SELECT * FROM unnest("
                "%s::text[], %s::text[], %s::int[], %s::text[], %s::float8[], %s::float8[], %s::float8[],"
                " %s::text[]) ON CONFLICT (id) DO NOTHING",
                columns,
            )
            return max(cur.rowcount, 0)

    async def read_after(self, cursor: int, limit: int) -> list[StoredRow]:
        rows = await self._fetch(
            f"SELECT seq, {_COLUMNS} FROM {self.name} WHERE seq > %s ORDER BY seq LIMIT %s", (cursor, limit)
        )
        return [
            StoredRow(int(seq), BarrageRow(i, text, lane, color, speed, sent_at, processed_at, run))
            for seq, i, text, lane, color, speed, sent_at, processed_at, run in rows
        ]

    async def last_cursor(self) -> int:
        rows = await self._fetch(f"SELECT COALESCE(MAX(seq), 0) FROM {self.name}", ())
        return int(rows[0][0])

    async def count(self, run: str | None = None) -> int:
        if run is None:
            rows = await self._fetch(f"SELECT COUNT(*) FROM {self.name}", ())
        else:
            rows = await self._fetch(f"SELECT COUNT(*) FROM {self.name} WHERE run = %s", (run,))
        return int(rows[0][0])

    async def ids(self) -> set[str]:
        return {str(i) for (i,) in await self._fetch(f"SELECT id FROM {self.name}", ())}

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = self._need()
        async with self._lock, conn.transaction():
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall())

    def _need(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None:
            raise RuntimeError(f"table {self.name} is not started")
        return self._conn
