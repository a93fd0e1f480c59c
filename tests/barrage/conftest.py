"""Fixtures for the barrage demo's apps: its packages on sys.path, servers on free ports, tables."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
import uvicorn
from starlette.types import ASGIApp

BARRAGE_DIR = Path(__file__).resolve().parents[2] / "examples" / "barrage"
if str(BARRAGE_DIR) not in sys.path:
    sys.path.insert(0, str(BARRAGE_DIR))

from barrage_table import ResultTable, open_table  # noqa: E402


@contextlib.asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a free port; yields its base URL, runs lifespan start and stop.

    The socket is bound and listening before uvicorn starts, so clients may connect at once: their
    connections wait in the backlog until the app has started. IPPROTO_TCP matters: asyncio sets
    TCP_NODELAY only on sockets whose proto says TCP, and without it every response waits ~40 ms
    (Nagle against delayed ACK).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, timeout_graceful_shutdown=5)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


def unique_table_name() -> str:
    return f"barrage_t_{uuid.uuid4().hex[:12]}"




def drop_pg_table(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


TableFactory = Callable[[], ResultTable]


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def table_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TableFactory]:
    """Makes (unstarted) tables that all open the same fresh table: several "instances" of one store."""
    name = unique_table_name()
    is_sqlite = request.param == "sqlite"
    url = f"sqlite://{tmp_path / 'barrage.db'}" if is_sqlite else request.getfixturevalue("pg_url")
    yield lambda: open_table(url, name)
    if request.param == "postgres":
        drop_pg_table(url, name)


@pytest_asyncio.fixture
async def table(table_factory: TableFactory) -> AsyncIterator[ResultTable]:
    t = table_factory()
    await t.start()
    yield t
    await t.stop()
