"""Load: Concurrency 50 for 20 s (≥ 1,000 messages/s) through `wisp up`; every id stored exactly once, and the
processing service scales above minScale during the load and back down to it afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from barrage_table import open_table

from .demo import DemoConfig, Wisp, produced_ids, running_demo, wait_until

pytestmark = pytest.mark.timeout(240)

CONCURRENCY, DURATION, RATE = 50, 20, 25.0  # 1,250 messages/s asked for; the test requires ≥ 1,000/s produced
MIN_SCALE = 1


async def watch_scale(wisp: Wisp, client: httpx.AsyncClient, seen: list[int], stop: asyncio.Event) -> None:
    """Sample the processor's ready instances through the control API (the daemon offers no pod watch)."""
    while not stop.is_set():
        with contextlib.suppress(httpx.HTTPError):
            seen.append(await wisp.ready_pods(client))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def test_load_is_stored_exactly_once_and_scales(tmp_path: Path, kafka_bootstrap: str, sqlite_url: str,
                                                      client: httpx.AsyncClient) -> None:
    # One processor instance keeps up with this load at the demo's containerConcurrency (50, a target of 35
    # in flight); a target of 2.8 makes the same load need several instances, so scaling out is exercised.
    cfg = DemoConfig(kafka=kafka_bootstrap, table_url=sqlite_url, window="6s", grace_period="1s",
                     ordering="unordered", container_concurrency=4)
    table = open_table(cfg.table_url, cfg.table_name)
    async with running_demo(tmp_path, cfg) as wisp:
        assert await wisp.ready_pods(client) == MIN_SCALE
        seen: list[int] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_scale(wisp, client, seen, stop))
        started = time.monotonic()
        last = await wisp.send(client, "load", concurrency=CONCURRENCY, duration=DURATION, rate=RATE)
        send_seconds = time.monotonic() - started
        sent, run = int(last["sent"]), str(last["run"])
        print(f"sent {sent} in {send_seconds:.1f} s ({sent / DURATION:.0f}/s over the Send's {DURATION} s), "
              f"failed {last['failed']}")
        assert last["failed"] == 0, last
        assert sent >= 1000 * DURATION, f"only {sent} messages produced in {DURATION} s"

        await table.start()
        try:
            async def all_stored() -> bool:
                return await table.count(run) >= sent

            await wait_until(all_stored, 60, f"{sent} rows stored")
            stored_at = time.monotonic() - started
            produced = await produced_ids(cfg.kafka, cfg.topic, run)
            rows = await table.read_after(0, 2 * sent)
        finally:
            await table.stop()
        assert len(produced) == sent
        counts = Counter(r.row.id for r in rows)
        assert counts == Counter(produced), (
            f"missing {len(set(produced) - set(counts))}, unexpected {len(set(counts) - set(produced))}")
        print(f"all {sent} stored {stored_at:.1f} s after the Send began; instances seen: {max(seen)} max")
        assert max(seen) > MIN_SCALE, f"the processor never scaled above minScale: {seen}"

        async def back_to_min() -> bool:
            return await wisp.ready_pods(client) == MIN_SCALE

        await wait_until(back_to_min, 60, f"the processor back at minScale {MIN_SCALE}")
        stop.set()
        await watcher
        print(f"back to {MIN_SCALE} instance {time.monotonic() - started:.1f} s after the Send began")
