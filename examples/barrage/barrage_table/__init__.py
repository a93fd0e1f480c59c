"""The barrage demo's result table (the seed's "Tablestore"): one interface, SQLite or PostgreSQL.

Both apps import this package after putting `examples/barrage/` on `sys.path` (see homepage/main.py
and processor/app.py), so the two services share one schema and one row shape.
"""

from __future__ import annotations

from barrage_table.base import BarrageRow, ResultTable, StoredRow, open_table, sqlite_path

__all__ = ["BarrageRow", "ResultTable", "StoredRow", "open_table", "sqlite_path"]
