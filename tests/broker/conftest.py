"""Fixtures for broker tests: a started BrokerLog, a Deliverer, and subscriber servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest_asyncio

from wisp.eventing.broker_log import BrokerLog
from wisp.eventing.delivery import Deliverer

from .servers import Handler, Subscriber


@pytest_asyncio.fixture
async def broker_log(tmp_path: Path) -> AsyncIterator[BrokerLog]:
    blog = BrokerLog(tmp_path / "state" / "broker.db")
    await blog.start()
    try:
        yield blog
    finally:
        await blog.stop()


@pytest_asyncio.fixture
async def deliverer() -> AsyncIterator[Deliverer]:
    async with Deliverer() as d:
        yield d


@pytest_asyncio.fixture
async def subscriber_factory() -> AsyncIterator[Callable[[Handler | None], Awaitable[Subscriber]]]:
    started: list[Subscriber] = []

    async def make(handler: Handler | None = None) -> Subscriber:
        sub = Subscriber(handler)
        await sub.start()
        started.append(sub)
        return sub

    try:
        yield make
    finally:
        for sub in started:
            await sub.stop()
