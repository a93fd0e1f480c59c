"""Row shapes, the ResultTable protocol and `open_table(url)`, which picks the implementation."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Table names are interpolated into SQL (they cannot be bound parameters), so only plain identifiers.
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DEFAULT_SQLITE_FILE = "wisp-barrage.db"


@dataclass(frozen=True)
class BarrageRow:
    """One processed message: what the processor writes and the stage draws."""

    id: str
    text: str
    lane: int
    color: str
    speed: float  # seconds to cross the stage
    sent_at: float
    processed_at: float
    run: str = ""  # the HomePage Send this message belongs to, for per-run counts


@dataclass(frozen=True)
class StoredRow:
    """A row as read back, with the table's cursor (insert order, strictly increasing)."""

    seq: int
    row: BarrageRow

    def to_json(self) -> dict[str, Any]:
        r = self.row
        return {
            "seq": self.seq,
            "id": r.id,
            "text": r.text,
            "lane": r.lane,
            "color": r.color,
            "speed": r.speed,
            "sent_at": r.sent_at,
            "processed_at": r.processed_at,
            "run": r.run,
        }


class ResultTable(Protocol):
    """The result table both apps use. `insert_many` is idempotent on `id`."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def insert_many(self, rows: Sequence[BarrageRow]) -> int:
        """Insert rows whose id is new; return how many were inserted (duplicates are ignored)."""
        ...

    async def read_after(self, cursor: int, limit: int) -> list[StoredRow]:
        """Rows with seq > cursor, oldest first, at most `limit`."""
        ...

    async def last_cursor(self) -> int:
        """The highest seq so far (0 when empty): where a new reader starts."""
        ...

    async def count(self, run: str | None = None) -> int:
        """Number of rows, or of rows of one run."""
        ...

    async def ids(self) -> set[str]: ...


def check_table_name(name: str) -> str:
    if not _TABLE_NAME.match(name):
        raise ValueError(f"TABLE_NAME {name!r}: must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return name


def sqlite_path(url: str, env: Mapping[str, str] | None = None) -> str:
    """`sqlite:///abs/path.db` or a bare path → a file path; empty → `$TMPDIR/wisp-barrage.db`.

    The default is absolute on purpose: the HomePage and the processor run in different working
    directories and must open the same file.
    """
    rest = url.removeprefix("sqlite://")
    if rest:
        return rest
    tmp = (env or os.environ).get("TMPDIR") or tempfile.gettempdir()
    return os.path.join(tmp, DEFAULT_SQLITE_FILE)


def open_table(url: str, name: str, env: Mapping[str, str] | None = None) -> ResultTable:
    """The table for a `TABLE_URL`: `postgresql://...` (or `postgres://`) or SQLite otherwise."""
    check_table_name(name)
    if url.startswith(("postgresql://", "postgres://")):
        from barrage_table.postgres import PostgresResultTable

        return PostgresResultTable(url, name)
    from barrage_table.sqlite import SqliteResultTable

    return SqliteResultTable(sqlite_path(url, env), name)
