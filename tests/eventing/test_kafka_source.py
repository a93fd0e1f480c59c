"""The KafkaSource dispatcher against the real (Tansu) broker and a real HTTP sink."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from wisp.eventing.cloudevents import parse_event
from wisp.eventing.delivery import Deliverer, DeliverySpec, Destination
from wisp.eventing.kafka_source import KafkaSourceDispatcher, KafkaSourceSpec
from wisp.eventing.local_kafka import ensure_topics, free_port

from .sink import Received, Reply, Sink

pytestmark = pytest.mark.timeout(120)


async def new_topic(bootstrap: str, partitions: int = 1) -> str:
    topic = f"t-{uuid.uuid4().hex[:10]}"
    await ensure_topics(bootstrap, [topic], partitions=partitions)
    return topic


async def produce(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(topic, **r)
    finally:
        await producer.stop()


def resolver(destinations: Mapping[str, Destination]) -> Any:
    def resolve(ref: Mapping[str, Any]) -> Destination | None:
        return destinations.get(str(ref.get("uri")))

    return resolve


def spec_for(bootstrap: str, topic: str, sink: Sink, **overrides: Any) -> KafkaSourceSpec:
    values: dict[str, Any] = {
        "namespace": "default",
        "name": "src",
        "bootstrap_servers": (bootstrap,),
        "topics": (topic,),
        "sink": {"uri": "sink"},
        "consumer_group": f"g-{uuid.uuid4().hex[:8]}",
        "initial_offset": "earliest",
        "delivery": DeliverySpec(retry=0),
        "commit_interval": 0.2,
    }
    values.update(overrides)
    return KafkaSourceSpec(**values)


async def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int = 1) -> dict[int, int]:
    """The group's committed offsets, read the way a restarted consumer of that group would."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        result = {}
        for p in range(partitions):
            offset = await consumer.committed(TopicPartition(topic, p))
            if offset is not None:
                result[p] = offset
        return result
    finally:
        await consumer.stop()


async def test_plain_record_mapping_is_exact(kafka_bootstrap: str, deliverer: Deliverer, sink: Sink) -> None:
    topic = await new_topic(kafka_bootstrap)
    await produce(
        kafka_bootstrap,
        topic,
        [
            {
                "value": b'{"msg": "hi"}',
                "key": b"user-1",
                "headers": [("X-Trace_Id", b"abc")],
                "timestamp_ms": 1700000000123,
            },
            {"value": b"\xff\xfe not utf-8", "timestamp_ms": 1700000000124},
        ],
    )
    spec = spec_for(kafka_bootstrap, topic, sink, ce_overrides={"team": "blue"})
    dispatcher = KafkaSourceDispatcher(spec, deliverer, resolver({"sink": Destination(sink.url, "s.default")}))
    await dispatcher.start()
    try:
        await sink.wait_for(2)
    finally:
        await dispatcher.stop()
    first, second = sink.received[0].headers, sink.received[1].headers
    assert first["host"] == "s.default"
    assert first["ce-specversion"] == "1.0"
    assert first["ce-id"] == "partition:0/offset:0"
    assert first["ce-source"] == f"/apis/v1/namespaces/default/kafkasources/src#{topic}"
    assert first["ce-type"] == "dev.knative.kafka.event"
    assert first["ce-subject"] == "partition:0#0"
    assert first["ce-time"] == "2023-11-14T22:13:20.123Z"
    assert first["ce-key"] == "user-1"
    assert first["ce-kafkaheaderxtraceid"] == "abc"
    assert first["ce-team"] == "blue"
    assert first["content-type"] == "application/json"
    assert json.loads(sink.received[0].body) == {"msg": "hi"}
    assert second["ce-id"] == "partition:0/offset:1"
    assert "ce-key" not in second
    assert sink.received[1].body == b"\xff\xfe not utf-8"
    assert "content-type" not in second
    assert dispatcher.counters.delivered == 2
    assert await committed_offsets(kafka_bootstrap, spec.consumer_group, topic) == {0: 2}


async def test_cloudevent_record_passes_unchanged(
    kafka_bootstrap: str, deliverer: Deliverer, sink: Sink
) -> None:
    topic = await new_topic(kafka_bootstrap)
    structured = {"specversion": "1.0", "id": "s-1", "source": "/app", "type": "app.made", "data": {"n": 2}}
    await produce(
        kafka_bootstrap,
        topic,
        [
            {
                "value": b'{"n": 1}',
                "headers": [
                    ("ce_specversion", b"1.0"),
                    ("ce_id", b"b-1"),
                    ("ce_source", b"/app"),
                    ("ce_type", b"app.made"),
                    ("ce_myext", b"v"),
                    ("content-type", b"application/json"),
                ],
            },
            {
                "value": json.dumps(structured).encode(),
                "headers": [("content-type", b"application/cloudevents+json")],
            },
        ],
    )
    spec = spec_for(kafka_bootstrap, topic, sink)
    dispatcher = KafkaSourceDispatcher(spec, deliverer, resolver({"sink": Destination(sink.url)}))
    await dispatcher.start()
    try:
        await sink.wait_for(2)
    finally:
        await dispatcher.stop()
    binary = parse_event(sink.received[0].headers, sink.received[0].body)
    assert binary.get_attributes() == {
        "specversion": "1.0",
        "id": "b-1",
        "source": "/app",
        "type": "app.made",
        "myext": "v",
        "datacontenttype": "application/json",
    }
    assert binary.get_data() == {"n": 1}
    structured_event = parse_event(sink.received[1].headers, sink.received[1].body)
    assert structured_event["id"] == "s-1"
    assert "subject" not in structured_event
    assert structured_event.get_data() == {"n": 2}


