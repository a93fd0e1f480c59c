"""`wisp up` as a subprocess, as a user runs it: free ports kept across restarts, output kept in a log file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from wisp.serving.revision_runner import free_port

WISP = Path(sys.executable).parent / "wisp"
SERVING_LINE = b"wisp is serving on"


class WispProcess:
    def __init__(self, manifests: Path, state_dir: Path, kafka: str, log: Path) -> None:
        self.manifests = manifests
        self.state_dir = state_dir
        self.kafka = kafka
        self.log = log
        self.port = free_port()
        self.api_port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def ingress(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    async def start(self, timeout: float = 90.0) -> None:
        """Returns once the daemon prints that it serves (its Services and KafkaSources are up or failed)."""
        self.process = await asyncio.create_subprocess_exec(
            str(WISP), "up", str(self.manifests), "--port", str(self.port), "--api-port", str(self.api_port),
            "--state-dir", str(self.state_dir), "--kafka", self.kafka,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        serving = asyncio.Event()
        self._pump = asyncio.create_task(self._copy_output(serving))
        try:
            async with asyncio.timeout(timeout):
                await asyncio.wait({asyncio.ensure_future(serving.wait()), self._pump},
                                   return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise AssertionError(f"wisp up did not start in {timeout} s; see {self.log}") from None
        if not serving.is_set():
            raise AssertionError(f"wisp up exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")

    async def _copy_output(self, serving: asyncio.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log.open("ab") as out:
            async for line in self.process.stdout:
                out.write(line)
                out.flush()
                if line.startswith(SERVING_LINE):
                    serving.set()

    async def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (the daemon drains), SIGKILL if it has not exited within `timeout`; the exit code."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self._finish()
        return 0 if self.process is None else self.process.returncode or 0

    async def kill(self) -> None:
        """SIGKILL: no drain, no commit, nothing flushed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        await self._finish()

    async def _finish(self) -> None:
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pump, 10)
            self._pump = None
