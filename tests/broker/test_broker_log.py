"""The durable broker log: append → read → ack → reopen resumes from the acked cursor."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from wisp.eventing.broker_log import BrokerLog, CursorKey
from wisp.eventing.cloudevents import CloudEvent, make_event


def _event(i: int) -> CloudEvent:
    return make_event(
        {"id": f"e{i}", "source": "/test", "specversion": "1.0", "type": "t", "knativebrokerttl": "255"},
        {"n": i} if i % 2 else f"bytes-{i}".encode(),
    )


async def test_append_read_ack_reopen(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    key = CursorKey("default", "b1", "trig")
    blog = BrokerLog(path)
    await blog.start()
    try:
        assert await blog.open_cursor(key) == 0
        offsets = await blog.append("default", "b1", [_event(i) for i in range(5)])
        assert offsets == [0, 1, 2, 3, 4]
        assert await blog.append("default", "other", [_event(9)]) == [0]  # offsets are per broker
        records = await blog.read_from(key, 0, limit=3)
        assert [r.offset for r in records] == [0, 1, 2]
        assert records[1].event["id"] == "e1" and records[1].event.get_data() == {"n": 1}
        assert records[2].event.get_data() == b"bytes-2"
        assert "time" not in records[0].event  # stored exactly as accepted
        await blog.ack(key, 2)
        await blog.ack(key, 1)  # stale ack does not move the cursor back
    finally:
        await blog.stop()

    reopened = BrokerLog(path)
    await reopened.start()
    try:
        committed = await reopened.open_cursor(key)
        assert committed == 2
        again = await reopened.read_from(key, committed)
        assert [r.event["id"] for r in again] == ["e2", "e3", "e4"]
        assert await reopened.append("default", "b1", [_event(5)]) == [5]  # offsets continue
    finally:
        await reopened.stop()


async def test_new_trigger_starts_at_end_and_prune(tmp_path: Path) -> None:
    blog = BrokerLog(tmp_path / "broker.db")
    await blog.start()
    try:
        a, b = CursorKey("ns", "br", "a"), CursorKey("ns", "br", "b")
        assert await blog.open_cursor(a) == 0
        await blog.append("ns", "br", [_event(i) for i in range(4)])
        assert await blog.open_cursor(b) == 4  # a trigger sees events sent after it exists
        await blog.append("ns", "br", [_event(4)])
        await blog.ack(a, 3)
        assert await blog.prune() == 3  # a passed 0..2, b passed 0..3
        assert [r.offset for r in await blog.read("ns", "br", 0)] == [3, 4]
        await blog.drop_cursor(a)
        await blog.ack(b, 5)
        assert await blog.prune() == 2
        assert await blog.read("ns", "br", 0) == []
        assert await blog.append("ns", "br", [_event(5)]) == [5]
    finally:
        await blog.stop()


async def test_wait_beyond_wakes_on_append_and_batches(tmp_path: Path) -> None:
    blog = BrokerLog(tmp_path / "broker.db")
    await blog.start()
    try:
        waiter = asyncio.create_task(blog.wait_beyond("ns", "br", 0))
        await asyncio.sleep(0)
        assert not waiter.done()
        # Many concurrent appends: each gets distinct offsets, all durable on return.
        results = await asyncio.gather(*(blog.append("ns", "br", [_event(i)]) for i in range(50)))
        await asyncio.wait_for(waiter, 10)
        assert sorted(o for r in results for o in r) == list(range(50))
        assert blog.end_offset("ns", "br") == 50
    finally:
        await blog.stop()


_WRITER = """
import asyncio, sys
from pathlib import Path
from wisp.eventing.broker_log import BrokerLog
from wisp.eventing.cloudevents import make_event

async def main() -> None:
    blog = BrokerLog(Path(sys.argv[1]))
    await blog.start()
    events = [make_event({"id": f"k{i}", "source": "/s", "specversion": "1.0", "type": "t"}, None)
              for i in range(20)]
    offsets = await blog.append("ns", "br", events)
    print(offsets[-1], flush=True)  # "accepted": the caller would now answer 202
    await asyncio.Event().wait()  # hang until killed; stop() never runs

asyncio.run(main())
"""


async def test_accepted_events_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "broker.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WRITER, str(path), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    proc.kill()  # SIGKILL right after the append returned
    await proc.wait()
    assert line.strip() == b"19"
    blog = BrokerLog(path)
    await blog.start()
    try:
        assert [r.event["id"] for r in await blog.read("ns", "br", 0)] == [f"k{i}" for i in range(20)]
        assert blog.end_offset("ns", "br") == 20
    finally:
        await blog.stop()
