"""An idle KafkaSource against the real (Tansu) broker: long fetch waits while idle, short once records flow,
no progress reports while nothing happens, and a prompt stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from wisp.eventing.delivery import Deliverer, Destination
from wisp.eventing.fetch_wait import LONG, SHORT
from wisp.eventing.kafka_source import KafkaSourceDispatcher

from .sink import Sink
from .test_kafka_source import committed_offsets, new_topic, produce, resolver, spec_for

pytestmark = pytest.mark.timeout(120)


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def fetch_wait_ms(dispatcher: KafkaSourceDispatcher) -> Any:
    """The wait aiokafka's fetcher puts in its next fetch request (what the adaptation sets)."""
    members = dispatcher._members
    return members[0].consumer._fetcher._fetch_max_wait_ms if members else None


async def started(dispatcher: KafkaSourceDispatcher) -> None:
    await dispatcher.start()
    await until(lambda: dispatcher.status is not None and dispatcher.status[0])


async def test_idle_source_waits_long_and_turns_short_when_records_arrive(
    kafka_bootstrap: str, deliverer: Deliverer, sink: Sink
) -> None:
    topic = await new_topic(kafka_bootstrap)
    clock = [1000.0]
    progress: list[float] = []
    spec = spec_for(kafka_bootstrap, topic, sink, idle_poll_interval=0.05)
    dispatcher = KafkaSourceDispatcher(spec, deliverer, resolver({"sink": Destination(sink.url)}),
                                       now=lambda: clock[0], on_progress=lambda: progress.append(clock[0]))
    await started(dispatcher)
    try:
        assert fetch_wait_ms(dispatcher) == round(SHORT * 1000)  # just started: as if records had flowed
        clock[0] += 3600  # an hour without records
        await until(lambda: fetch_wait_ms(dispatcher) == round(LONG * 1000))
        await asyncio.sleep(0.5)
        assert progress == []  # nothing fetched, nothing settled: no status refresh asked for

        sent = time.monotonic()
        await produce(kafka_bootstrap, topic, [{"value": b"after an idle hour"}])
        await sink.wait_for(1)
        # At most the long wait the fetch in progress was sent with, plus the delivery.
        assert time.monotonic() - sent < LONG + 1.0
        await until(lambda: fetch_wait_ms(dispatcher) == round(SHORT * 1000))
        assert progress  # fetched and delivered: the status is worth refreshing
    finally:
        await dispatcher.stop()
    assert dispatcher.counters.delivered == 1


async def test_stop_is_prompt_while_idle(kafka_bootstrap: str, deliverer: Deliverer, sink: Sink) -> None:
    topic = await new_topic(kafka_bootstrap)
    spec = spec_for(kafka_bootstrap, topic, sink, idle_poll_interval=60.0)
    dispatcher = KafkaSourceDispatcher(spec, deliverer, resolver({"sink": Destination(sink.url)}))
    await started(dispatcher)
    await asyncio.sleep(0.5)  # quiet: the consumer loop waits up to a minute for records
    began = time.monotonic()
    await dispatcher.stop()
    assert time.monotonic() - began < 5.0


async def test_records_produced_while_idle_are_all_delivered_and_committed(
    kafka_bootstrap: str, deliverer: Deliverer, sink: Sink
) -> None:
    topic = await new_topic(kafka_bootstrap, partitions=2)
    spec = spec_for(kafka_bootstrap, topic, sink, idle_poll_interval=0.5, commit_interval=0.1)
    dispatcher = KafkaSourceDispatcher(spec, deliverer, resolver({"sink": Destination(sink.url)}))
    await started(dispatcher)
    try:
        await asyncio.sleep(1.0)
        await produce(kafka_bootstrap, topic, [{"value": f"r{i}".encode(), "partition": i % 2} for i in range(20)])
        await sink.wait_for(20)
        # Settled offsets are committed although the loop then goes quiet again.
        async with asyncio.timeout(10):
            while await committed_offsets(kafka_bootstrap, spec.consumer_group, topic, 2) != {0: 10, 1: 10}:
                await asyncio.sleep(0.1)
    finally:
        await dispatcher.stop()
