"""Shared pieces of the eventing end-to-end tests: topics and producers on the session's Tansu, manifests,
function code, and a `wisp up` daemon run as a real subprocess (for kill -9)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from wisp.eventing.local_kafka import ensure_topics
from wisp.serving.revision_runner import free_port
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


class DaemonProcess:
    """`wisp up FILE` as a subprocess on fixed free ports, so a restart reuses the same ports and state dir."""

    def __init__(self, manifest: Path, state_dir: Path, kafka: str, log_path: Path) -> None:
        self.manifest = manifest
        self.state_dir = state_dir
        self.kafka = kafka
        self.log_path = log_path
        self.port = free_port()
        self.api_port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def ingress(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    async def start(self, timeout: float = 90.0) -> None:
        """Start and return once it printed that it serves (every Service in the manifest is Ready)."""
        log = self.log_path.open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                str(WISP), "up", str(self.manifest), "--port", str(self.port), "--api-port", str(self.api_port),
                "--state-dir", str(self.state_dir), "--kafka", self.kafka,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log,
            )
        finally:
            log.close()
        assert self.proc.stdout is not None
        seen: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise AssertionError(f"wisp up exited ({await self.proc.wait()}): {seen}; "
                                         f"log: {self.log_path.read_text()[-3000:]}")
                seen.append(line.rstrip())
                if line.startswith("wisp is serving"):
                    break
        self._drain = asyncio.create_task(self._drain_stdout())

    async def _drain_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while await self.proc.stdout.readline():
            pass

    async def kill(self) -> None:
        """SIGKILL: no drain, no commit, nothing flushed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        await self._finish()

    async def stop(self, timeout: float = 60.0) -> int:
        if self.proc is None or self.proc.returncode is not None:
            await self._finish()
            return 0 if self.proc is None else self.proc.returncode or 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        await self._finish()
        return code

    async def _finish(self) -> None:
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain, 5)
            self._drain = None
