"""The live hub over a real (in-memory) store: snapshots, pushes on a data-plane change, slow pages dropped."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest_asyncio

from wisp.api import kinds as k
from wisp.console.live import CLIENT_QUEUE, Client, LiveHub
from wisp.console.sources import ConsoleSources, RevisionReading
from wisp.control.admission import apply_manifests
from wisp.store import Store

SERVICE = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
           "metadata": {"name": "hello", "namespace": "default", "annotations": {"note": "<img src=x>"}},
           "spec": {"template": {"spec": {"containers": [{"image": "ghcr.io/example/hello:1"}]}}}}


class Running:
    """Stands in for the data plane's counts: the test sets what a revision has now."""

    def __init__(self) -> None:
        self.readings: list[RevisionReading] = []

    def __call__(self) -> list[RevisionReading]:
        return list(self.readings)


@pytest_asyncio.fixture
async def hub() -> AsyncIterator[tuple[LiveHub, Store, Running]]:
    store = Store(None, time.time)
    store.open()
    running = Running()
    hub = LiveHub(ConsoleSources(store, running, lambda ns: [], list, time.time), interval=0.2, coalesce=0.01)
    await hub.start()
    try:
        yield hub, store, running
    finally:
        await hub.stop()
        store.close()


def decode(data: bytes | None) -> dict:
    assert data is not None and data.startswith(b"data: ")
    return json.loads(data[len(b"data: "):])


async def next_rows(client: Client, name: str) -> dict:
    while True:
        message = decode(await asyncio.wait_for(client.queue.get(), 5))
        rows = [r for r in message.get("rows", []) if r["name"] == name]
        if rows:
            return rows[0]


async def test_a_new_service_and_a_scale_change_reach_an_open_page(hub: tuple[LiveHub, Store, Running]) -> None:
    live, store, running = hub
    client, first = live.subscribe(("services",))
    assert decode(first.removeprefix(b"retry: 2000\n\n"))["rows"] == []
    apply_manifests([SERVICE], store)
    row = await next_rows(client, "hello")
    assert row["key"] == "default/hello" and row["instances"] == 0
    running.readings = [RevisionReading("default", "hello-00001", "hello", 3, 1, 2, 0)]
    changed_at = time.time()
    live.revision_changed(("default", "hello-00001"))
    row = await next_rows(client, "hello")
    assert (row["desired"], row["instances"]) == (3, 1)
    assert row["changedAt"] >= changed_at - 0.01
    store.delete_many([(k.SERVICE, "default", "hello")])
    while True:
        message = decode(await asyncio.wait_for(client.queue.get(), 5))
        if message.get("removed") == ["default/hello"]:
            break


async def test_a_service_page_gets_its_detail_series_and_pods(hub: tuple[LiveHub, Store, Running]) -> None:
    live, store, running = hub
    rows, _ = live.subscribe(("services",))
    apply_manifests([SERVICE], store)
    await next_rows(rows, "hello")  # the hub has read the change
    assert live.service("default", "hello") is not None
    running.readings = [RevisionReading("default", "hello-00001", "hello", 2, 2, 0, 0)]
    client, first = live.subscribe(("service", "default", "hello"))
    snapshot = decode(first.removeprefix(b"retry: 2000\n\n"))
    assert snapshot["service"]["annotations"]["note"] == "<img src=x>"  # text; the page shows it as text
    while True:
        message = decode(await asyncio.wait_for(client.queue.get(), 5))
        if message["series"]["t"]:
            break
    assert message["series"]["desired"][-1] == 2 and message["series"]["ready"][-1] == 2


async def test_a_page_that_cannot_keep_up_is_ended_and_reconnects(hub: tuple[LiveHub, Store, Running]) -> None:
    live, _, _ = hub
    client, first = live.subscribe(("services",))
    for _ in range(CLIENT_QUEUE + 5):
        client.send(b"data: {}\n\n")
    assert client.closed and client.queue.qsize() == 1
    chunks = [chunk async for chunk in client.stream(first)]  # ends at the None
    assert chunks == [b"retry: 2000\n\n" + first]
    live.unsubscribe(client)
