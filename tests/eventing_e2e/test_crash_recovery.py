"""kill -9 of a real `wisp up` while events are in flight, then a restart on the same state dir.

At-least-once is the contract (architecture.md: eventing semantics): every record / every event the broker
answered 202 for arrives after the restart; duplicates are allowed, counted and printed. Function instances
must die with the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.serving.harness import service, write_function
from tests.wisp_process import WispProcess
from wisp.control.sinks import BROKER_INGRESS_HOST
from wisp.eventing.cloudevents import CloudEvent

from .helpers import (
    broker,
    kafka_source,
    new_topic,
    processes_in,
    produce,
    to_yaml_stream,
    trigger,
    wait_gone,
)
from .servers import EventReceiver

pytestmark = [pytest.mark.crash, pytest.mark.timeout(240)]

RECORDS = 10_000
KILL_AFTER = 3_000

KEEPER = """
def handle(request):
    return "ok"
"""


@pytest.fixture
async def receiver() -> AsyncIterator[EventReceiver]:
    r = EventReceiver(lambda event, attempt: _ok())
    await r.start()
    yield r
    await r.stop()


async def _ok() -> int:
    return 200


async def test_kafka_source_survives_kill_9(kafka_bootstrap: str, tmp_path: Path, receiver: EventReceiver) -> None:
    topic = await new_topic(kafka_bootstrap, partitions=4)
    keeper_dir = write_function(tmp_path / "keeper", KEEPER)
    keeper = service("keeper", keeper_dir, annotations={"autoscaling.knative.dev/min-scale": "1"})
    source = kafka_source("flood", kafka_bootstrap, topic, {"uri": receiver.url}, ordering="unordered",
                          delivery={"retry": 5, "backoffPolicy": "linear", "backoffDelay": "PT0.1S"})
    manifest = tmp_path / "flood.yaml"
    manifest.write_text(to_yaml_stream([keeper, source]))
    await produce(kafka_bootstrap, topic, ({"value": b'{"n": %d}' % i, "key": b"%d" % (i % 97)}
                                           for i in range(RECORDS)))

    daemon = WispProcess(manifest, tmp_path / "state", kafka_bootstrap, tmp_path / "daemon.log")
    await daemon.start()
    try:
        functions = processes_in(keeper_dir)
        assert len(functions) >= 2, "expected the keeper's template and its instance"
        await receiver.wait_until(lambda: len(receiver.delivered) >= KILL_AFTER, 90, f"{KILL_AFTER} deliveries")
        await daemon.kill()
        before_kill = len(receiver.delivered)
        assert before_kill < RECORDS, "everything was delivered before the kill: nothing was in flight"
        survivors = await wait_gone(functions, timeout=15)
        assert not survivors, f"function processes outlived the killed daemon: {sorted(survivors)}"

        await daemon.start()
        await receiver.wait_until(lambda: len(receiver.delivered) >= RECORDS, 150, f"all {RECORDS} records")
        unexpected = receiver.delivered - {f"partition:{p}/offset:{o}" for p in range(4) for o in range(RECORDS)}
        assert not unexpected
        duplicates = len(receiver.arrivals) - len(receiver.delivered)
        print(f"\nkill -9 after {before_kill} of {RECORDS} deliveries: all {RECORDS} delivered after restart, "
              f"{duplicates} duplicate(s) ({100 * duplicates / RECORDS:.1f} %)")
    finally:
        await daemon.stop()
    leftover = await wait_gone(processes_in(keeper_dir), timeout=15)
    assert not leftover, f"processes outlived the daemon's stop: {sorted(leftover)}"


async def test_broker_log_keeps_every_accepted_event_across_kill_9(kafka_bootstrap: str, tmp_path: Path) -> None:
    released = asyncio.Event()

    async def held(event: CloudEvent, attempt: int) -> int:
        # Nothing is acknowledged before the kill: every accepted event is still only in the broker's log.
        await released.wait()
        return 200

    subscriber = EventReceiver(held)
    await subscriber.start()
    manifest = tmp_path / "broker.yaml"
    manifest.write_text(to_yaml_stream([broker(), trigger("all", {"uri": subscriber.url})]))
    daemon = WispProcess(manifest, tmp_path / "state", kafka_bootstrap, tmp_path / "daemon.log")
    accepted: set[str] = set()
    enough = asyncio.Event()
    try:
        await daemon.start()
        async with httpx.AsyncClient(timeout=10) as client:
            async def post(event_id: str) -> None:
                headers = {"Host": BROKER_INGRESS_HOST, "ce-specversion": "1.0", "ce-id": event_id,
                           "ce-source": "/e2e/crash", "ce-type": "crash.test", "content-type": "application/json"}
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.post(f"{daemon.ingress}/default/default", headers=headers,
                                                 content=b'{"x": 1}')
                    if response.status_code == 202:
                        accepted.add(event_id)
                        if len(accepted) >= 150:
                            enough.set()

            async def poster(worker: int) -> None:
                for i in range(40):
                    await post(f"w{worker}-{i}")

            posting = asyncio.gather(*(poster(w) for w in range(10)))
            await asyncio.wait_for(enough.wait(), 60)
            await daemon.kill()  # posters are still sending: some requests die with it
            await posting
        assert 150 <= len(accepted) < 400
        assert not subscriber.delivered

        released.set()
        await daemon.start()
        await subscriber.wait_until(lambda: accepted <= subscriber.delivered, 60, "every accepted event")
        print(f"\nbroker: {len(accepted)} events accepted before kill -9, all delivered after restart "
              f"({len(subscriber.arrivals) - len(subscriber.delivered)} duplicate(s))")
    finally:
        released.set()
        await daemon.stop()
        await subscriber.stop()
