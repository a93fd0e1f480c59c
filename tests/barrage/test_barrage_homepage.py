"""The HomePage over real HTTP: input validation, the page, stats/results, and producing to real Kafka."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer
from barrage_table import BarrageRow, ResultTable, open_table
from homepage.app import create_app
from homepage.sender import SendRequest, validate
from homepage.settings import HomeSettings
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import in_ci

from .conftest import serve

XSS = "<img src=x onerror=alert(1)>"


class NoKafka:
    """Producer factory that records being asked: an invalid Send must never reach Kafka."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, settings: HomeSettings) -> Any:
        self.calls += 1
        raise ConnectionError("no Kafka in this test")


@pytest_asyncio.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'barrage.db'}"


@pytest_asyncio.fixture
async def homepage(sqlite_url: str) -> AsyncIterator[tuple[str, NoKafka]]:
    no_kafka = NoKafka()
    app = create_app(HomeSettings(table_url=sqlite_url, lanes=5), producer_factory=no_kafka)
    async with serve(app) as url:
        yield url, no_kafka


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"message": "", "concurrency": 1, "duration": 1}, "Message is empty"),
        ({"message": "   ", "concurrency": 1, "duration": 1}, "Message is empty"),
        ({"message": "x" * 201, "concurrency": 1, "duration": 1}, "longer than 200"),
        ({"message": "hi", "concurrency": 0, "duration": 1}, "Concurrency must be a whole number from 1 to 100"),
        ({"message": "hi", "concurrency": 101, "duration": 1}, "Concurrency"),
        ({"message": "hi", "concurrency": "ten", "duration": 1}, "Concurrency"),
        ({"message": "hi", "concurrency": 1.5, "duration": 1}, "Concurrency"),
        ({"message": "hi", "concurrency": 1, "duration": 0}, "Duration must be a whole number from 1 to 60"),
        ({"message": "hi", "concurrency": 1, "duration": 61}, "Duration"),
        ({"message": "hi", "concurrency": 1}, "Duration"),
        ({"message": "hi", "concurrency": 1, "duration": 1, "rate": 0}, "rate"),
        ("not an object", "JSON object"),
    ],
)
async def test_invalid_send_is_refused_and_sends_nothing(homepage: tuple[str, NoKafka], body: Any, reason: str) -> None:
    url, no_kafka = homepage
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.post(url + "/api/send", json=body)
    assert resp.status_code == 400
    assert reason in resp.json()["error"]
    assert no_kafka.calls == 0


async def test_valid_send_without_kafka_is_503(homepage: tuple[str, NoKafka]) -> None:
    url, no_kafka = homepage
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.post(url + "/api/send", json={"message": "hi", "concurrency": 1, "duration": 1})
    assert resp.status_code == 503
    assert "Kafka is unavailable" in resp.json()["error"]
    assert no_kafka.calls == 1


def test_validate_accepts_the_bounds_and_form_strings() -> None:
    assert validate({"message": "x" * 200, "concurrency": 100, "duration": 60}, 20.0) == SendRequest(
        "x" * 200, 100, 60, 20.0
    )
    assert validate({"message": "hi", "concurrency": "1", "duration": "60", "rate": "5"}, 20.0) == SendRequest(
        "hi", 1, 60, 5.0
    )


