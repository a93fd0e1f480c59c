"""The Kafka wisp itself uses (Kafka-class brokers, workloads' KAFKA_BOOTSTRAP_SERVERS, the local default).

Either the user's cluster (`wisp up --kafka HOST:PORT`) or a local Tansu broker started on first need.
Tansu keeps everything in memory: a restarted wisp starts with an empty local Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from wisp.eventing.local_kafka import LocalKafka

log = logging.getLogger("wisp.eventing")

LOCAL_HOST, LOCAL_PORT = "127.0.0.1", 9092


class KafkaCluster:
    def __init__(self, configured: str | None, log_file: Path, port: int = LOCAL_PORT) -> None:
        self._configured = configured
        self._local = LocalKafka(port, host=LOCAL_HOST, log_file=log_file)
        self._lock = asyncio.Lock()
        self._started_local = False

    @property
    def bootstrap_servers(self) -> str:
        return self._configured or self._local.bootstrap_servers

    @property
    def is_local(self) -> bool:
        return self._configured is None

    async def ensure(self) -> str:
        """The bootstrap servers, starting the local broker the first time it is needed."""
        if self._configured:
            return self._configured
        async with self._lock:
            if not self._started_local and not await self._already_listening():
                await self._local.start()
                self._started_local = True
        return self._local.bootstrap_servers

    async def _already_listening(self) -> bool:
        # A broker already on the port (a user's Kafka, or a Tansu left from an earlier run) is used as is.
        try:
            _, writer = await asyncio.open_connection(LOCAL_HOST, self._local.port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        log.info("using the Kafka already listening on %s", self._local.bootstrap_servers)
        return True

    async def stop(self) -> None:
        if self._started_local:
            await self._local.stop()
            self._started_local = False
