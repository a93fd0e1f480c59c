"""Trigger dispatch from the broker log: filter, deliver, replies routed onward, TTL stops loops, restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from wisp.eventing.broker import Brokers, LogBroker, get_ttl
from wisp.eventing.broker_log import BrokerLog
from wisp.eventing.cloudevents import CloudEvent, make_event
from wisp.eventing.delivery import Deliverer, DeliverySpec, Destination
from wisp.eventing.filters import compile_filter
from wisp.eventing.trigger_dispatcher import (
    LogTriggerDispatcher,
    SettleTracker,
    TriggerConfig,
    TriggerHandler,
    trigger_config,
)

from .servers import Handler, Subscriber

SubscriberFactory = Callable[[Handler | None], Awaitable[Subscriber]]


def _event(type_: str, id_: str = "1", **ext: Any) -> CloudEvent:
    return make_event({"id": id_, "source": "/test", "specversion": "1.0", "type": type_, **ext}, {"n": id_})


def _config(name: str, dest: Destination, **filter_attrs: str) -> TriggerConfig:
    return TriggerConfig(
        namespace="demo", name=name, broker="default",
        predicate=compile_filter({"filter": {"attributes": filter_attrs}}),
        subscriber=dest, delivery=DeliverySpec(),
    )


def test_settle_tracker_commits_only_past_settled() -> None:
    tracker = SettleTracker()
    for offset in (5, 6, 7):
        tracker.begin(offset)
    assert tracker.settle(7) is False and tracker.committable is None
    assert tracker.settle(5) is True and tracker.committable == 6
    assert tracker.settle(6) is True and tracker.committable == 8
    assert tracker.in_flight == 0


def test_trigger_config_from_resources() -> None:
    trigger = {
        "metadata": {"name": "t1", "namespace": "demo"},
        "spec": {"broker": "default", "filter": {"attributes": {"type": "a"}},
                 "subscriber": {"ref": {"kind": "Service", "name": "svc"}}},
    }
    broker = {"spec": {"delivery": {"retry": 3, "backoffDelay": "PT0.5S",
                                    "deadLetterSink": {"uri": "http://dls"}}}}

    def resolve(dest: Any) -> Destination:
        return Destination(dest.get("uri") or "http://127.0.0.1:8080", host=None if "uri" in dest else "svc")

    cfg = trigger_config(trigger, broker, resolve)
    assert (cfg.namespace, cfg.name, cfg.broker) == ("demo", "t1", "default")
    assert cfg.subscriber.host == "svc"
    assert cfg.delivery.retry == 3 and cfg.delivery.backoff_delay == 0.5  # the broker's delivery
    assert cfg.dead_letter == Destination("http://dls")
    assert cfg.predicate(_event("a")) and not cfg.predicate(_event("b"))
    own = trigger_config({**trigger, "spec": {**trigger["spec"], "delivery": {"retry": 1}}}, broker, resolve)
    assert own.delivery.retry == 1 and own.dead_letter is None


async def test_reply_routed_onward(
    broker_log: BrokerLog, deliverer: Deliverer, subscriber_factory: SubscriberFactory
) -> None:
    brokers = Brokers()
    broker = LogBroker(broker_log, "demo", "default")
    brokers.put(broker)

    async def process(event: CloudEvent) -> CloudEvent:
        return _event("order.processed", f"reply-{event['id']}")

    processor = await subscriber_factory(process)
    display = await subscriber_factory(None)
    dispatchers = [
        LogTriggerDispatcher(TriggerHandler(_config("proc", processor.destination, type="order.created"),
                                            deliverer, brokers), broker_log),
        LogTriggerDispatcher(TriggerHandler(_config("show", display.destination, type="order.processed"),
                                            deliverer, brokers), broker_log),
    ]
    for d in dispatchers:
        await d.start()
    try:
        await broker.publish([_event("order.created", "o1", knativebrokerttl="255"), _event("noise", "x")])
        await display.wait_for(1)
        for d in dispatchers:
            await d.idle()
    finally:
        for d in dispatchers:
            await d.stop()
    assert [e["id"] for e in processor.events] == ["o1"]  # the filter kept "noise" away
    assert [e["id"] for e in display.events] == ["reply-o1"]
    assert "knativebrokerttl" not in display.events[0]  # the broker's hop counter stays inside
    stored = {r.event["id"]: r.event for r in await broker_log.read("demo", "default", 0)}
    assert get_ttl(stored["reply-o1"]) == 254
    # Both cursors are committed past every event (3 = o1, x, reply).
    assert [await broker_log.open_cursor(d.cursor) for d in dispatchers] == [3, 3]


async def test_reply_loop_stopped_by_ttl(
    broker_log: BrokerLog, deliverer: Deliverer, subscriber_factory: SubscriberFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    brokers = Brokers()
    broker = LogBroker(broker_log, "demo", "default")
    brokers.put(broker)

    async def echo(event: CloudEvent) -> CloudEvent:
        return _event("loop", f"{event['id']}+")

    looper = await subscriber_factory(echo)
    dispatcher = LogTriggerDispatcher(
        TriggerHandler(_config("loop", looper.destination, type="loop"), deliverer, brokers), broker_log
    )
    await dispatcher.start()
    try:
        with caplog.at_level(logging.WARNING):
            await broker.publish([_event("loop", "a", knativebrokerttl="5")])
            await looper.wait_for(5)
            await dispatcher.idle()
    finally:
        await dispatcher.stop()
    # ttl 5 → replies at 4, 3, 2, 1 go back in; the 5th reply would have ttl 0 and is dropped.
    assert [e["id"] for e in looper.events] == ["a", "a+", "a++", "a+++", "a++++"]
    assert broker_log.end_offset("demo", "default") == 5
    assert any("dropping reply" in r.getMessage() and "knativebrokerttl" in r.getMessage()
               for r in caplog.records)


async def test_unsettled_events_redelivered_after_restart(
    broker_log: BrokerLog, deliverer: Deliverer, subscriber_factory: SubscriberFactory
) -> None:
    brokers = Brokers()
    broker = LogBroker(broker_log, "demo", "default")
    brokers.put(broker)
    release = asyncio.Event()

    async def slow_first(event: CloudEvent) -> None:
        if event["id"] == "e0":
            await release.wait()  # never set: e0 stays in flight until the dispatcher stops

    stuck = await subscriber_factory(slow_first)
    handler = TriggerHandler(_config("t", stuck.destination), deliverer, brokers)
    first = LogTriggerDispatcher(handler, broker_log)
    await first.start()
    try:
        await broker.publish([_event("x", "e0"), _event("x", "e1")])
        await stuck.wait_for(2)  # e1 was delivered while e0 is still in flight
    finally:
        await first.stop()
    assert await broker_log.open_cursor(first.cursor) == 0  # e1 settled, but e0 before it did not

    ok = await subscriber_factory(None)
    handler = TriggerHandler(_config("t", ok.destination), deliverer, brokers)
    second = LogTriggerDispatcher(handler, broker_log)
    await second.start()
    try:
        await ok.wait_for(2)
        await second.idle()
    finally:
        await second.stop()
    assert sorted(e["id"] for e in ok.events) == ["e0", "e1"]  # at least once: nothing lost
    assert await broker_log.open_cursor(second.cursor) == 2
    release.set()
