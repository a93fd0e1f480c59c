"""The broker ingress over real HTTP (uvicorn on a free port): 400 / 404 / 413 / 202 and durability."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from wisp.eventing.broker import Brokers, LogBroker, broker_ingress_app
from wisp.eventing.broker_log import BrokerLog

from .servers import AppServer

HOST = {"Host": "broker-ingress.knative-eventing.localhost"}
CE = {"ce-id": "1", "ce-source": "/test", "ce-specversion": "1.0", "ce-type": "demo.created"}


@pytest_asyncio.fixture
async def ingress(broker_log: BrokerLog) -> AsyncIterator[str]:
    brokers = Brokers()
    brokers.put(LogBroker(broker_log, "demo", "default"))
    server = AppServer(broker_ingress_app(brokers, max_body_bytes=1000))
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


async def test_binary_event_accepted_durably_with_ttl(ingress: str, broker_log: BrokerLog) -> None:
    async with httpx.AsyncClient(base_url=ingress, headers=HOST) as client:
        resp = await client.post(
            "/demo/default", headers={**CE, "content-type": "application/json"}, content=b'{"a":1}'
        )
    assert resp.status_code == 202
    records = await broker_log.read("demo", "default", 0)
    assert len(records) == 1
    event = records[0].event
    assert event["type"] == "demo.created" and event.get_data() == {"a": 1}
    assert event["knativebrokerttl"] == "255"


async def test_structured_and_batched_keep_given_ttl(ingress: str, broker_log: BrokerLog) -> None:
    one = {"id": "s1", "source": "/s", "specversion": "1.0", "type": "t", "knativebrokerttl": 7, "data": "x"}
    async with httpx.AsyncClient(base_url=ingress, headers=HOST) as client:
        r1 = await client.post("/demo/default", content=json.dumps(one),
                               headers={"content-type": "application/cloudevents+json"})
        batch = json.dumps([{**one, "id": "b1"}, {**one, "id": "b2"}])
        r2 = await client.post("/demo/default", content=batch,
                               headers={"content-type": "application/cloudevents-batch+json"})
    assert (r1.status_code, r2.status_code) == (202, 202)
    records = await broker_log.read("demo", "default", 0)
    assert [r.event["id"] for r in records] == ["s1", "b1", "b2"]
    assert all(str(r.event["knativebrokerttl"]) == "7" for r in records)


async def test_missing_attributes_are_named(ingress: str, broker_log: BrokerLog) -> None:
    async with httpx.AsyncClient(base_url=ingress, headers=HOST) as client:
        resp = await client.post("/demo/default", headers={"ce-type": "t"}, content=b"x")
    assert resp.status_code == 400
    for name in ("id", "source", "specversion"):
        assert name in resp.text
    assert "type" not in resp.text.split(":", 1)[1]
    assert await broker_log.read("demo", "default", 0) == []


async def test_unknown_broker_404_and_too_large_413(ingress: str, broker_log: BrokerLog) -> None:
    async with httpx.AsyncClient(base_url=ingress, headers=HOST) as client:
        missing = await client.post("/demo/nope", headers=CE, content=b"x")
        other_ns = await client.post("/elsewhere/default", headers=CE, content=b"x")
        big = await client.post("/demo/default", headers=CE, content=b"x" * 1001)

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while streaming
            for _ in range(20):
                yield b"y" * 100

        streamed = await client.post("/demo/default", headers=CE, content=chunks())
        ok = await client.post("/demo/default", headers=CE, content=b"x" * 1000)
        wrong_method = await client.get("/demo/default")
    assert (missing.status_code, other_ns.status_code) == (404, 404)
    assert (big.status_code, streamed.status_code, ok.status_code) == (413, 413, 202)
    assert wrong_method.status_code == 405
    assert len(await broker_log.read("demo", "default", 0)) == 1


async def test_bad_or_exhausted_ttl_is_rejected(ingress: str) -> None:
    async with httpx.AsyncClient(base_url=ingress, headers=HOST) as client:
        bad = await client.post("/demo/default", headers={**CE, "ce-knativebrokerttl": "many"})
        spent = await client.post("/demo/default", headers={**CE, "ce-knativebrokerttl": "0"})
    assert (bad.status_code, spent.status_code) == (400, 400)
