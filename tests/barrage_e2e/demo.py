"""The barrage demo under a real `wisp up` subprocess: the test's copy of the manifests, the daemon, its APIs.

The copy differs from examples/barrage only where a test must: the Kafka bootstrap (the session's Tansu),
a topic and consumer group of its own, the result table, and optional knobs (autoscaling window, send rate,
KafkaSource ordering). Images point at the real app directories, so the code under test is the demo's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.wisp_process import WispProcess
from wisp.eventing.local_kafka import ensure_topics

REPO = Path(__file__).resolve().parents[2]
BARRAGE_DIR = REPO / "examples" / "barrage"
WISP = Path(sys.executable).parent / "wisp"
PROCESSOR = "test-barrage-process"
HOMEPAGE = "demo-barrage"
HOMEPAGE_HOST = "barrage.demo.localhost"
PARTITIONS = 4
SCALE_ANNOTATION_WINDOW = "autoscaling.knative.dev/window"

if str(BARRAGE_DIR) not in sys.path:  # the demo's table package, to read what the processor stored
    sys.path.insert(0, str(BARRAGE_DIR))


@dataclass(frozen=True)
class DemoConfig:
    kafka: str
    table_url: str
    table_name: str = field(default_factory=lambda: f"barrage_e2e_{uuid.uuid4().hex[:10]}")
    topic: str = field(default_factory=lambda: f"barrage-e2e-{uuid.uuid4().hex[:10]}")
    group: str = field(default_factory=lambda: f"barrage-e2e-{uuid.uuid4().hex[:10]}")
    window: str | None = None  # the processor's autoscaling.knative.dev/window
    send_rate: float | None = None  # the HomePage's SEND_RATE (messages/s per sender)
    ordering: str | None = None  # the KafkaSource's spec.ordering
    grace_period: str | None = None  # config-autoscaler scale-to-zero-grace-period
    container_concurrency: int | None = None  # the processor's containerConcurrency
    # The seed says `latest`, but wisp's KafkaSource resolves `latest` only when its consumer group first gets
    # its partitions (~5 s after apply, after `wisp up` reports ready): a Send in between would be skipped.
    # The topic is new per test, so `earliest` means exactly "everything produced since the source exists".
    initial_offset: str = "earliest"


def _set_env(container: dict[str, Any], name: str, value: str) -> None:
    env = container.setdefault("env", [])
    for entry in env:
        if entry.get("name") == name:
            entry.pop("valueFrom", None)
            entry["value"] = value
            return
    env.append({"name": name, "value": value})


def demo_resources(cfg: DemoConfig) -> dict[str, dict[str, Any]]:
    """The demo's manifests by file name, rewritten for `cfg`."""
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(BARRAGE_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        kind = doc["kind"]
        if kind == "Service":
            template = doc["spec"]["template"]
            for container in template["spec"]["containers"]:
                image = container["image"]
                if image.startswith("./"):
                    container["image"] = str(BARRAGE_DIR / image[2:])
                _set_env(container, "TABLE_URL", cfg.table_url)
                _set_env(container, "TABLE_NAME", cfg.table_name)
                if doc["metadata"]["name"] == HOMEPAGE:
                    _set_env(container, "KAFKA_SERVER", cfg.kafka)
                    _set_env(container, "KAFKA_TOPIC", cfg.topic)
                    if cfg.send_rate is not None:
                        _set_env(container, "SEND_RATE", str(cfg.send_rate))
            if doc["metadata"]["name"] == PROCESSOR and cfg.window is not None:
                template["metadata"]["annotations"][SCALE_ANNOTATION_WINDOW] = cfg.window
            if doc["metadata"]["name"] == PROCESSOR and cfg.container_concurrency is not None:
                template["spec"]["containerConcurrency"] = cfg.container_concurrency
        elif kind == "KafkaSource":
            doc["spec"]["bootstrapServers"] = cfg.kafka
            doc["spec"]["topics"] = cfg.topic
            doc["spec"]["consumerGroup"] = cfg.group
            doc["spec"]["initialOffset"] = cfg.initial_offset
            if cfg.ordering is not None:
                doc["spec"]["ordering"] = cfg.ordering
        docs[path.name] = doc
    if cfg.grace_period is not None:
        docs["01-config-autoscaler.yaml"] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
            "data": {"scale-to-zero-grace-period": cfg.grace_period},
        }
    return docs


