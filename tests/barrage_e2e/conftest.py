"""Fixtures for the barrage demo end to end: result tables (SQLite file, PostgreSQL) and the daemon's client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import pytest_asyncio

from .demo import DemoConfig

PG_USERS = ("postgres", "root")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A working PostgreSQL URL for db `test`; a failure, not a skip, when CI=true."""
    errors = []
    for user in PG_USERS:
        url = f"postgresql://{user}@127.0.0.1:5432/test"
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            return url
        except psycopg.Error as exc:
            errors.append(f"{user}: {exc}")
    message = "PostgreSQL at 127.0.0.1:5432 db test is not reachable: " + "; ".join(errors)
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


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
