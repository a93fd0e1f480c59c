"""Fixtures for the barrage demo end to end: result tables (SQLite file, PostgreSQL) and the daemon's client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import pytest_asyncio

from .demo import DemoConfig


@pytest.fixture(params=["sqlite", "postgres"])
def table_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'barrage.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'barrage.db'}"


def drop_table(cfg: DemoConfig) -> None:
    if cfg.table_url.startswith("postgres"):
        with psycopg.connect(cfg.table_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {cfg.table_name}")


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c
