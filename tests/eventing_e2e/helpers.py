"""Shared pieces of the eventing end-to-end tests: topics and producers on the session's Tansu, manifests,
function code, and a `wisp up` daemon run as a real subprocess (for kill -9)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from wisp.eventing.local_kafka import ensure_topics
from wisp.types import Resource

WISP = Path(sys.executable).parent / "wisp"

# A cloudevent function that appends each event (attributes + data) as one JSON line to $EVENTS_FILE.
RECORDING_FUNCTION = """
import json
import os

import wisp


@wisp.cloudevent
def handle(event):
    data = event.data
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    line = json.dumps({"attributes": dict(event.get_attributes()), "data": data}, default=str)
    with open(os.environ["EVENTS_FILE"], "a") as out:
        out.write(line + "\\n")
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def new_topic(bootstrap: str, partitions: int = 1) -> str:
    topic = unique("e2e")
    await ensure_topics(bootstrap, [topic], partitions=partitions)
    return topic


async def produce(bootstrap: str, topic: str, records: Iterable[dict[str, Any]]) -> None:
    """Send every record (kwargs of `AIOKafkaProducer.send`) and wait until all are acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, **r) for r in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def kafka_source(name: str, bootstrap: str, topic: str, sink: dict[str, Any], *,
                 delivery: dict[str, Any] | None = None, ordering: str | None = None,
                 initial_offset: str = "earliest") -> Resource:
    """A sources.knative.dev/v1beta1 KafkaSource."""
    spec: dict[str, Any] = {"consumerGroup": unique(name), "bootstrapServers": [bootstrap], "topics": [topic],
                            "initialOffset": initial_offset, "sink": sink}
    if delivery is not None:
        spec["delivery"] = delivery
    if ordering is not None:
        spec["ordering"] = ordering
    return {"apiVersion": "sources.knative.dev/v1beta1", "kind": "KafkaSource",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def broker(name: str = "default") -> Resource:
    return {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
            "metadata": {"name": name, "namespace": "default"}, "spec": {}}


def trigger(name: str, subscriber: dict[str, Any], *, broker_name: str = "default",
            attributes: dict[str, str] | None = None, delivery: dict[str, Any] | None = None) -> Resource:
    spec: dict[str, Any] = {"broker": broker_name, "subscriber": subscriber}
    if attributes is not None:
        spec["filter"] = {"attributes": attributes}
    if delivery is not None:
        spec["delivery"] = delivery
    return {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def to_yaml_stream(resources: Sequence[Resource]) -> str:
    """Manifests as a multi-document file (JSON is YAML)."""
    return "\n---\n".join(json.dumps(r) for r in resources) + "\n"


# -- processes ----------------------------------------------------------------------------------------------


def processes_in(directory: Path) -> set[int]:
    """Pids of live processes whose working directory is `directory` or below (function templates and
    their forked instances run in the function's code directory)."""
    found: set[int] = set()
    root = str(directory.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (cwd == root or cwd.startswith(root + "/")):
            found.add(int(entry.name))
    return found


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def wait_gone(pids: Iterable[int], timeout: float) -> set[int]:
    """Wait (on pidfds: woken by each exit, no polling) until these processes are gone; the survivors."""
    loop = asyncio.get_running_loop()
    waits: dict[int, asyncio.Future[None]] = {}
    fds: list[int] = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        fds.append(fd)
        fut: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _resolve, fut)
        waits[pid] = fut
    try:
        if waits:
            await asyncio.wait(waits.values(), timeout=timeout)
        return {pid for pid, fut in waits.items() if not fut.done()}
    finally:
        for fd in fds:
            loop.remove_reader(fd)
            os.close(fd)

