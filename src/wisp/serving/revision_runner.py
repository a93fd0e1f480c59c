"""Keeps one revision's instances at the desired count: spawns, probes, replaces the dead, drains the extra."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wisp.net import free_port
from wisp.serving.routing import RevisionKey
from wisp.serving.throttler import Slot, Throttler
from wisp.serving.upstream import UpstreamPool
from wisp.serving.workloads.logs import tail_text
from wisp.serving.workloads.types import Instance, Runtime, WorkloadError
from wisp.types import Clock

log = logging.getLogger("wisp.serving")

_POD_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
# How long an instance may take to become ready before it counts as failed.
READY_TIMEOUT = 60.0
# Crash-loop backoff, as the kubelet does it: doubled per consecutive failure, capped.
BACKOFF_START, BACKOFF_MAX = 0.2, 30.0


@dataclass(eq=False)
class Pod:
    """One instance and what the daemon knows of it (shown as a pod by `wisp get pods`)."""

    name: str
    revision: RevisionKey
    created: float
    slot: Slot
    log_path: Path
    instance: Instance | None = None
    phase: str = "Pending"  # Pending, Running, Terminating, Failed
    restarts: int = 0

    @property
    def ready(self) -> bool:
        return self.slot.ready


@dataclass
class RevisionHealth:
    """What the Revision's status conditions report."""

    ready: bool = False
    reason: str = "Deploying"
    message: str = ""
    failed: bool = False


@dataclass(eq=False)
class RevisionRunner:
    key: RevisionKey
    runtime: Runtime
    throttler: Throttler
    log_dir: Path
    clock: Clock
    on_change: Callable[[], None]
    drain_seconds: float
    desired: int = 1
    pods: list[Pod] = field(default_factory=list)
    health: RevisionHealth = field(default_factory=RevisionHealth)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _failures: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _stopping: bool = False

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            await self.runtime.start()
        except WorkloadError as exc:
            self._set_health(RevisionHealth(False, "WorkloadFailed", str(exc), failed=True))
            return
        if self.desired == 0:
            # Initial scale 0: nothing to probe, the revision is ready to be scaled from zero.
            self._set_health(RevisionHealth(True, "", ""))
        self._task = asyncio.create_task(self._converge_loop(), name=f"converge {self.key[1]}")

    async def stop(self) -> None:
        """Drain every instance (each finishes its in-flight requests), then stop the runtime."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(self._terminate(pod) for pod in list(self.pods)), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.runtime.stop()

    def set_desired(self, count: int) -> None:
        if count != self.desired:
            self.desired = count
            if self._task is not None and not self._stopping:
                # Scaling up starts instances now, ahead of whatever else the loop has queued (a request
                # may be held at zero waiting for them); the converge loop then finds nothing to add.
                self._spawn_missing()
            self._wake.set()

    @property
    def ready_count(self) -> int:
        return sum(1 for p in self.pods if p.ready)

    @property
    def live_count(self) -> int:
        return sum(1 for p in self.pods if p.phase in ("Pending", "Running"))

    # -- converge --------------------------------------------------------------------------------
    async def _converge_loop(self) -> None:
        while True:
            self._wake.clear()
            live = [p for p in self.pods if p.phase in ("Pending", "Running")]
            if len(live) < self.desired:
                self._spawn_missing()
            elif len(live) > self.desired:
                # Idle instances go first, then the least busy; the newest first among equals.
                extra = sorted(live, key=lambda p: (p.ready, p.slot.in_flight, -p.created))
                for pod in extra[: len(live) - self.desired]:
                    self._background(self._terminate(pod))
            await self._wake.wait()

    def _spawn_missing(self) -> None:
        for _ in range(self.desired - self.live_count):
            self._spawn_soon()

    def _spawn_soon(self) -> None:
        suffix = "".join(secrets.choice(_POD_SUFFIX_ALPHABET) for _ in range(5))
        name = f"{self.key[1]}-deployment-{suffix}"
        port = free_port()
        slot = Slot(name, UpstreamPool("127.0.0.1", port), self.throttler.capacity)
        pod = Pod(name, self.key, self.clock(), slot, self.log_dir / f"{name}.log")
        self.pods.append(pod)
        self._background(self._run_pod(pod, port))

    async def _run_pod(self, pod: Pod, port: int) -> None:
        try:
            if self._failures:
                await asyncio.sleep(min(BACKOFF_MAX, BACKOFF_START * 2 ** (self._failures - 1)))
            pod.instance = await self.runtime.spawn(pod.name, port, pod.log_path)
            self.throttler.add(pod.slot)
            await pod.instance.wait_ready(READY_TIMEOUT)
        except WorkloadError as exc:
            self._failures += 1
            pod.phase = "Failed"
            if pod.instance is not None:
                pod.instance.kill()
            self._forget(pod)
            self._set_health(RevisionHealth(False, "ExitCode" if "exit" in str(exc) else "ProgressDeadlineExceeded",
                                            str(exc), failed=True))
            log.warning("instance %s failed to start: %s", pod.name, exc)
            self._wake.set()
            return
        if pod.phase != "Pending":  # terminated while starting
            return
        pod.phase = "Running"
        self._failures = 0
        self.throttler.mark_ready(pod.slot)
        self._set_health(RevisionHealth(True, "", ""))
        status = await pod.instance.exited
        if pod.phase == "Running":  # died on its own
            pod.phase = "Failed"
            self._forget(pod)
            lines = tail_text(pod.log_path, 10)
            log.warning("instance %s exited with status %s", pod.name, status)
            self._failures += 1
            if self.ready_count == 0:
                self._set_health(RevisionHealth(
                    False, "ExitCode", f"instance exited with status {status}; last log lines:\n{lines}", failed=True
                ))
            self._wake.set()

    async def _terminate(self, pod: Pod) -> None:
        if pod.phase in ("Terminating", "Failed"):
            return
        pod.phase = "Terminating"
        self.throttler.remove(pod.slot)
        if pod.instance is not None:
            await pod.instance.terminate(self.drain_seconds)
        self._forget(pod)
        self.on_change()

    def _forget(self, pod: Pod) -> None:
        self.throttler.remove(pod.slot)
        pod.slot.pool.close()
        if pod in self.pods:
            self.pods.remove(pod)
        self.on_change()

    def _background(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_health(self, health: RevisionHealth) -> None:
        if health != self.health:
            self.health = health
            self.on_change()
