"""Fixtures shared by the KafkaSource suites: a started delivery client and a recording sink."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from wisp.eventing.delivery import Deliverer

from .sink import Sink


@pytest.fixture
async def deliverer() -> AsyncIterator[Deliverer]:
    d = Deliverer()
    await d.start()
    yield d
    await d.stop()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()
