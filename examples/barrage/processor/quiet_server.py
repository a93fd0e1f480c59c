"""uvicorn's server without its 10 Hz main loop, so an idle instance costs (almost) no CPU.

uvicorn's `main_loop` wakes every 0.1 s to look for a shutdown request (about 0.1 % of a core for an instance
that serves nothing). This one wakes once a second, which is how often uvicorn refreshes the Date header, and
a SIGTERM or SIGINT wakes it at once; everything else (drain, the signal re-raised after it) is uvicorn's.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import FrameType

import uvicorn

TICKS_PER_SECOND = 10  # uvicorn's on_tick counts 0.1 s ticks and refreshes the Date header every 10th


class QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit = asyncio.Event()

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + TICKS_PER_SECOND) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:  # called from a signal handler: hand the wake-up to the loop
            self._loop.call_soon_threadsafe(self._exit.set)
