"""Knative delivery semantics through the daemon: retries, backoff, dead-letter sink, non-retryable 4xx."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.serving.harness import running_daemon
from wisp.api import kinds as k
from wisp.eventing.cloudevents import CloudEvent
from wisp.types import Resource

from .helpers import kafka_source, new_topic, produce
from .servers import EventReceiver

pytestmark = pytest.mark.timeout(120)

# What the sink answers, by the record's `mode`; attempt is 1-based per event id.
SCRIPT: dict[str, Callable[[int], int]] = {
    "flaky": lambda attempt: 503 if attempt <= 2 else 200,
    "broken": lambda attempt: 500,
    "bad": lambda attempt: 400,
    "fine": lambda attempt: 200,
}


async def scripted(event: CloudEvent, attempt: int) -> int:
    data = event.get_data()
    body = json.loads(data) if isinstance(data, bytes | str) else data
    assert isinstance(body, dict)
    return SCRIPT[str(body["mode"])](attempt)


@pytest.fixture
async def sink() -> AsyncIterator[EventReceiver]:
    receiver = EventReceiver(scripted)
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def dead_letters() -> AsyncIterator[EventReceiver]:
    receiver = EventReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_retries_backoff_and_dead_letters(kafka_bootstrap: str, tmp_path: Path, sink: EventReceiver,
                                                dead_letters: EventReceiver) -> None:
    topic = await new_topic(kafka_bootstrap)
    delivery = {"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.05S",
                "deadLetterSink": {"uri": dead_letters.url}}
    source = kafka_source("retrying", kafka_bootstrap, topic, {"uri": sink.url}, delivery=delivery)
    modes = ["flaky", "broken", "bad", "fine"]
    await produce(kafka_bootstrap, topic, [{"value": json.dumps({"mode": m}).encode()} for m in modes])
    ids = {mode: f"partition:0/offset:{i}" for i, mode in enumerate(modes)}

    async with running_daemon(tmp_path / "state", kafka=kafka_bootstrap) as h:
        h.apply(source)
        await h.ready("retrying", kind=k.KAFKA_SOURCE)
        # Ordered (the default): "fine", the last record, is sent only after the others settled.
        await sink.wait_until(lambda: sink.attempts[ids["fine"]] == 1, what="the last record")

        assert [a.status for a in sink.of_id(ids["flaky"])] == [503, 503, 200]
        assert [a.status for a in sink.of_id(ids["broken"])] == [500, 500, 500, 500]  # 1 attempt + 3 retries
        times = [a.at for a in sink.of_id(ids["broken"])]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(gap >= 0.05 * k_ for k_, gap in enumerate(gaps, 1)), gaps  # linear: delay·k before retry k
        assert [a.status for a in sink.of_id(ids["bad"])] == [400]  # a 4xx other than 404/408/409/429: final

        assert [e["id"] for e in dead_letters.events] == [ids["broken"], ids["bad"]]
        broken, bad = dead_letters.events
        assert broken["knativeerrorcode"] == "500"
        assert broken["knativeerrordest"] == sink.url
        assert broken["knativeerrordata"]  # base64 of the sink's reply body
        assert broken["type"] == "dev.knative.kafka.event"
        assert bad["knativeerrorcode"] == "400"

        def settled(r: Resource) -> bool:
            stats = r.get("status", {}).get("deliveryStats", {})
            return bool(stats.get("delivered") == 2 and stats.get("deadLettered") == 2)

        stats = (await h.wait_for(k.KAFKA_SOURCE, "default", "retrying", settled))["status"]["deliveryStats"]
        assert stats["retried"] == 2 + 3
