"""KafkaChannel through a real daemon on the session's Tansu: events go to the channel's topic, every
subscription (a consumer group of its own) gets each once, replies go on, and a Sequence runs on KafkaChannels."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.eventing_e2e.helpers import to_yaml_stream
from tests.eventing_e2e.servers import EventReceiver
from tests.serving.harness import running_daemon
from tests.wisp_process import WispProcess
from wisp.api import kinds as k
from wisp.control.conditions import get_condition
from wisp.eventing.cloudevents import CloudEvent, make_event

from .helpers import ce_headers, host_of, subscription

pytestmark = pytest.mark.timeout(120)
KC = {"apiVersion": "messaging.knative.dev/v1beta1", "kind": "KafkaChannel"}


def kafka_channel(name: str, partitions: int = 2) -> dict[str, Any]:
    return {**KC, "metadata": {"name": name, "namespace": "default"}, "spec": {"numPartitions": partitions}}


async def test_every_subscriber_gets_every_event_once(tmp_path: Path, kafka_bootstrap: str) -> None:
    receivers = [EventReceiver() for _ in range(2)]
    for r in receivers:
        await r.start()
    try:
        async with running_daemon(tmp_path / "state", kafka=kafka_bootstrap) as h:
            h.apply(kafka_channel("orders"), *(subscription(f"s{i}", "orders", {"uri": r.url},
                                                            channel_kind="KafkaChannel")
                                               for i, r in enumerate(receivers)))
            channel = await h.wait_for(k.KAFKA_CHANNEL, "default", "orders",
                                       lambda c: len(c.get("status", {}).get("subscribers", [])) == 2)
            assert channel["status"]["address"]["url"] == "http://orders-kn-channel.default.svc.cluster.local"
            for i in range(2):
                await h.ready(f"s{i}", kind=k.SUBSCRIPTION)
            limit = asyncio.Semaphore(20)

            async def send(i: int) -> int:
                async with limit:
                    reply = await h.request(host_of("orders"), "/", "POST", headers=ce_headers(f"k-{i}"),
                                            content=b'{"n": %d}' % i)
                    return reply.status_code

            assert set(await asyncio.gather(*(send(i) for i in range(200)))) == {202}
            wanted = {f"k-{i}" for i in range(200)}
            for r in receivers:
                await r.wait_until(lambda r=r: set(r.attempts) == wanted, what="every event")  # type: ignore[misc]
                assert max(r.attempts.values()) == 1
    finally:
        for r in receivers:
            await r.stop()


async def test_a_sequence_on_kafka_channels(tmp_path: Path, kafka_bootstrap: str) -> None:
    def appender(letter: str) -> Any:
        async def answer(event: CloudEvent, attempt: int) -> CloudEvent:
            return make_event({"specversion": "1.0", "id": f"{event['id']}{letter}", "source": "/a",
                               "type": "appended"}, {"text": (event.data or {}).get("text", "") + letter})
        return answer

    steps = [EventReceiver(appender(c)) for c in "ab"]
    result = EventReceiver()
    for r in (*steps, result):
        await r.start()
    try:
        async with running_daemon(tmp_path / "state", kafka=kafka_bootstrap) as h:
            h.apply({"apiVersion": "flows.knative.dev/v1", "kind": "Sequence",
                     "metadata": {"name": "durable", "namespace": "default"},
                     "spec": {"channelTemplate": {**KC, "spec": {"numPartitions": 1}},
                              "steps": [{"uri": s.url} for s in steps], "reply": {"uri": result.url}}})
            await h.ready("durable", kind=k.SEQUENCE)
            assert h.daemon.store.get(k.KAFKA_CHANNEL, "default", "durable-kn-sequence-1") is not None
            reply = await h.request(host_of("durable-kn-sequence-0"), "/", "POST", headers=ce_headers("q"),
                                    content=b'{"text": ""}')
            assert reply.status_code == 202
            await result.wait_until(lambda: len(result.arrivals) >= 1, timeout=60)
            assert result.events[0].data == {"text": "ab"}
    finally:
        for r in (*steps, result):
            await r.stop()


async def test_kafka_channel_keeps_every_accepted_event_across_kill_9(kafka_bootstrap: str, tmp_path: Path) -> None:
    released = asyncio.Event()

    async def held(event: CloudEvent, attempt: int) -> int:
        await released.wait()  # nothing is delivered before the kill: every event is only in the topic
        return 200

    subscriber = EventReceiver(held)
    await subscriber.start()
    manifest = tmp_path / "channel.yaml"
    manifest.write_text(to_yaml_stream([kafka_channel("durable", 2),
                                        subscription("all", "durable", {"uri": subscriber.url},
                                                     channel_kind="KafkaChannel")]))
    daemon = WispProcess(manifest, tmp_path / "state", kafka_bootstrap, tmp_path / "daemon.log")
    accepted: set[str] = set()
    try:
        await daemon.start()
        async with httpx.AsyncClient(timeout=10) as client:
            path = f"{daemon.api}/apis/messaging.knative.dev/v1/namespaces/default/subscriptions/all"
            async with asyncio.timeout(60):
                while (get_condition((await client.get(path)).json(), "Ready") or {}).get("status") != "True":
                    await asyncio.sleep(0.1)  # another process: its API is all there is to watch

            async def post(event_id: str) -> None:
                headers = {"Host": host_of("durable"), **ce_headers(event_id)}
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.post(f"{daemon.ingress}/", headers=headers, content=b'{"x": 1}')
                    if response.status_code == 202:
                        accepted.add(event_id)

            await asyncio.gather(*(post(f"e-{i}") for i in range(100)))
            await daemon.kill()
        assert len(accepted) == 100 and not subscriber.delivered
        released.set()
        await daemon.start()
        await subscriber.wait_until(lambda: accepted <= subscriber.delivered, 60, "every accepted event")
    finally:
        released.set()
        await daemon.stop()
        await subscriber.stop()
