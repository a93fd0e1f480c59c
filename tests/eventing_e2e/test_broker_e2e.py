"""Broker and Triggers through the daemon's ingress: filters, and replies routed onward to a second trigger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.serving.harness import running_daemon
from wisp.api import kinds as k
from wisp.control.sinks import BROKER_INGRESS_HOST
from wisp.eventing.cloudevents import CloudEvent, make_event

from .helpers import broker, trigger
from .servers import EventReceiver

pytestmark = pytest.mark.timeout(120)


def ce_headers(event_id: str, type_: str) -> dict[str, str]:
    return {"ce-specversion": "1.0", "ce-id": event_id, "ce-source": "/e2e/test", "ce-type": type_,
            "content-type": "application/json"}


async def test_trigger_filter_and_reply_chain(tmp_path: Path) -> None:
    async def greet(event: CloudEvent, attempt: int) -> CloudEvent:
        return make_event({"specversion": "1.0", "id": f"reply-{event['id']}", "source": "/e2e/greeter",
                           "type": "greeting.reply"}, {"to": event["id"]})

    greeter, audit = EventReceiver(greet), EventReceiver()
    await greeter.start()
    await audit.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply(broker(), trigger("greetings", {"uri": greeter.url}, attributes={"type": "greeting"}),
                    trigger("replies", {"uri": audit.url}, attributes={"type": "greeting.reply", "source": ""}))
            for name in ("greetings", "replies"):
                await h.ready(name, kind=k.TRIGGER)
            await h.ready("default", kind=k.BROKER)

            for event_id, type_ in (("o-1", "other"), ("g-1", "greeting"), ("o-2", "other"), ("g-2", "greeting")):
                response = await h.request(BROKER_INGRESS_HOST, "/default/default", "POST",
                                           headers=ce_headers(event_id, type_), content=b'{"hello": 1}')
                assert response.status_code == 202, response.text
            missing = await h.request(BROKER_INGRESS_HOST, "/default/nope", "POST",
                                      headers=ce_headers("x", "greeting"), content=b"{}")
            assert missing.status_code == 404

            await audit.wait_for(2)
            assert sorted(e["id"] for e in greeter.events) == ["g-1", "g-2"]  # the filter held "other" back
            replies = {e["id"]: e for e in audit.events}
            assert sorted(replies) == ["reply-g-1", "reply-g-2"]
            reply = replies["reply-g-1"]
            assert reply["type"] == "greeting.reply" and reply["source"] == "/e2e/greeter"
            # As Knative's filter does, the broker's hop counter stays inside the broker.
            assert "knativebrokerttl" not in greeter.events[0].get_attributes()
            assert all(a.event["type"] == "greeting.reply" for a in audit.arrivals)
    finally:
        await greeter.stop()
        await audit.stop()


async def test_trigger_deliveries_are_counted_in_metrics(tmp_path: Path) -> None:
    # Metrics cover every dispatcher, not only KafkaSources.
    async with running_daemon(tmp_path / "state") as h:
        h.apply(
            {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "default"}},
            {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "nowhere"},
             "spec": {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9/"}}},
        )
        await h.ready("nowhere", kind=k.TRIGGER)
        reply = await h.client.post(
            f"{h.ingress}/default/default", content=b"{}",
            headers={"Host": BROKER_INGRESS_HOST, "ce-id": "m1", "ce-source": "test", "ce-type": "t",
                     "ce-specversion": "1.0", "content-type": "application/json"})
        assert reply.status_code == 202

        async def counted() -> bool:
            text = (await h.client.get(f"{h.api}/metrics")).text
            return 'wisp_events_dropped_total{name="nowhere",namespace="default",source_kind="Trigger"} 1.0' in text

        deadline = asyncio.get_running_loop().time() + 20
        while not await counted():  # the metric is read from the dispatcher; no event signals it
            assert asyncio.get_running_loop().time() < deadline, (await h.client.get(f"{h.api}/metrics")).text
            await asyncio.sleep(0.2)
