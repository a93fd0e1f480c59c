"""The console's live feeds: one task samples the running state and follows the store's watch, and fans out
server-sent events to every open page.

Work is shared, not per page: a row, a chart point or a flow is encoded once and the same bytes go to every
client of that topic. A client that cannot keep up (its queue is full) is closed; its EventSource reconnects and
starts again from a snapshot. While no revision is active and no page is open, the task waits without a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from wisp.api import kinds as k
from wisp.api.names import IN_FLIGHT_ANNOTATION, REVISION_LABEL, SERVICE_LABEL
from wisp.console import views
from wisp.console.sampler import RequestStats, RevisionKey, Sampler, ServiceKey, service_of
from wisp.console.sources import ConsoleSources, RevisionReading
from wisp.store import StoreEvent
from wisp.types import Resource

log = logging.getLogger("wisp.console")

CLIENT_QUEUE = 64  # messages a slow page may fall behind before it is dropped (and reconnects)
MAX_CLIENTS = 100  # open pages across all feeds
KEEPALIVE_SECONDS = 15.0
EVENTING_KINDS = views.FLOW_KINDS

Topic = tuple[str, ...]  # ("services",), ("service", ns, name), ("eventing",)


class TooManyClients(Exception):
    pass


def encode(message: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n"


@dataclass(eq=False)
class Client:
    topic: Topic
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    closed: bool = False

    def send(self, data: bytes | None) -> None:
        """Queue one message; None ends the stream. A client too slow to take it (queue full) is ended too: its
        EventSource reconnects and starts again from a fresh snapshot."""
        if self.closed:
            return
        if data is not None and not self.queue.full():
            self.queue.put_nowait(data)
            return
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def stream(self, first: bytes) -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n" + first
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    data = await self.queue.get()
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if data is None:
                return
            yield data


class LiveHub:
    def __init__(self, sources: ConsoleSources, interval: float = 1.0, flow_interval: float = 2.0,
                 coalesce: float = 0.05) -> None:
        self.sources = sources
        self.stats = RequestStats()  # the ingress tells it about every request (sampler.RequestStats)
        self.sampler = Sampler()
        self._interval = interval
        self._flow_interval = flow_interval
        self._coalesce = coalesce
        self._services: dict[ServiceKey, Resource] = {}
        self._revisions: dict[RevisionKey, Resource] = {}
        self._counts: dict[ServiceKey, tuple[int, int]] = {}  # (desired, ready) at the last look
        self._dirty: dict[ServiceKey, float] = {}  # Services changed since the last push, and since when
        self._detail_dirty: set[ServiceKey] = set()
        self._flows_dirty = True
        self._clients: set[Client] = set()
        self._sent_until: dict[Topic, float] = {}
        self._last_flows = b""
        self._flows_at = 0.0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._queue: asyncio.Queue[StoreEvent] | None = None
        self._last_sample = 0.0

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        store = self.sources.store
        self._queue = store.subscribe()  # before the first list: no change falls between them
        for service in store.list(k.SERVICE):
            self._services[_key(service)] = service
        for revision in store.list(k.REVISION):
            self._revisions[_key(revision)] = revision
        self._last_sample = self.sources.clock()
        self._tasks = [asyncio.create_task(self._watch(self._queue), name="console watch"),
                       asyncio.create_task(self._run(), name="console feeds")]

    async def stop(self) -> None:
        for client in list(self._clients):
            client.send(None)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._queue is not None:
            self.sources.store.unsubscribe(self._queue)
            self._queue = None

    # -- hooks the daemon calls ---------------------------------------------------------------------------
    def revision_changed(self, key: RevisionKey) -> None:
        """The data plane changed a revision (a scale decision, an instance came or went): push it now."""
        revision = self._revisions.get(key)
        labels = (revision or {}).get("metadata", {}).get("labels") or {}
        service = (key[0], labels.get(SERVICE_LABEL) or key[1])
        self._dirty.setdefault(service, self.sources.clock())
        self._wake.set()

    # -- clients --------------------------------------------------------------------------------------------
    def subscribe(self, topic: Topic) -> tuple[Client, bytes]:
        """A new client of `topic` and the snapshot it starts from."""
        if len(self._clients) >= MAX_CLIENTS:
            raise TooManyClients(f"{MAX_CLIENTS} console feeds are open already")
        client = Client(topic)
        self._clients.add(client)
        self._wake.set()  # the loop now runs on a timer
        return client, encode(self.snapshot(topic))

    def unsubscribe(self, client: Client) -> None:
        self._clients.discard(client)

    def snapshot(self, topic: Topic) -> dict[str, Any]:
        now = self.sources.clock()
        if topic[0] == "services":
            return {"type": "snapshot", "now": now, "rows": [self._row(key, now) for key in sorted(self._services)]}
        if topic[0] == "service":
            key = (topic[1], topic[2])
            return {"type": "snapshot", "now": now, "service": self._detail(key),
                    "series": self.sampler.series(key), "decisions": self.sampler.decisions(key),
                    "pods": self._pods(key)}
        return {"type": "snapshot", "now": now, "flows": self._flows()}

    def service(self, namespace: str, name: str) -> Resource | None:
        return self._services.get((namespace, name))

    # -- the loop -------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        active = True
        while True:
            timeout = self._interval if (active or self._clients) else None
            woke = False
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that meets a set event (stop hangs).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
                woke = True
            if woke:
                # A burst of changes goes out as one message, and a storm of store events costs at most
                # 1/coalesce looks a second.
                await asyncio.sleep(self._coalesce)
            self._wake.clear()
            try:
                active = self._step()
            except Exception:  # a bad step must not end the feeds for good
                log.exception("console feed step failed")

    def _step(self) -> bool:
        """Look at the running state, sample when due, push what changed; returns whether anything is active."""
        now = self.sources.clock()
        readings = list(self.sources.revisions())
        changed: dict[ServiceKey, float] = dict(self._dirty)
        self._dirty.clear()
        sampled = now - self._last_sample >= self._interval * 0.95
        if sampled:
            points = self.sampler.sample(now, readings, self.stats.drain(), now - self._last_sample)
            self._last_sample = now
            for key in points:
                changed.setdefault(key, now)
        counts: dict[ServiceKey, tuple[int, int]] = {}
        for reading in readings:
            desired, ready = counts.get(service_of(reading), (0, 0))
            counts[service_of(reading)] = (desired + reading.desired, ready + reading.ready)
        for key in counts.keys() | self._counts.keys():
            if counts.get(key) != self._counts.get(key):
                changed.setdefault(key, now)
        self._counts = counts
        self._push_rows(changed, now)
        self._push_services(changed, sampled, now)
        if self._flows_dirty or now - self._flows_at >= self._flow_interval:  # counters move without a store event
            self._push_flows(now)
        return any(_busy(r) for r in readings)

    def _push_rows(self, changed: dict[ServiceKey, float], now: float) -> None:
        clients = [c for c in self._clients if c.topic[0] == "services"]
        if not clients or not changed:
            return
        rows = [self._row(key, changed[key]) for key in sorted(changed) if key in self._services]
        removed = [f"{ns}/{name}" for ns, name in sorted(changed) if (ns, name) not in self._services]
        if not rows and not removed:
            return
        data = encode({"type": "rows", "now": now, "rows": rows, "removed": removed})
        for client in clients:
            client.send(data)

    def _push_services(self, changed: dict[ServiceKey, float], sampled: bool, now: float) -> None:
        topics = {c.topic for c in self._clients if c.topic[0] == "service"}
        for topic in topics:
            key = (topic[1], topic[2])
            if not sampled and key not in changed and key not in self._detail_dirty:
                continue
            since = self._sent_until.get(topic, now - self._interval * 2)
            message: dict[str, Any] = {"type": "update", "now": now, "series": self.sampler.series(key, since),
                                       "decisions": self.sampler.decisions(key, since), "pods": self._pods(key),
                                       "changedAt": changed.get(key, now)}
            if key in self._detail_dirty or key not in self._services:
                message["service"] = self._detail(key)
            self._sent_until[topic] = now
            data = encode(message)
            for client in self._clients:
                if client.topic == topic:
                    client.send(data)
        self._detail_dirty.clear()
        for topic in [t for t in self._sent_until if t not in topics]:
            del self._sent_until[topic]

    def _push_flows(self, now: float) -> None:
        clients = [c for c in self._clients if c.topic[0] == "eventing"]
        self._flows_dirty = False
        self._flows_at = now
        if not clients:
            return
        flows = json.dumps(self._flows(), separators=(",", ":")).encode()
        if flows == self._last_flows:
            return
        self._last_flows = flows
        data = b'data: {"type":"flows","flows":' + flows + b"}\n\n"
        for client in clients:
            client.send(data)

    # -- the store's watch ----------------------------------------------------------------------------------
    async def _watch(self, queue: asyncio.Queue[StoreEvent]) -> None:
        while True:
            event = await queue.get()
            try:
                self._apply(event)
            except Exception:
                log.exception("console watch failed on %s", event.key)
            self._wake.set()

    def _apply(self, event: StoreEvent) -> None:
        now = self.sources.clock()
        resource = event.resource
        key = _key(resource)
        if event.kind is k.SERVICE:
            if event.type == "DELETED":
                self._services.pop(key, None)
                self.sampler.forget(key)
            else:
                self._services[key] = resource
            self._dirty.setdefault(key, now)
            self._detail_dirty.add(key)
        elif event.kind is k.REVISION:
            if event.type == "DELETED":
                self._revisions.pop(key, None)
            else:
                self._revisions[key] = resource
            labels = resource["metadata"].get("labels") or {}
            service = (key[0], labels.get(SERVICE_LABEL) or labels.get(REVISION_LABEL) or key[1])
            self._detail_dirty.add(service)
        elif event.kind in EVENTING_KINDS:
            self._flows_dirty = True

    # -- views ----------------------------------------------------------------------------------------------
    def _row(self, key: ServiceKey, changed_at: float) -> dict[str, Any]:
        row = views.service_row(self._services[key], self.sampler.last_point.get(key), changed_at)
        desired, ready = self._counts.get(key, (0, 0))
        row["desired"], row["instances"] = desired, ready
        return row

    def _detail(self, key: ServiceKey) -> dict[str, Any] | None:
        service = self._services.get(key)
        if service is None:
            return None
        return views.service_detail(service, views.revisions_of(self._revisions.values(), *key))

    def _pods(self, key: ServiceKey) -> list[dict[str, Any]]:
        out = []
        for pod in self.sources.pods(key[0]):
            meta = pod["metadata"]
            labels = meta.get("labels") or {}
            if labels.get(SERVICE_LABEL) != key[1]:
                continue
            status = pod.get("status", {})
            container = (status.get("containerStatuses") or [{}])[0]
            out.append({"name": meta["name"], "revision": labels.get(REVISION_LABEL, ""),
                        "phase": status.get("phase", ""), "ready": bool(container.get("ready")),
                        "restarts": container.get("restartCount", 0), "created": meta.get("creationTimestamp", ""),
                        "inFlight": int((meta.get("annotations") or {}).get(IN_FLIGHT_ANNOTATION, "0") or 0)})
        return sorted(out, key=lambda p: p["name"])

    def _flows(self) -> list[list[dict[str, Any]]]:
        store = self.sources.store
        objects = {kind: store.list(kind) for kind in EVENTING_KINDS}
        return views.eventing_flows(objects, self.sources.event_sources())


def _key(resource: Resource) -> tuple[str, str]:
    meta = resource["metadata"]
    return meta.get("namespace", ""), meta["name"]


def _busy(reading: RevisionReading) -> bool:
    return bool(reading.desired or reading.ready or reading.in_flight or reading.queued)