def write_manifests(directory: Path, cfg: DemoConfig) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, doc in demo_resources(cfg).items():
        (directory / name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return directory


class Wisp(WispProcess):
    """The demo's `wisp up`, with its page and control API at hand."""

    @property
    def page_url(self) -> str:
        return f"http://{HOMEPAGE_HOST}:{self.port}/"

    # -- control API -----------------------------------------------------------------------------
    async def pods(self, client: httpx.AsyncClient, service: str = PROCESSOR) -> list[dict[str, Any]]:
        resp = await client.get(f"{self.api}/api/v1/namespaces/default/pods")
        resp.raise_for_status()
        return [p for p in resp.json()["items"]
                if p["metadata"]["labels"].get("serving.knative.dev/service") == service]

    async def ready_pods(self, client: httpx.AsyncClient, service: str = PROCESSOR) -> int:
        return sum(1 for p in await self.pods(client, service)
                   if p["status"]["containerStatuses"][0].get("ready"))

    async def apply(self, client: httpx.AsyncClient, *resources: dict[str, Any]) -> None:
        resp = await client.post(f"{self.api}/apply", json={"items": list(resources)})
        assert resp.status_code == 200, resp.text

    async def delete(self, client: httpx.AsyncClient, *resources: dict[str, Any]) -> None:
        resp = await client.post(f"{self.api}/delete", json={"items": list(resources)})
        assert resp.status_code == 200, resp.text

    async def get(self, client: httpx.AsyncClient, path: str) -> dict[str, Any]:
        resp = await client.get(f"{self.api}{path}")
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    # -- the HomePage ----------------------------------------------------------------------------
    async def send(self, client: httpx.AsyncClient, message: str, concurrency: int, duration: int,
                   rate: float | None = None) -> dict[str, Any]:
        """POST /api/send and read its progress stream to the end; returns the last progress line."""
        body: dict[str, Any] = {"message": message, "concurrency": concurrency, "duration": duration}
        if rate is not None:
            body["rate"] = rate
        last: dict[str, Any] = {}
        async with client.stream("POST", f"{self.ingress}/api/send", json=body, headers={"Host": HOMEPAGE_HOST},
                                 timeout=duration + 60) as resp:
            if resp.status_code != 200:
                await resp.aread()
                raise AssertionError(f"send answered {resp.status_code}: {resp.text}")
            async for line in resp.aiter_lines():
                if line.strip():
                    last = json.loads(line)
        assert last.get("done"), f"the Send's stream ended before it was done: {last}"
        return last


@contextlib.asynccontextmanager
async def running_demo(tmp_path: Path, cfg: DemoConfig) -> AsyncIterator[Wisp]:
    """Topic created first (a given --kafka is not managed by wisp), then `wisp up` on the test's copy."""
    await ensure_topics(cfg.kafka, [cfg.topic], partitions=PARTITIONS)
    manifests = write_manifests(tmp_path / "manifests", cfg)
    wisp = Wisp(manifests, tmp_path / "state", cfg.kafka, tmp_path / "wisp.log")
    try:
        await wisp.start()
        yield wisp
    finally:
        await wisp.stop()


async def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll a condition of another process (the daemon's pods, the table) that offers no event to wait on."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


async def produced_ids(bootstrap: str, topic: str, run: str | None = None) -> list[str]:
    """Every message id on `topic` (of one Send when `run` is given), read from the start to the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        ids: list[str] = []
        remaining = {tp for tp in partitions if end[tp] > 0}
        async with asyncio.timeout(60):
            while remaining:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for tp, records in batches.items():
                    for record in records:
                        data = json.loads(record.value)
                        if run is None or data.get("run") == run:
                            ids.append(data["id"])
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
        return ids
    finally:
        await consumer.stop()