async def test_page_has_the_form_and_no_external_assets(homepage: tuple[str, NoKafka]) -> None:
    url, _ = homepage
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.get(url + "/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    page = resp.text
    for name in ("Message", "Concurrency", "Duration"):
        assert re.search(rf'<label for="{name.lower()}">{name}</label>', page)
        assert f'id="{name.lower()}"' in page
    assert re.search(r"<button[^>]*>Send</button>", page)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no CDN, nothing remote
    assert "<link" not in page and "@import" not in page
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page  # user text only via textContent
    assert "--lanes: 5;" in page


async def test_results_and_stats_read_the_table(homepage: tuple[str, NoKafka], sqlite_url: str) -> None:
    url, _ = homepage
    table: ResultTable = open_table(sqlite_url, "barrage")
    await table.start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            start = (await client.get(url + "/api/results")).json()
            assert start == {"rows": [], "next": 0}
            rows = [BarrageRow(f"id{i}", XSS, i, "#ffb300", 8.0, 1.0, 2.0, run="r1") for i in range(3)]
            await table.insert_many([*rows, BarrageRow("other", "x", 0, "#fff", 8.0, 1.0, 2.0, run="r2")])
            page = (await client.get(url + "/api/results", params={"after": 0, "limit": 2})).json()
            assert [r["id"] for r in page["rows"]] == ["id0", "id1"]
            assert page["rows"][0]["text"] == XSS  # stored and served verbatim; the page inserts it as text
            rest = (await client.get(url + "/api/results", params={"after": page["next"]})).json()
            assert [r["id"] for r in rest["rows"]] == ["id2", "other"]
            assert (await client.get(url + "/api/results", params={"after": "x"})).status_code == 400
            stats = (await client.get(url + "/api/stats", params={"run": "r1"})).json()
            assert stats == {"run": "r1", "processed": 3}  # not this instance's Send: no sent count
            assert (await client.get(url + "/api/stats")).json() == {"processed": 4, "cursor": rest["next"]}
    finally:
        await table.stop()


@pytest.fixture
def bootstrap(request: pytest.FixtureRequest) -> str:
    try:
        value: str = request.getfixturevalue("kafka_bootstrap")
    except pytest.FixtureLookupError:
        if in_ci():
            raise
        pytest.skip("the kafka_bootstrap fixture (tests/conftest.py) is not in this tree yet")
    return value


async def test_send_produces_each_copy_to_kafka(bootstrap: str, sqlite_url: str) -> None:
    from wisp.eventing.local_kafka import ensure_topics

    topic = f"barrage-info-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], partitions=2)
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    settings = HomeSettings(kafka_server=bootstrap, kafka_topic=topic, table_url=sqlite_url)
    app = create_app(settings, tracer_provider=provider)
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with serve(app) as url, httpx.AsyncClient(timeout=60) as client:
        body = {"message": XSS, "concurrency": 3, "duration": 1, "rate": 10}
        async with client.stream("POST", url + "/api/send", json=body, headers={"traceparent": parent}) as resp:
            assert resp.status_code == 200
            lines = [json.loads(line) async for line in resp.aiter_lines() if line.strip()]
        final = lines[-1]
        assert final["done"] is True and final["failed"] == 0
        assert 3 <= final["sent"] <= 30  # 3 senders × 10/s × 1 s, minus what the last tick could not fit
        stats = (await client.get(url + "/api/stats", params={"run": final["run"]})).json()
        assert stats["sent"] == final["sent"] and stats["done"] is True

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        records: list[Any] = []
        while len(records) < final["sent"]:
            batch = await consumer.getmany(timeout_ms=10_000)
            if not batch:
                break
            records += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    assert len(records) == final["sent"]
    values = [json.loads(r.value) for r in records]
    assert {v["text"] for v in values} == {XSS}
    assert {v["run"] for v in values} == {final["run"]}
    assert len({v["id"] for v in values}) == len(values)  # each copy its own id
    assert all(isinstance(v["sent_at"], float) for v in values)
    traceparents = {dict(r.headers)["traceparent"].decode() for r in records}
    assert len(traceparents) == 3  # one `sender` span per concurrent sender
    assert all(tp.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") for tp in traceparents)
    by_name: dict[str, list[Any]] = {}
    for span in spans.get_finished_spans():
        by_name.setdefault(span.name, []).append(span)
    (send_span,) = by_name["barrage-sender"]
    assert len(by_name["sender"]) == 3
    assert all(s.parent.span_id == send_span.context.span_id for s in by_name["sender"])
    assert f"{send_span.parent.span_id:016x}" == "00f067aa0ba902b7"


async def test_main_py_exposes_an_asgi_handle_without_connecting(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaded the way a function runtime loads `main:handle`: by file, before any loop or fork."""
    import importlib.util

    from starlette.applications import Starlette

    from .conftest import BARRAGE_DIR

    monkeypatch.setenv("TABLE_URL", sqlite_url)
    monkeypatch.setenv("KAFKA_SERVER", ",,")  # the seed's placeholder: falls back to the local broker
    spec = importlib.util.spec_from_file_location("barrage_homepage_main", BARRAGE_DIR / "homepage" / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.handle, Starlette)
    async with serve(module.handle) as url, httpx.AsyncClient(timeout=30) as client:
        assert "Barrage" in (await client.get(url + "/")).text
        assert (await client.get(url + "/api/stats")).json() == {"processed": 0, "cursor": 0}
