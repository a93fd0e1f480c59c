"""Sequence and Parallel through a real daemon: the generated channels and subscriptions (names, owners,
wiring) are Knative's, and events flow through them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.eventing_e2e.servers import EventReceiver
from tests.serving.harness import running_daemon, service, write_function
from wisp.api import kinds as k
from wisp.eventing.cloudevents import CloudEvent, make_event

from .helpers import IMC, ce_headers, host_of

pytestmark = pytest.mark.timeout(120)

# A step as a wisp function: appends its letter to the payload's text and replies with the result.
APPEND_FUNCTION = """
import os

import wisp
from cloudevents.v1.http import CloudEvent


@wisp.cloudevent
def handle(event):
    text = (event.data or {}).get("text", "")
    return CloudEvent({"type": "appended", "source": "/append/" + os.environ["LETTER"]},
                      {"text": text + os.environ["LETTER"]})
"""


def appender(letter: str) -> EventReceiverAnswer:
    async def answer(event: CloudEvent, attempt: int) -> CloudEvent:
        return make_event({"specversion": "1.0", "id": f"{event['id']}{letter}", "source": f"/append/{letter}",
                           "type": "appended"}, {"text": (event.data or {}).get("text", "") + letter})
    return answer


EventReceiverAnswer = Any


def sequence(name: str, steps: list[dict[str, Any]], reply: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"channelTemplate": dict(IMC), "steps": steps}
    if reply is not None:
        spec["reply"] = reply
    return {"apiVersion": "flows.knative.dev/v1", "kind": "Sequence",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def test_three_step_sequence_appends_abc(tmp_path: Path) -> None:
    b_step, c_step, result = EventReceiver(appender("b")), EventReceiver(appender("c")), EventReceiver()
    for r in (b_step, c_step, result):
        await r.start()
    code = write_function(tmp_path / "append", APPEND_FUNCTION)
    try:
        async with running_daemon(tmp_path / "state") as h:
            step_a = service("step-a", code, container={"env": [{"name": "LETTER", "value": "a"}]})
            h.apply(step_a, sequence("abc", [
                {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "step-a"}},
                {"uri": b_step.url}, {"uri": c_step.url, "delivery": {"retry": 2, "backoffDelay": "PT0.1S"}},
            ], {"uri": result.url}))
            await h.ready("step-a")
            seq = await h.ready("abc", kind=k.SEQUENCE)
            assert seq["status"]["address"]["url"] == "http://abc-kn-sequence-0-kn-channel.default.svc.cluster.local"
            assert [c["channel"]["name"] for c in seq["status"]["channelStatuses"]] == \
                ["abc-kn-sequence-0", "abc-kn-sequence-1", "abc-kn-sequence-2"]
            assert [s["subscription"]["name"] for s in seq["status"]["subscriptionStatuses"]] == \
                ["abc-kn-sequence-0", "abc-kn-sequence-1", "abc-kn-sequence-2"]
            store = h.daemon.store
            uid = seq["metadata"]["uid"]
            for i in range(3):
                sub = store.get(k.SUBSCRIPTION, "default", f"abc-kn-sequence-{i}")
                channel = store.get(k.IN_MEMORY_CHANNEL, "default", f"abc-kn-sequence-{i}")
                assert sub is not None and channel is not None
                assert sub["metadata"]["ownerReferences"][0]["uid"] == uid
                assert channel["metadata"]["ownerReferences"][0]["uid"] == uid
                assert sub["spec"]["channel"] == {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                                                  "name": f"abc-kn-sequence-{i}"}
                reply = sub["spec"].get("reply")
                assert reply == ({"uri": result.url} if i == 2 else {"ref": {
                    "apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel",
                    "name": f"abc-kn-sequence-{i + 1}", "namespace": "default"}})
            assert store.get(k.SUBSCRIPTION, "default", "abc-kn-sequence-2")["spec"]["delivery"] == {
                "retry": 2, "backoffDelay": "PT0.1S"}

            reply = await h.request(host_of("abc-kn-sequence-0"), "/", "POST", headers=ce_headers("s1"),
                                    content=b'{"text": ""}')
            assert reply.status_code == 202, reply.text
            await result.wait_until(lambda: len(result.arrivals) >= 1, timeout=30)
            assert [e.data for e in result.events] == [{"text": "abc"}]

            # A step removed: its channel and subscription go, the last step now replies to the reply.
            h.apply(sequence("abc", [{"uri": b_step.url}, {"uri": c_step.url}], {"uri": result.url}))
            await h.wait_for(k.SEQUENCE, "default", "abc", lambda s: len(s["status"].get("channelStatuses", [])) == 2)
            await h.ready("abc", kind=k.SEQUENCE)
            assert store.get(k.IN_MEMORY_CHANNEL, "default", "abc-kn-sequence-2") is None
            assert store.get(k.SUBSCRIPTION, "default", "abc-kn-sequence-2") is None
            reply = await h.request(host_of("abc-kn-sequence-0"), "/", "POST", headers=ce_headers("s2"),
                                    content=b'{"text": "x"}')
            assert reply.status_code == 202
            await result.wait_until(lambda: len(result.arrivals) >= 2, timeout=30)
            assert result.events[1].data == {"text": "xbc"}

            # Deleting the Sequence deletes what it generated.
            store.delete(k.SEQUENCE, "default", "abc")
            assert store.list(k.IN_MEMORY_CHANNEL, "default") == []
            assert store.list(k.SUBSCRIPTION, "default") == []
    finally:
        for r in (b_step, c_step, result):
            await r.stop()


async def test_parallel_delivers_only_the_branches_whose_filter_passes(tmp_path: Path) -> None:
    async def only_orders(event: CloudEvent, attempt: int) -> CloudEvent | int:
        return event if event["type"] == "order" else 202  # no reply: the branch drops the event

    async def reject_all(event: CloudEvent, attempt: int) -> int:
        return 202

    orders_filter, none_filter = EventReceiver(only_orders), EventReceiver(reject_all)
    first, second, third = EventReceiver(appender("1")), EventReceiver(appender("2")), EventReceiver(appender("3"))
    replies, third_replies = EventReceiver(), EventReceiver()
    servers = (orders_filter, none_filter, first, second, third, replies, third_replies)
    for r in servers:
        await r.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply({"apiVersion": "flows.knative.dev/v1", "kind": "Parallel",
                     "metadata": {"name": "fork", "namespace": "default"},
                     "spec": {"channelTemplate": dict(IMC), "reply": {"uri": replies.url}, "branches": [
                         {"filter": {"uri": orders_filter.url}, "subscriber": {"uri": first.url}},
                         {"filter": {"uri": none_filter.url}, "subscriber": {"uri": second.url}},
                         {"subscriber": {"uri": third.url}, "reply": {"uri": third_replies.url}},
                     ]}})
            par = await h.ready("fork", kind=k.PARALLEL)
            assert par["status"]["address"]["url"] == "http://fork-kn-parallel-kn-channel.default.svc.cluster.local"
            assert par["status"]["ingressChannelStatus"]["channel"]["name"] == "fork-kn-parallel"
            branches = par["status"]["branchStatuses"]
            assert [b["filterSubscriptionStatus"]["subscription"]["name"] for b in branches] == \
                ["fork-kn-parallel-filter-0", "fork-kn-parallel-filter-1", "fork-kn-parallel-filter-2"]
            assert [b["subscriberSubscriptionStatus"]["subscription"]["name"] for b in branches] == \
                ["fork-kn-parallel-0", "fork-kn-parallel-1", "fork-kn-parallel-2"]
            no_filter = h.daemon.store.get(k.SUBSCRIPTION, "default", "fork-kn-parallel-filter-2")
            assert no_filter is not None
            assert no_filter["spec"]["subscriber"]["ref"]["name"] == "fork-kn-parallel-2"
            assert "reply" not in no_filter["spec"]

            for event_id, type_ in (("p1", "order"), ("p2", "refund")):
                reply = await h.request(host_of("fork-kn-parallel"), "/", "POST",
                                        headers=ce_headers(event_id, type_), content=b'{"text": ""}')
                assert reply.status_code == 202, reply.text
            # Synchronous channels: every branch settled before the ingress answered.
            assert sorted(e["id"] for e in replies.events) == ["p11"]
            assert replies.events[0].data == {"text": "1"}
            assert second.arrivals == []
            assert sorted(e["id"] for e in third_replies.events) == ["p13", "p23"]
    finally:
        for r in servers:
            await r.stop()


async def test_a_trigger_addresses_a_sequence_by_ref(tmp_path: Path) -> None:
    # As the docs' sequence-with-broker-trigger sample: the subscriber is the Sequence itself, resolved by its
    # status.address once the Sequence has one (applied in the same batch, before it has).
    step, result = EventReceiver(appender("!")), EventReceiver()
    for r in (step, result):
        await r.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            seq_ref = {"ref": {"apiVersion": "flows.knative.dev/v1", "kind": "Sequence", "name": "shout"}}
            h.apply({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                     "metadata": {"name": "default", "namespace": "default"}},
                    {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
                     "metadata": {"name": "to-seq", "namespace": "default"},
                     "spec": {"broker": "default", "subscriber": seq_ref}},
                    sequence("shout", [{"uri": step.url}], {"uri": result.url}))
            trigger = await h.ready("to-seq", kind=k.TRIGGER)
            assert trigger["status"]["subscriberUri"] == "http://shout-kn-sequence-0-kn-channel.default.svc.cluster.local"
            reply = await h.request("broker-ingress.knative-eventing.localhost", "/default/default", "POST",
                                    headers={"ce-specversion": "1.0", "ce-id": "t1", "ce-source": "/s",
                                             "ce-type": "greeting", "content-type": "application/json"},
                                    content=b'{"text": "hi"}')
            assert reply.status_code == 202
            await result.wait_until(lambda: len(result.arrivals) >= 1, timeout=30)
            assert result.events[0].data == {"text": "hi!"}
    finally:
        for r in (step, result):
            await r.stop()
