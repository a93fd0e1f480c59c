"""One JobSink's job runs: each event's job is its container run to completion as a local process, the event
at `/etc/jobsink-event/event` with `K_EVENT_PATH=/etc/jobsink-event`, as Knative mounts it. The mount is a
bubblewrap sandbox whose /etc is a tmpfs holding the real /etc's entries plus the event, so nothing is written
to the machine's /etc; where bubblewrap cannot run, K_EVENT_PATH names the private directory the event was
written to instead (programs that follow K_EVENT_PATH work either way). A failed run is retried up to the job's
`backoffLimit` (Kubernetes' default 6) with a doubling wait; `activeDeadlineSeconds` ends it; a finished job is
kept for `ttlSecondsAfterFinished` (or until the 1,000 newest are kept) so its state can be asked for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from pathlib import Path

from wisp.control.eventing.container_runner import Program
from wisp.eventing.job_sink import JobState, Submitted
from wisp.serving.workloads.container import start_logged
from wisp.serving.workloads.sandbox import unavailable as sandbox_unavailable
from wisp.serving.workloads.stopping import terminate_then_kill
from wisp.serving.workloads.types import WorkloadError

log = logging.getLogger("wisp.eventing")

EVENT_MOUNT = "/etc/jobsink-event"
# Kubernetes runs every Job at once; one machine runs this many per JobSink and queues the rest.
MAX_RUNNING = 4
MAX_WAITING = 1000
MAX_KEPT = 1000
RETRY_FIRST_WAIT = 1.0
RETRY_MAX_WAIT = 60.0


@dataclass(frozen=True)
class JobSpec:
    program: Program
    backoff_limit: int = 6
    active_deadline: float | None = None
    ttl_after_finished: float | None = None


@dataclass
class _Job:
    state: JobState = "running"
    attempts: int = 0


class JobRunner:
    def __init__(self, name: str, spec: JobSpec, work_dir: Path, sandbox: bool) -> None:
        """`sandbox`: mount the event with bubblewrap (sandbox_available())."""
        self.name = name
        self.spec = spec
        self._work_dir = work_dir
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._waiting: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._procs: set[asyncio.subprocess.Process] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._sandbox = sandbox
        self._settled = asyncio.Event()

    # -- JobLauncher ---------------------------------------------------------------------------------------
    def submit(self, job: str, event_json: bytes) -> Submitted:
        if job in self._jobs:
            return "exists"
        if len(self._waiting) >= MAX_WAITING:
            return "full"
        self._jobs[job] = _Job()
        self._waiting.append((job, event_json))
        self._wake.set()
        return "started"

    def state(self, job: str) -> JobState | None:
        found = self._jobs.get(job)
        return found.state if found is not None else None

    # -- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"jobsink {self.name} {i}")
                         for i in range(MAX_RUNNING)]

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in self._workers:
            task.cancel()
        for proc in list(self._procs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def idle(self) -> None:
        """Until no job waits or runs (for tests and drains): woken by each job's end."""
        while self._waiting or any(j.state == "running" for j in self._jobs.values()):
            self._settled.clear()
            await self._settled.wait()

    # -- running -------------------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            while not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            job, event_json = self._waiting.popleft()
            record = self._jobs.get(job)
            if record is None:
                continue
            try:
                record.state = await self._run(job, event_json, record)
            except Exception:  # a bug must not stop this worker: the job failed
                log.exception("jobsink %s: job %s", self.name, job)
                record.state = "failed"
            self._finished(job)
            self._settled.set()

    async def _run(self, job: str, event_json: bytes, record: _Job) -> JobState:
        directory = self._work_dir / job
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        event_file = directory / "event"
        with os.fdopen(os.open(event_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            out.write(event_json)
        program = self.spec.program
        if self._sandbox:
            program = replace(program, argv=(*sandboxed(directory, program.cwd), *program.argv))
        env = {**dict(program.env), "K_EVENT_PATH": EVENT_MOUNT if self._sandbox else str(directory)}
        log_path = program.log_path.parent / f"{job}.log"
        wait = RETRY_FIRST_WAIT
        try:
            async with asyncio.timeout(self.spec.active_deadline):
                while True:
                    record.attempts += 1
                    code = await self._once(job, program, env, log_path)
                    if code == 0:
                        return "complete"
                    if record.attempts > self.spec.backoff_limit:
                        log.warning("jobsink %s: job %s failed %d time(s), the last with %s", self.name, job,
                                    record.attempts, code)
                        return "failed"
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, RETRY_MAX_WAIT)
        except TimeoutError:
            log.warning("jobsink %s: job %s passed its activeDeadlineSeconds", self.name, job)
            return "failed"

    async def _once(self, job: str, program: Program, env: dict[str, str], log_path: Path) -> int:
        try:
            proc = await start_logged(list(program.argv), f"{self.name}/{job}", log_path, env, program.cwd)
        except WorkloadError:
            return -1
        self._procs.add(proc)
        exited = asyncio.ensure_future(proc.wait())
        try:
            return await asyncio.shield(exited)
        except asyncio.CancelledError:  # the deadline passed, or wisp stops: end the run, as a pod's kill
            await terminate_then_kill(lambda sig: _signal_group(proc.pid, sig), exited, program.grace)
            raise
        finally:
            self._procs.discard(proc)

    def _finished(self, job: str) -> None:
        finished = [name for name, j in self._jobs.items() if j.state != "running"]
        for name in finished[:max(0, len(finished) - MAX_KEPT)]:
            self._forget(name)
        ttl = self.spec.ttl_after_finished
        if ttl is not None:
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle

            def expire() -> None:
                self._timers.discard(handle)
                self._forget(job)

            handle = loop.call_later(ttl, expire)
            self._timers.add(handle)

    def _forget(self, job: str) -> None:
        self._jobs.pop(job, None)
        shutil.rmtree(self._work_dir / job, ignore_errors=True)


_BWRAP = shutil.which("bwrap")


async def sandbox_available() -> bool:
    """Can bubblewrap make a mount namespace here? The instances' sandbox check (run once per daemon)."""
    why = await asyncio.to_thread(sandbox_unavailable)
    if why is not None:
        log.warning("jobsink: %s; a job finds its event through K_EVENT_PATH only", why)
    return why is None


def sandboxed(event_dir: Path, cwd: Path) -> list[str]:
    """bwrap's arguments: the machine as it is, but /etc a tmpfs with the real entries and the event mounted."""
    assert _BWRAP is not None
    args = [_BWRAP, "--die-with-parent", "--dev-bind", "/", "/", "--tmpfs", "/etc"]
    with os.scandir("/etc") as entries:
        for entry in entries:
            if entry.is_symlink():
                args += ["--symlink", os.readlink(entry.path), entry.path]
            else:
                args += ["--dev-bind", entry.path, entry.path]
    return [*args, "--ro-bind", str(event_dir), EVENT_MOUNT, "--chdir", str(cwd), "--"]


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
