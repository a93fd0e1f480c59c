"""A Kafka-class broker against the session's Tansu: ingress → topic → trigger consumer group → subscriber,
and the subscriber's reply back through the topic to a second trigger."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import partial

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from wisp.eventing.broker import Brokers, KafkaBroker, broker_ingress_app, kafka_broker_topic
from wisp.eventing.cloudevents import CloudEvent, make_event
from wisp.eventing.delivery import Deliverer, DeliverySpec
from wisp.eventing.filters import compile_filter
from wisp.eventing.local_kafka import ensure_topics
from wisp.eventing.trigger_dispatcher import KafkaTriggerDispatcher, TriggerConfig, TriggerHandler

from .servers import AppServer, Handler, Subscriber

SubscriberFactory = Callable[[Handler | None], Awaitable[Subscriber]]


async def test_kafka_broker_round_trip(
    kafka_bootstrap: str, deliverer: Deliverer, subscriber_factory: SubscriberFactory
) -> None:
    name = f"kb{uuid.uuid4().hex[:8]}"
    topic = kafka_broker_topic("demo", name)
    await ensure_topics(kafka_bootstrap, [topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    brokers = Brokers()
    brokers.put(KafkaBroker(producer, "demo", name))

    async def process(event: CloudEvent) -> CloudEvent:
        return make_event({"id": f"r-{event['id']}", "source": "/proc", "specversion": "1.0",
                           "type": "order.processed"}, {"from": event["id"]})

    processor = await subscriber_factory(process)
    display = await subscriber_factory(None)
    factory = partial(AIOKafkaConsumer, bootstrap_servers=kafka_bootstrap)

    def config(trigger: str, sub: Subscriber, type_: str) -> TriggerConfig:
        return TriggerConfig("demo", trigger, name, compile_filter({"filters": [{"exact": {"type": type_}}]}),
                             sub.destination, DeliverySpec())

    dispatchers = [
        KafkaTriggerDispatcher(TriggerHandler(config(f"{name}-p", processor, "order.created"),
                                              deliverer, brokers), factory, topic),
        KafkaTriggerDispatcher(TriggerHandler(config(f"{name}-d", display, "order.processed"),
                                              deliverer, brokers), factory, topic),
    ]
    ingress = AppServer(broker_ingress_app(brokers))
    await ingress.start()
    try:
        for d in dispatchers:
            await d.start()
        async with httpx.AsyncClient(base_url=ingress.url) as client:
            for i in range(3):
                headers = {"ce-id": f"o{i}", "ce-source": "/shop", "ce-specversion": "1.0",
                           "ce-type": "order.created", "ce-partitionkey": f"k{i}",
                           "content-type": "application/json"}
                resp = await client.post(f"/demo/{name}", headers=headers, content=b'{"qty": 2}')
                assert resp.status_code == 202
        await display.wait_for(3)
        for d in dispatchers:
            await d.idle()
    finally:
        for d in dispatchers:
            await d.stop()
        await ingress.stop()
        await producer.stop()
    assert sorted(e["id"] for e in processor.events) == ["o0", "o1", "o2"]
    assert processor.events[0].get_data() == {"qty": 2}
    assert sorted(e["id"] for e in display.events) == ["r-o0", "r-o1", "r-o2"]
    assert sorted(e.get_data()["from"] for e in display.events) == ["o0", "o1", "o2"]
