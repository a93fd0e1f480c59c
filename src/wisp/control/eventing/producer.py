"""The one Kafka producer every Kafka-class Broker's ingress writes with, started on the first such Broker."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer


class SharedProducer:
    def __init__(self) -> None:
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()  # two Brokers reconciled at once start one producer, not two

    async def get(self, bootstrap_servers: str) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
                await producer.start()
                self._producer = producer
            return self._producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
