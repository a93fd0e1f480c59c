"""Knative delivery semantics against a real HTTP sink; waits are recorded by a fake sleep."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from wisp.api.errors import ManifestError
from wisp.eventing.cloudevents import CloudEvent, make_event, parse_event
from wisp.eventing.delivery import (
    KAFKA_SOURCE_DEFAULT_DELIVERY,
    Deliverer,
    DeliverySpec,
    Destination,
    kafka_source_delivery,
)

from .sink import Reply, Sink


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.waits: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def deliverer(clock: FakeClock) -> AsyncIterator[Deliverer]:
    d = Deliverer(sleep=clock.sleep, now=clock.time)
    await d.start()
    yield d
    await d.stop()


async def started(sink: Sink) -> Sink:
    await sink.start()
    return sink


def event() -> CloudEvent:
    return make_event(
        {
            "specversion": "1.0",
            "id": "e1",
            "source": "/src",
            "type": "t",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        },
        {"n": 1},
    )


def test_parse_knative_delivery_and_backoff() -> None:
    spec = DeliverySpec.from_knative(
        {
            "retry": 3,
            "backoffPolicy": "linear",
            "backoffDelay": "PT0.5S",
            "timeout": "PT2S",
            "retryAfterMax": "PT10S",
            "deadLetterSink": {"uri": "http://x"},
        }
    )
    assert (spec.retry, spec.backoff_policy, spec.backoff_delay, spec.timeout, spec.retry_after_max) == (
        3,
        "linear",
        0.5,
        2.0,
        10.0,
    )
    assert [spec.backoff(k) for k in (1, 2, 3)] == [0.5, 1.0, 1.5]
    exp = DeliverySpec.from_knative({"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT1S"})
    assert [exp.backoff(k) for k in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert DeliverySpec.from_knative({"format": "json"}).format == "structured"


def test_invalid_delivery_names_fields() -> None:
    with pytest.raises(ManifestError) as info:
        DeliverySpec.from_knative({"retry": -1, "backoffPolicy": "cubic", "backoffDelay": "soon"})
    paths = {e.path for e in info.value.errors}
    assert paths == {"spec.delivery.retry", "spec.delivery.backoffPolicy", "spec.delivery.backoffDelay"}


def test_kafka_source_default_and_seed_annotations() -> None:
    assert kafka_source_delivery(None) == KAFKA_SOURCE_DEFAULT_DELIVERY
    assert (KAFKA_SOURCE_DEFAULT_DELIVERY.retry, KAFKA_SOURCE_DEFAULT_DELIVERY.backoff_delay) == (10, 0.3)
    spec = kafka_source_delivery(
        None,
        {
            "k8s.aliyun.com/req-timeout": "60",
            "k8s.aliyun.com/retry-count": "5",
            "k8s.aliyun.com/retry-interval": "2",
        },
    )
    assert (spec.timeout, spec.retry) == (60.0, 5)
    assert [spec.backoff(k) for k in (1, 2, 5)] == [2.0, 2.0, 2.0]
    # An explicit delivery block wins over the default for the fields it sets.
    assert kafka_source_delivery({"retry": 1}).retry == 1
    with pytest.raises(ManifestError):
        kafka_source_delivery(None, {"k8s.aliyun.com/retry-count": "many"})


async def test_503_twice_then_200_retries_with_configured_waits(deliverer: Deliverer, clock: FakeClock) -> None:
    sink = await started(Sink([Reply(503), Reply(503), Reply(200)]))
    try:
        spec = DeliverySpec(retry=5, backoff_policy="linear", backoff_delay=0.2)
        result = await deliverer.deliver(event(), Destination(sink.url, host="svc.default.localhost"), spec)
    finally:
        await sink.stop()
    assert result.outcome == "delivered"
    assert result.attempts == 3
    assert clock.waits == pytest.approx([0.2, 0.4])
    first = sink.received[0].headers
    assert first["host"] == "svc.default.localhost"
    assert first["ce-id"] == "e1"
    assert first["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_trace_context_with_a_line_break_is_not_sent_as_a_header(deliverer: Deliverer) -> None:
    # A structured event's extensions may hold any text: as plain headers they must not open a header of their own.
    hostile = make_event({"specversion": "1.0", "id": "e1", "source": "/src", "type": "t",
                          "traceparent": "00-x\r\nx-injected: 1", "tracestate": "a=1\nx-injected: 2"}, {"n": 1})
    sink = await started(Sink([Reply(200)]))
    try:
        result = await deliverer.deliver(hostile, Destination(sink.url), DeliverySpec())
    finally:
        await sink.stop()
    assert result.outcome == "delivered"
    headers = sink.received[0].headers
    assert "x-injected" not in headers and "traceparent" not in headers and "tracestate" not in headers
    assert headers["ce-traceparent"] == "00-x%0D%0Ax-injected: 1"  # the attribute itself travels, encoded


async def test_always_500_goes_to_dead_letter_sink(deliverer: Deliverer, clock: FakeClock) -> None:
    sink = await started(Sink([Reply(500, body=b"boom" * 300)]))
    dls = await started(Sink())
    try:
        spec = DeliverySpec(retry=2, backoff_policy="exponential", backoff_delay=0.1)
        result = await deliverer.deliver(event(), Destination(sink.url), spec, Destination(dls.url))
    finally:
        await sink.stop()
        await dls.stop()
    assert result.outcome == "dead-lettered"
    assert result.attempts == 3
    assert clock.waits == pytest.approx([0.2, 0.4])
    assert len(dls.received) == 1
    dead = parse_event(dls.received[0].headers, dls.received[0].body)
    assert dead["id"] == "e1"
    assert dead["knativeerrorcode"] == "500"
    assert dead["knativeerrordest"] == sink.url
    assert base64.b64decode(dead["knativeerrordata"]) == (b"boom" * 300)[:1024]
    assert dead.get_data() == {"n": 1}


async def test_400_is_not_retried(deliverer: Deliverer, clock: FakeClock) -> None:
    sink = await started(Sink([Reply(400), Reply(200)]))
    try:
        result = await deliverer.deliver(event(), Destination(sink.url), DeliverySpec(retry=5, backoff_delay=1))
    finally:
        await sink.stop()
    assert result.outcome == "dropped"
    assert result.attempts == 1
    assert result.status == 400
    assert clock.waits == []


async def test_retry_after_is_honoured_up_to_max(deliverer: Deliverer, clock: FakeClock) -> None:
    sink = await started(Sink([Reply(429, {"Retry-After": "5"}), Reply(503, {"Retry-After": "100"}), Reply()]))
    try:
        spec = DeliverySpec(retry=3, backoff_policy="linear", backoff_delay=0.1, retry_after_max=30.0)
        result = await deliverer.deliver(event(), Destination(sink.url), spec)
    finally:
        await sink.stop()
    assert result.outcome == "delivered"
    assert clock.waits == pytest.approx([5.0, 30.0])


async def test_connection_refused_is_retried_then_dropped(deliverer: Deliverer, clock: FakeClock) -> None:
    sink = await started(Sink())
    url = sink.url
    await sink.stop()  # nothing listens on that port any more
    result = await deliverer.deliver(event(), Destination(url), DeliverySpec(retry=2, backoff_delay=0.1))
    assert result.outcome == "dropped"
    assert result.attempts == 3
    assert "connection" in result.reason


async def test_reply_event_is_returned(deliverer: Deliverer) -> None:
    reply_headers = {
        "ce-specversion": "1.0",
        "ce-id": "r1",
        "ce-source": "/fn",
        "ce-type": "reply",
        "content-type": "application/json",
    }
    sink = await started(Sink([Reply(200, reply_headers, b'{"ok": true}')]))
    try:
        result = await deliverer.deliver(event(), Destination(sink.url), DeliverySpec(), None)
    finally:
        await sink.stop()
    assert result.reply is not None
    assert result.reply["id"] == "r1"
    assert result.reply.get_data() == {"ok": True}


async def test_structured_format(deliverer: Deliverer) -> None:
    sink = await started(Sink())
    try:
        await deliverer.deliver(event(), Destination(sink.url), DeliverySpec(format="structured"))
    finally:
        await sink.stop()
    assert sink.received[0].headers["content-type"] == "application/cloudevents+json"
    assert parse_event(sink.received[0].headers, sink.received[0].body)["id"] == "e1"
