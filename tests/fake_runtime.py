"""A workload runtime whose instances are ready at once and run nothing: the control plane and the data plane's
bookkeeping measured or tested on their own (tests, and bench/serving_scale.py on any tree)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any


class FakeInstance:
    pid = 0

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def wait_ready(self, timeout: float) -> None:
        return None

    async def terminate(self, grace: float) -> None:
        self.kill()

    def kill(self) -> None:
        if not self.exited.done():
            self.exited.set_result(0)


class FakeRuntime:
    def __init__(self, spec: Any) -> None:
        self.spec = spec

    async def start(self) -> None:
        return None

    async def spawn(self, name: str, port: int, log_path: Path) -> FakeInstance:
        return FakeInstance(name, port)

    async def stop(self) -> None:
        return None
