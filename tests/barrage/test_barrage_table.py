"""The result table on SQLite and on PostgreSQL: idempotent inserts, cursor reads, counts."""

from __future__ import annotations

import asyncio

import pytest
from barrage_table import BarrageRow, ResultTable, sqlite_path

from .conftest import TableFactory


def row(i: int | str, run: str = "r1", text: str = "hi") -> BarrageRow:
    return BarrageRow(id=str(i), text=text, lane=1, color="#ff5252", speed=7.5, sent_at=1.0, processed_at=2.0, run=run)


async def test_insert_is_idempotent_on_id(table: ResultTable) -> None:
    assert await table.insert_many([row(1), row(2), row(2)]) == 2  # a duplicate inside one batch too
    assert await table.insert_many([row(2), row(3)]) == 1
    assert await table.insert_many([]) == 0
    assert await table.ids() == {"1", "2", "3"}
    assert await table.count() == 3


async def test_read_after_pages_in_insert_order(table: ResultTable) -> None:
    assert await table.last_cursor() == 0
    await table.insert_many([row(i) for i in range(5)])
    first = await table.read_after(0, 3)
    assert [r.row.id for r in first] == ["0", "1", "2"]
    rest = await table.read_after(first[-1].seq, 100)
    assert [r.row.id for r in rest] == ["3", "4"]
    assert await table.read_after(rest[-1].seq, 100) == []
    assert await table.last_cursor() == rest[-1].seq
    assert rest[0].row == row(3)


async def test_text_is_stored_verbatim(table: ResultTable) -> None:
    text = "<img src=x onerror=alert(1)> 'quotes' \"dq\" 弾幕 😀"
    await table.insert_many([row("x", text=text)])
    (stored,) = await table.read_after(0, 10)
    assert stored.row.text == text
    assert stored.to_json()["text"] == text


async def test_count_per_run(table: ResultTable) -> None:
    await table.insert_many([row(1, "a"), row(2, "a"), row(3, "b")])
    assert await table.count("a") == 2
    assert await table.count("b") == 1
    assert await table.count("c") == 0


async def test_instances_writing_concurrently_make_one_row_per_id(table_factory: TableFactory) -> None:
    """Three "processor instances" insert overlapping batches at once; a reader then sees each id once."""
    tables = [table_factory() for _ in range(3)]
    for t in tables:
        await t.start()
    try:
        batches = [[row(i) for i in range(k, 300, 2)] for k in (0, 1)] + [[row(i) for i in range(0, 300, 3)]]
        inserted = await asyncio.gather(*(t.insert_many(b) for t, b in zip(tables, batches, strict=True)))
        assert sum(inserted) == 300
        seen: list[str] = []
        cursor = 0
        while page := await tables[0].read_after(cursor, 64):
            seen += [r.row.id for r in page]
            cursor = page[-1].seq
        assert sorted(seen, key=int) == [str(i) for i in range(300)]
    finally:
        for t in tables:
            await t.stop()


async def test_table_must_be_started(table_factory: TableFactory) -> None:
    t = table_factory()
    with pytest.raises(RuntimeError, match="not started"):
        await t.count()


def test_sqlite_url_forms() -> None:
    assert sqlite_path("sqlite:///var/x.db") == "/var/x.db"
    assert sqlite_path("/var/y.db") == "/var/y.db"
    assert sqlite_path("", {"TMPDIR": "/scratch"}) == "/scratch/wisp-barrage.db"


def test_table_name_must_be_an_identifier() -> None:
    from barrage_table import open_table

    with pytest.raises(ValueError, match="TABLE_NAME"):
        open_table("", "barrage; DROP TABLE x")
