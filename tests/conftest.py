"""Fixtures of general use for the whole test suite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio

from wisp.eventing.local_kafka import LocalKafka, free_port


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kafka_bootstrap() -> AsyncIterator[str]:
    """Bootstrap servers (`127.0.0.1:PORT`) of one local Tansu broker shared by the test session.

    The broker is memory-only and starts with no topics: create yours with
    `wisp.eventing.local_kafka.ensure_topics(bootstrap, [name], partitions=N)`, using names unique to your
    test, since every test of the session shares this broker.
    """
    log_dir = Path(os.environ.get("WISP_TEST_KAFKA_LOG_DIR", "/tmp"))
    kafka = LocalKafka(free_port(), log_file=log_dir / f"wisp-test-tansu-{os.getpid()}.log")
    await kafka.start()
    try:
        yield kafka.bootstrap_servers
    finally:
        await kafka.stop()


PG_USERS = ("postgres", "root")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A working PostgreSQL URL for db `test` (the user that exists here: postgres or root); a failure,
    not a skip, when CI=true."""
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
