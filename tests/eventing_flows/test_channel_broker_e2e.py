"""MTChannelBasedBroker on channels, as the docs' channel-based broker samples configure it: the Broker's
trigger channel `{broker}-kne-trigger` of the ConfigMap's template kind, Triggers filtering what flows through
it, replies going back into the broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.eventing_e2e.servers import EventReceiver
from tests.serving.harness import running_daemon
from wisp.api import kinds as k
from wisp.control.sinks import BROKER_INGRESS_HOST
from wisp.eventing.cloudevents import CloudEvent, make_event

from .helpers import ce_headers

pytestmark = pytest.mark.timeout(120)


def channel_config(name: str, template: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": {"channel-template-spec": template}}


def broker(name: str, config: str) -> dict[str, Any]:
    return {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {"eventing.knative.dev/broker.class": "MTChannelBasedBroker"}},
            "spec": {"config": {"apiVersion": "v1", "kind": "ConfigMap", "name": config}}}


def trigger(name: str, broker_name: str, type_: str, uri: str) -> dict[str, Any]:
    return {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"broker": broker_name, "filter": {"attributes": {"type": type_}}, "subscriber": {"uri": uri}}}


async def run_broker_on(tmp_path: Path, template: str, channel_kind: k.Kind, **daemon: Any) -> None:
    async def answer(event: CloudEvent, attempt: int) -> CloudEvent:
        return make_event({"specversion": "1.0", "id": f"re-{event['id']}", "source": "/greeter",
                           "type": "greeting.reply"}, {"to": event["id"]})

    greeter, replies = EventReceiver(answer), EventReceiver()
    for r in (greeter, replies):
        await r.start()
    try:
        async with running_daemon(tmp_path / "state", **daemon) as h:
            h.apply(channel_config("imc-channel", template), broker("channelled", "imc-channel"),
                    trigger("greetings", "channelled", "greeting", greeter.url),
                    trigger("answers", "channelled", "greeting.reply", replies.url))
            await h.ready("channelled", kind=k.BROKER)
            channel = h.daemon.store.get(channel_kind, "default", "channelled-kne-trigger")
            assert channel is not None and channel["metadata"]["ownerReferences"][0]["kind"] == "Broker"
            for name in ("greetings", "answers"):
                await h.ready(name, kind=k.TRIGGER)
            for event_id, type_ in (("g1", "greeting"), ("o1", "other")):
                reply = await h.request(BROKER_INGRESS_HOST, "/default/channelled", "POST",
                                        headers=ce_headers(event_id, type_), content=b"{}")
                assert reply.status_code == 202, reply.text
            await replies.wait_until(lambda: len(replies.arrivals) >= 1, timeout=60)
            assert [e["id"] for e in greeter.events] == ["g1"]  # "other" matched no trigger
            assert [e["id"] for e in replies.events] == ["re-g1"]  # the reply went back through the broker
    finally:
        for r in (greeter, replies):
            await r.stop()


async def test_a_broker_on_an_in_memory_channel(tmp_path: Path) -> None:
    await run_broker_on(tmp_path, "apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\n",
                        k.IN_MEMORY_CHANNEL)


async def test_a_broker_on_a_kafka_channel(tmp_path: Path, kafka_bootstrap: str) -> None:
    await run_broker_on(tmp_path, "apiVersion: messaging.knative.dev/v1beta1\nkind: KafkaChannel\n"
                                  "spec:\n  numPartitions: 2\n", k.KAFKA_CHANNEL, kafka=kafka_bootstrap)


async def test_a_broker_whose_config_is_missing_is_not_ready(tmp_path: Path) -> None:
    async with running_daemon(tmp_path / "state") as h:
        h.apply(broker("lost", "no-such-config"), trigger("waiting", "lost", "t", "http://127.0.0.1:9/"))
        failed = await h.failed("lost", kind=k.BROKER)
        assert "no-such-config" in str(failed["status"]["conditions"])
        await h.failed("waiting", kind=k.TRIGGER)
        h.apply(channel_config("no-such-config", "apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\n"))
        await h.ready("lost", kind=k.BROKER)
        await h.ready("waiting", kind=k.TRIGGER)
