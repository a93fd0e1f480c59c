"""InMemoryChannel, Channel and Subscription through a real daemon: fan-out under a burst, replies,
subscriptions that wait for their channel, and the address reported in status."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.eventing_e2e.servers import EventReceiver
from tests.serving.harness import running_daemon
from wisp.api import kinds as k
from wisp.control.conditions import get_condition
from wisp.eventing.cloudevents import CloudEvent, make_event

from .helpers import ce_headers, host_of, imc, subscription

pytestmark = pytest.mark.timeout(90)

BURST = 300


async def test_every_subscriber_gets_every_event_once_under_a_burst(tmp_path: Path) -> None:
    receivers = [EventReceiver() for _ in range(3)]
    for r in receivers:
        await r.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply(imc("fan"), *(subscription(f"s{i}", "fan", {"uri": r.url}) for i, r in enumerate(receivers)))
            channel = await h.wait_for(k.IN_MEMORY_CHANNEL, "default", "fan",
                                       lambda c: len(c.get("status", {}).get("subscribers", [])) == 3)
            assert channel["status"]["address"]["url"] == "http://fan-kn-channel.default.svc.cluster.local"
            for i in range(3):
                sub = await h.ready(f"s{i}", kind=k.SUBSCRIPTION)
                assert sub["status"]["physicalSubscription"]["subscriberUri"] == receivers[i].url

            limit = asyncio.Semaphore(50)

            async def send(i: int) -> int:
                async with limit:
                    reply = await h.request(host_of("fan"), "/", "POST", headers=ce_headers(f"b-{i}"),
                                            content=b'{"n": %d}' % i)
                    return reply.status_code

            statuses = await asyncio.gather(*(send(i) for i in range(BURST)))
            assert set(statuses) == {202}
            wanted = {f"b-{i}" for i in range(BURST)}
            for r in receivers:
                # The channel answers after every subscriber settled: all are there already.
                assert sorted(r.attempts.values()) == [1] * BURST
                assert set(r.attempts) == wanted
    finally:
        for r in receivers:
            await r.stop()


async def test_reply_goes_to_the_subscriptions_reply(tmp_path: Path) -> None:
    async def shout(event: CloudEvent, attempt: int) -> CloudEvent:
        return make_event({"specversion": "1.0", "id": f"r-{event['id']}", "source": "/shout", "type": "loud"},
                          {"said": event.data})

    shouter, replies = EventReceiver(shout), EventReceiver()
    await shouter.start()
    await replies.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply(imc("in"), subscription("s", "in", {"uri": shouter.url}, reply={"uri": replies.url}))
            await h.ready("s", kind=k.SUBSCRIPTION)
            reply = await h.request(host_of("in"), "/", "POST", headers=ce_headers("e1"), content=b'"hi"')
            assert reply.status_code == 202, reply.text
            assert [e["id"] for e in replies.events] == ["r-e1"]
            assert replies.events[0].data == {"said": "hi"}
    finally:
        await shouter.stop()
        await replies.stop()


async def test_a_failing_subscriber_makes_the_sender_retry_and_dead_letters(tmp_path: Path) -> None:
    async def refuse(event: CloudEvent, attempt: int) -> int:
        return 400  # not retried: straight to the dead-letter sink

    bad, dead = EventReceiver(refuse), EventReceiver()
    await bad.start()
    await dead.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply(imc("c"), subscription("s", "c", {"uri": bad.url},
                                           delivery={"deadLetterSink": {"uri": dead.url}}),
                    imc("c2"), subscription("s2", "c2", {"uri": bad.url}))
            await h.ready("s", kind=k.SUBSCRIPTION)
            await h.ready("s2", kind=k.SUBSCRIPTION)
            ok = await h.request(host_of("c"), "/", "POST", headers=ce_headers("d1"), content=b"{}")
            assert ok.status_code == 202  # dead-lettered counts as settled
            assert [e["id"] for e in dead.events] == ["d1"]
            assert dead.events[0]["knativeerrorcode"] == "400"
            lost = await h.request(host_of("c2"), "/", "POST", headers=ce_headers("d2"), content=b"{}")
            assert lost.status_code == 500  # no dead-letter sink: the sender hears it failed
    finally:
        await bad.stop()
        await dead.stop()


async def test_subscription_to_a_missing_channel_waits_for_it(tmp_path: Path) -> None:
    receiver = EventReceiver()
    await receiver.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply(subscription("early", "later", {"uri": receiver.url}))
            sub = await h.failed("early", kind=k.SUBSCRIPTION)
            cond = get_condition(sub, "ReferencesResolved") or {}
            assert cond.get("reason") == "ChannelReferenceFailed" and "later" in cond.get("message", "")
            h.apply(imc("later"))
            await h.ready("early", kind=k.SUBSCRIPTION)
            reply = await h.request(host_of("later"), "/", "POST", headers=ce_headers("x"), content=b"{}")
            assert reply.status_code == 202
            assert [e["id"] for e in receiver.events] == ["x"]
    finally:
        await receiver.stop()


async def test_channel_creates_its_backing_channel(tmp_path: Path) -> None:
    receiver = EventReceiver()
    await receiver.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel",
                     "metadata": {"name": "generic", "namespace": "default"}},
                    subscription("s", "generic", {"uri": receiver.url}, channel_kind="Channel"))
            channel = await h.ready("generic", kind=k.CHANNEL)
            assert channel["spec"]["channelTemplate"] == {"apiVersion": "messaging.knative.dev/v1",
                                                          "kind": "InMemoryChannel"}  # default-ch-webhook's default
            assert channel["status"]["channel"]["kind"] == "InMemoryChannel"
            backing = h.daemon.store.get(k.IN_MEMORY_CHANNEL, "default", "generic")
            assert backing is not None
            assert backing["metadata"]["ownerReferences"][0]["uid"] == channel["metadata"]["uid"]
            await h.ready("s", kind=k.SUBSCRIPTION)
            url = channel["status"]["address"]["url"]
            assert url == "http://generic-kn-channel.default.svc.cluster.local"
            reply = await h.request(host_of("generic"), "/", "POST", headers=ce_headers("g"), content=b"{}")
            assert reply.status_code == 202
            assert [e["id"] for e in receiver.events] == ["g"]
            # Deleting the Channel deletes its backing channel, and the subscription hears it.
            h.daemon.store.delete(k.CHANNEL, "default", "generic")
            await h.failed("s", kind=k.SUBSCRIPTION)
            gone = await h.request(host_of("generic"), "/", "POST", headers=ce_headers("g2"), content=b"{}")
            assert gone.status_code == 404
    finally:
        await receiver.stop()


async def test_a_restarted_daemon_rebuilds_channels_and_flows(tmp_path: Path) -> None:
    receiver = EventReceiver()
    await receiver.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply(imc("kept"), subscription("s", "kept", {"uri": receiver.url}),
                    {"apiVersion": "flows.knative.dev/v1", "kind": "Sequence",
                     "metadata": {"name": "seq", "namespace": "default"},
                     "spec": {"steps": [{"uri": receiver.url}]}})
            await h.ready("s", kind=k.SUBSCRIPTION)
            await h.ready("seq", kind=k.SEQUENCE)
        async with running_daemon(tmp_path / "state") as h:
            # The stored statuses say Ready from before the restart, and a reconcile that finds the same state
            # writes nothing: the new daemon's own dispatchers are what to wait for (no store event marks them).
            assert h.daemon.eventing is not None
            channels = h.daemon.eventing.channels
            async with asyncio.timeout(10):
                while not all((c := channels.get("default", name)) is not None and c.subscribers()
                              for name in ("kept", "seq-kn-sequence-0")):
                    await asyncio.sleep(0.01)
            for host, event_id in ((host_of("kept"), "r1"), (host_of("seq-kn-sequence-0"), "r2")):
                reply = await h.request(host, "/", "POST", headers=ce_headers(event_id), content=b"{}")
                assert reply.status_code == 202, reply.text
            assert sorted(e["id"] for e in receiver.events) == ["r1", "r2"]
    finally:
        await receiver.stop()
