"""The processing service over real HTTP: binary CloudEvents in, validated and masked rows out."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import pytest_asyncio
from barrage_table import ResultTable
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from processor.processing import PALETTE, style
from processor.service import ProcessorSettings, create_app

from .conftest import BARRAGE_DIR, TableFactory, serve

SETTINGS = ProcessorSettings(banned_words=("darn", "heck", "c++"), lanes=6)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def ce_headers(event_id: str = "partition:0/offset:1", **extra: str) -> dict[str, str]:
    headers = {
        "ce-id": event_id,
        "ce-source": "/apis/v1/namespaces/default/kafkasources/barrage#barrage-info",
        "ce-specversion": "1.0",
        "ce-type": "dev.knative.kafka.event",
        "content-type": "application/json",
    }
    headers.update(extra)
    return headers


def message(text: str = "hello", message_id: str | None = None, **extra: Any) -> bytes:
    return json.dumps({"id": message_id or uuid.uuid4().hex, "text": text, "sent_at": 1700.0} | extra).encode()


class Processor:
    def __init__(
        self, url: str, client: httpx.AsyncClient, table: ResultTable, spans: InMemorySpanExporter, writer: Any
    ) -> None:
        self.url, self.client, self.table, self.spans, self.writer = url, client, table, spans, writer

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(self.url + "/", content=body, headers=headers or ce_headers())


@pytest_asyncio.fixture
async def processor(table_factory: TableFactory) -> AsyncIterator[Processor]:
    table = table_factory()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = create_app(SETTINGS, table, provider.get_tracer("test"), clock=lambda: 5000.0)
    async with serve(app) as url, httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=50)) as c:
        yield Processor(url, c, table, spans, app.state.writer)


async def test_valid_event_is_masked_styled_and_stored(processor: Processor) -> None:
    resp = await processor.post(message("Darn it, that's darned HECK good c++", "m-1", run="r9"))
    assert resp.status_code == 200, resp.text
    (stored,) = await processor.table.read_after(0, 10)
    row = stored.row
    assert row.text == "*** it, that's darned *** good ***"
    assert (row.lane, row.color, row.speed) == style("m-1", 6)
    assert (row.sent_at, row.processed_at, row.run) == (1700.0, 5000.0, "r9")
    assert resp.json() == {"id": "m-1", "lane": row.lane, "color": row.color, "speed": row.speed}


def test_style_is_deterministic_and_in_range() -> None:
    styles = {i: style(f"id-{i}", 6) for i in range(500)}
    assert styles == {i: style(f"id-{i}", 6) for i in range(500)}
    assert {lane for lane, _, _ in styles.values()} == set(range(6))
    assert {color for _, color, _ in styles.values()} == set(PALETTE)
    assert all(6.0 <= speed <= 12.0 for _, _, speed in styles.values())


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (message(""), None, "empty message"),
        (message("   "), None, "empty message"),
        (message("x" * 201), None, "longer than 200"),
        (b"not json", None, "not JSON"),
        (b"[1, 2]", None, "JSON object"),
        (message("hi"), {"ce-id": "1", "content-type": "application/json"}, "missing source, specversion, type"),
    ],
    ids=["empty", "blank", "too-long", "not-json", "not-an-object", "not-a-cloudevent"],  # stable: ids are random
)
async def test_invalid_events_get_400_and_write_nothing(
    processor: Processor, body: bytes, headers: dict[str, str] | None, reason: str
) -> None:
    resp = await processor.post(body, headers)
    assert resp.status_code == 400
    assert reason in resp.json()["error"]
    assert await processor.table.count() == 0


async def test_200_characters_is_allowed(processor: Processor) -> None:
    assert (await processor.post(message("x" * 200))).status_code == 200


async def test_redelivery_makes_one_row(processor: Processor) -> None:
    body = message("once", "dup-1")
    first = await processor.post(body)
    again = await asyncio.gather(*(processor.post(body, ce_headers(f"partition:0/offset:{i}")) for i in range(5)))
    assert [r.status_code for r in [first, *again]] == [200] * 6
    assert await processor.table.ids() == {"dup-1"}


async def test_message_without_id_uses_the_event_id(processor: Processor) -> None:
    body = json.dumps({"text": "no id"}).encode()
    assert (await processor.post(body, ce_headers("partition:3/offset:42"))).status_code == 200
    assert (await processor.post(body, ce_headers("partition:3/offset:42"))).status_code == 200
    assert await processor.table.ids() == {"partition:3/offset:42"}


async def test_structured_mode_is_accepted(processor: Processor) -> None:
    envelope = {
        "specversion": "1.0",
        "id": "s-1",
        "source": "/test",
        "type": "dev.knative.kafka.event",
        "datacontenttype": "application/json",
        "data": {"id": "structured-1", "text": "structured"},
    }
    resp = await processor.post(json.dumps(envelope).encode(), {"content-type": "application/cloudevents+json"})
    assert resp.status_code == 200, resp.text
    assert await processor.table.ids() == {"structured-1"}


async def test_concurrent_requests_are_group_committed(processor: Processor) -> None:
    # aiohttp here: httpx's async pool, not the server, is the bottleneck with hundreds in flight.
    ids = [f"load-{i}" for i in range(500)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as session:

        async def post(message_id: str) -> int:
            async with session.post(processor.url + "/", data=message("load", message_id), headers=ce_headers()) as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(*(post(i) for i in ids))
    assert set(statuses) == {200}
    assert await processor.table.ids() == set(ids)
    # Fewer commits than rows: requests that arrived during a commit shared the next one.
    assert processor.writer.rows == 500
    assert processor.writer.batches < 500


async def test_trace_continues_from_the_http_traceparent(processor: Processor) -> None:
    resp = await processor.post(message("traced"), ce_headers(traceparent=TRACEPARENT))
    assert resp.status_code == 200
    spans = {s.name: s for s in processor.spans.get_finished_spans()}
    receiver, result = spans["receiver"], spans["result"]
    assert receiver.context is not None and receiver.parent is not None and result.parent is not None
    assert f"{receiver.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{receiver.parent.span_id:016x}" == "b7ad6b7169203331"
    assert result.parent.span_id == receiver.context.span_id


async def test_trace_falls_back_to_the_kafka_header_extension(processor: Processor) -> None:
    headers = ce_headers(**{"ce-kafkaheadertraceparent": TRACEPARENT})
    assert (await processor.post(message("traced"), headers)).status_code == 200
    (receiver,) = [s for s in processor.spans.get_finished_spans() if s.name == "receiver"]
    assert receiver.context is not None
    assert f"{receiver.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"


async def test_app_py_serves_on_port_and_drains_on_sigterm(tmp_path: Path) -> None:
    """The manifest's `command: ["python", "app.py"]`, run the way a container-class instance is."""
    from wisp.eventing.local_kafka import free_port

    port = free_port()
    db = tmp_path / "barrage.db"
    env = os.environ | {
        "PORT": str(port),
        "TABLE_URL": f"sqlite://{db}",
        "TABLE_NAME": "barrage",
        "BANNED_WORDS": "heck",
        "HOST": "127.0.0.1",
    }
    proc = await asyncio.create_subprocess_exec(sys.executable, "app.py", cwd=BARRAGE_DIR / "processor", env=env)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:  # a readiness probe, as the platform does: the process gives no other signal
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    if proc.returncode is not None or time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
            resp = await client.post(
                f"http://127.0.0.1:{port}/", content=message("oh heck", "p-1"), headers=ce_headers()
            )
            assert resp.status_code == 200, resp.text
        proc.send_signal(signal.SIGTERM)
        # uvicorn drains, then re-raises the signal it caught: death by SIGTERM after a clean shutdown.
        assert await asyncio.wait_for(proc.wait(), 30) in (0, -signal.SIGTERM)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT id, text FROM barrage").fetchall() == [("p-1", "oh ***")]