async def test_ordered_preserves_order_per_partition(kafka_bootstrap: str, deliverer: Deliverer) -> None:
    topic = await new_topic(kafka_bootstrap, partitions=4)
    per_partition = 15
    await produce(
        kafka_bootstrap,
        topic,
        [{"value": f"{p}:{i}".encode(), "partition": p} for i in range(per_partition) for p in range(4)],
    )
    sink = Sink(delay=0.005)
    in_flight: dict[str, int] = {}
    overlap: list[str] = []
    done_by_partition: dict[str, list[int]] = {}

    def arrived(got: Received) -> None:
        partition = got.headers["ce-subject"].split("#")[0]
        in_flight[partition] = in_flight.get(partition, 0) + 1
        if in_flight[partition] > 1:
            overlap.append(partition)

    def answered(got: Received) -> None:
        partition, offset = got.headers["ce-subject"].split("#")
        in_flight[partition] -= 1
        done_by_partition.setdefault(partition, []).append(int(offset))

    sink.on_request, sink.on_answer = arrived, answered
    await sink.start()
    spec = spec_for(kafka_bootstrap, topic, sink, ordering="ordered")
    dispatcher = KafkaSourceDispatcher(spec, deliverer, resolver({"sink": Destination(sink.url)}))
    await dispatcher.start()
    try:
        await sink.wait_for(4 * per_partition)
    finally:
        await dispatcher.stop()
        await sink.stop()
    assert overlap == []
    assert len(done_by_partition) == 4
    for offsets in done_by_partition.values():
        assert offsets == list(range(per_partition))
    for received in sink.received:
        p, i = received.body.decode().split(":")
        assert received.headers["ce-subject"] == f"partition:{p}#{i}"
    assert await committed_offsets(kafka_bootstrap, spec.consumer_group, topic, 4) == {
        p: per_partition for p in range(4)
    }


async def test_unordered_keeps_many_in_flight(kafka_bootstrap: str, deliverer: Deliverer) -> None:
    topic = await new_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [{"value": str(i).encode()} for i in range(30)])
    sink = Sink(delay=0.2)
    await sink.start()
    spec = spec_for(kafka_bootstrap, topic, sink, ordering="unordered")
    dispatcher = KafkaSourceDispatcher(spec, deliverer, resolver({"sink": Destination(sink.url)}))
    await dispatcher.start()
    try:
        await sink.wait_for(30)
    finally:
        await dispatcher.stop()
        await sink.stop()
    assert sink.max_in_flight > 1
    assert sorted(int(r.body) for r in sink.received) == list(range(30))
    assert await committed_offsets(kafka_bootstrap, spec.consumer_group, topic) == {0: 30}


async def test_failed_records_go_to_dead_letter_and_are_committed(
    kafka_bootstrap: str, deliverer: Deliverer
) -> None:
    topic = await new_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [{"value": b"1"}, {"value": b"2"}])
    sink = Sink([Reply(400, body=b"bad")])
    dls = Sink()
    await sink.start()
    await dls.start()
    delivery = DeliverySpec(retry=2, backoff_delay=0.01, dead_letter_sink={"uri": "dls"})
    spec = spec_for(kafka_bootstrap, topic, sink, delivery=delivery)
    destinations = {"sink": Destination(sink.url), "dls": Destination(dls.url)}
    dispatcher = KafkaSourceDispatcher(spec, deliverer, resolver(destinations))
    await dispatcher.start()
    try:
        await dls.wait_for(2)
    finally:
        await dispatcher.stop()
        await sink.stop()
        await dls.stop()
    assert len(sink.received) == 2  # 400: no retry
    assert dispatcher.counters.dead_lettered == 2
    assert {r.headers["ce-knativeerrorcode"] for r in dls.received} == {"400"}
    assert await committed_offsets(kafka_bootstrap, spec.consumer_group, topic) == {0: 2}


async def test_unreachable_bootstrap_reports_not_ready(deliverer: Deliverer, sink: Sink) -> None:
    statuses: list[tuple[bool, str, str]] = []
    reported = asyncio.Event()

    def on_status(ready: bool, reason: str, message: str) -> None:
        statuses.append((ready, reason, message))
        reported.set()

    bootstrap = f"127.0.0.1:{free_port()}"
    spec = spec_for(bootstrap, "nowhere", sink)
    dispatcher = KafkaSourceDispatcher(
        spec, deliverer, resolver({"sink": Destination(sink.url)}), on_status=on_status,
        reconnect_backoff=(0.05, 0.1),
    )
    await dispatcher.start()
    try:
        await asyncio.wait_for(reported.wait(), 30)
    finally:
        await dispatcher.stop()
    ready, reason, message = statuses[0]
    assert ready is False
    assert reason == "KafkaUnreachable"
    assert bootstrap in message
