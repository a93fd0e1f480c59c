"""One program run for a ContainerSource and started again whenever it exits, as a Deployment's pod is
(restartPolicy Always), with CrashLoopBackOff's doubling wait between starts; output appended to its log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from wisp.serving.workloads.container import start_logged
from wisp.serving.workloads.stopping import terminate_then_kill
from wisp.serving.workloads.types import WorkloadError

log = logging.getLogger("wisp.eventing")

# Kubernetes waits 10 s doubling to 5 min; one machine restarts sooner, with the same cap.
RESTART_FIRST_WAIT = 1.0
RESTART_MAX_WAIT = 300.0
# A run this long resets the wait (Kubernetes: 10 minutes).
RESTART_RESET_AFTER = 600.0


@dataclass(frozen=True)
class Program:
    argv: tuple[str, ...]
    cwd: Path
    env: tuple[tuple[str, str], ...]
    log_path: Path
    grace: float = 30.0  # terminationGracePeriodSeconds


class ContainerRunner:
    def __init__(self, name: str, program: Program, changed: Callable[[], None],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """`changed()` is called whenever the program starts, exits or cannot start (the status to refresh)."""
        self.name = name
        self.program = program
        self.running = False
        self.restarts = 0
        self.last_exit: int | None = None
        self.error = ""
        self._changed = changed
        self._sleep = sleep
        self._monotonic = monotonic
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._exited: asyncio.Future[int] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"containersource {self.name}")

    async def _supervise(self) -> None:
        wait = RESTART_FIRST_WAIT
        while True:
            started = self._monotonic()
            try:
                proc = await start_logged(list(self.program.argv), self.name, self.program.log_path,
                                          dict(self.program.env), self.program.cwd)
            except WorkloadError as exc:
                self.error = str(exc)
                self._changed()
            else:
                self._proc, self.running, self.error = proc, True, ""
                self._exited = asyncio.ensure_future(proc.wait())
                self._changed()
                code = await self._exited
                self.running, self.last_exit = False, code
                self.restarts += 1
                log.warning("containersource %s exited with %s; starting it again in %.0f s", self.name, code, wait)
                self._changed()
                if self._monotonic() - started >= RESTART_RESET_AFTER:
                    wait = RESTART_FIRST_WAIT
            await self._sleep(wait)
            wait = min(wait * 2, RESTART_MAX_WAIT)

    def _signal(self, sig: int) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        exited = self._exited
        if exited is not None and not exited.done():
            await terminate_then_kill(self._signal, exited, self.program.grace)
        self._signal(signal.SIGKILL)  # anything the program left in its group
        self.running = False
