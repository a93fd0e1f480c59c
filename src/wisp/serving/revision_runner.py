"""Keeps one revision's instances at the desired count: spawns, probes, replaces the dead, drains the extra."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import string
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from wisp.api.timestamps import rfc3339
from wisp.http_client.pool import UpstreamPool
from wisp.net import free_port
from wisp.serving.instance_limit import InstanceBudget
from wisp.serving.node_resources import NodeResources, Requests
from wisp.serving.reasons import public_reason
from wisp.serving.routing import RevisionKey
from wisp.serving.throttler import Slot, Throttler
from wisp.serving.workloads.log_rotation import LogLimits, cap_while_running, rotate
from wisp.serving.workloads.logs import tail_text
from wisp.serving.workloads.probe import Failures, probe_until, watch
from wisp.serving.workloads.types import ContainerMissing, Instance, Runtime, WorkloadError
from wisp.types import Clock

log = logging.getLogger("wisp.serving")

_POD_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
# How long an instance may take to become ready before it counts as failed.
READY_TIMEOUT = 60.0
# Crash-loop backoff, as the kubelet does it: doubled per consecutive failure, capped.
BACKOFF_START, BACKOFF_MAX = 0.2, 30.0
# The grace a container stopped for a failed probe gets to exit on SIGTERM (the kubelet's default is 30 s).
PROBE_KILL_GRACE = 30.0


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
    counted: bool = True  # holds one unit of the machine's InstanceBudget until it is forgotten
    restart_reason: str | None = None  # set when a probe failed and the instance is being restarted in place
    last_termination: str | None = None  # why the previous container ended, when Kubernetes names it (OOMKilled)
    # Whether its resources.requests fit on the machine (node_resources.py); an unscheduled pod waits, Pending.
    unschedulable: str | None = None
    held: Requests = field(default_factory=Requests)

    @property
    def ready(self) -> bool:
        return self.slot.ready


def _oom_killed(instance: Instance) -> bool:
    check = getattr(instance, "oom_killed", None)  # instances in a memory cgroup of their own can tell
    return bool(check()) if check is not None else False


@dataclass(frozen=True)
class PodEvent:
    pod: str
    type: str
    reason: str
    message: str


MAX_POD_EVENTS = 100


@dataclass(frozen=True)
class Shortfall:
    """The machine-wide instance limit left the revision fewer instances than it wants."""

    wanted: int
    got: int
    limit: str  # the limit and how it was set, from InstanceBudget.describe()

    @property
    def message(self) -> str:
        return (f"wanted {self.wanted} instance{'s' if self.wanted != 1 else ''}, got {self.got}: {self.limit} "
                "is reached (raise it with `wisp up --max-instances N`)")


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
    budget: InstanceBudget
    desired: int = 1
    node: NodeResources | None = None  # the machine's allocatable CPU/memory, for instances with requests
    log_limits: LogLimits = field(default_factory=LogLimits)
    pods: list[Pod] = field(default_factory=list)
    health: RevisionHealth = field(default_factory=RevisionHealth)
    shortfall: Shortfall | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _failures: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _stopping: bool = False
    _refused_for_limit: bool = False
    # Whether some Route targets the revision. When none does and it has no instance, its runtime is released
    # (a function's template and spare stop); a request or a Route brings it back.
    reachable: bool = True
    # Makes the runtime that replaces a released one (a stopped template is not restarted in place). None: the
    # runtime is never released, as it holds nothing at zero (a container's).
    new_runtime: Callable[[], Runtime] | None = None
    _runtime_up: bool = False
    _starting: asyncio.Task[None] | None = None
    # Warnings about pods (probe failures, OOM kills) not yet taken by the daemon's event recorder; bounded.
    pod_events: deque[PodEvent] = field(default_factory=lambda: deque(maxlen=MAX_POD_EVENTS))
    _releasing: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.desired == 0 and not self.reachable and self.new_runtime is not None:
            # No Route targets it (the daemon restarted): the runtime starts when a request or a Route needs it.
            self._set_health(RevisionHealth(True, "", ""))
            self._task = asyncio.create_task(self._converge_loop(), name=f"converge {self.key[1]}")
            return
        try:
            await self._start_runtime()
        except WorkloadError as exc:
            self._set_health(RevisionHealth(False, exc.reason, str(exc), failed=True))
            self._refuse(str(exc))
            self._record_failure(str(exc))
            return
        if self.desired == 0:
            # Initial scale 0: nothing to probe, the revision is ready to be scaled from zero.
            self._set_health(RevisionHealth(True, "", ""))
        self._task = asyncio.create_task(self._converge_loop(), name=f"converge {self.key[1]}")

    async def stop(self) -> None:
        """Drain every instance (each finishes its in-flight requests), then stop the runtime."""
        self._stopping = True
        # Requests still waiting for an instance will not get one from this runner (the revision is removed or
        # replaced): answer them now rather than at their deadline.
        for pod in self.pods:
            self.throttler.remove(pod.slot)
        self.throttler.refuse(f"revision {self.key[1]} is being stopped")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(self._terminate(pod) for pod in list(self.pods)), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._starting is not None:
            self._starting.cancel()
        await asyncio.gather(*(t for t in (self._starting, self._releasing) if t is not None), return_exceptions=True)
        await self.runtime.stop()
        for pod in list(self.pods):  # draining when we stopped (the drain task was cancelled): no waiting more
            if pod.instance is not None:
                pod.instance.kill()
            self._forget(pod)

    def kill_all(self) -> None:
        """SIGKILL every instance (no drain); they are then forgotten as they exit."""
        for pod in self.pods:
            if pod.instance is not None:
                pod.instance.kill()

    def set_desired(self, count: int) -> None:
        if count != self.desired:
            self.desired = count
            if count == 0 and self._task is not None:
                # Nothing is failing at zero: the next request is held for a fresh start, not refused.
                self._hold()
            if self._task is not None and not self._stopping:
                # Scaling up starts instances now, ahead of whatever else the loop has queued (a request
                # may be held at zero waiting for them); the converge loop then finds nothing to add.
                self._spawn_missing()
            self._wake.set()

    def set_reachable(self, reachable: bool) -> None:
        """Whether some Route targets the revision. Once none does, its runtime is released as soon as it has no
        instance. Targeted again, the runtime starts at once: a routed revision at zero keeps its template, which
        is what makes its cold start a fork."""
        if reachable == self.reachable:
            return
        self.reachable = reachable
        if reachable and self._task is not None and not self._stopping and not self._runtime_up:
            self._background(self._warm())
        self._wake.set()

    @property
    def runtime_running(self) -> bool:
        return self._runtime_up

    @property
    def ready_count(self) -> int:
        return sum(1 for p in self.pods if p.ready)

    @property
    def live_count(self) -> int:
        return sum(1 for p in self.pods if p.phase in ("Pending", "Running"))

    # -- the runtime ---------------------------------------------------------------------------------
    async def _start_runtime(self) -> None:
        await self.runtime.start()
        self._runtime_up = True

    async def _ensure_runtime(self) -> None:
        """The runtime, started again if it was released (every spawn that needs it waits for one start)."""
        while not self._runtime_up:
            releasing = self._releasing
            if releasing is not None:
                await asyncio.shield(releasing)
                continue
            if self._starting is None:
                self._starting = asyncio.create_task(self._start_runtime(), name=f"start {self.key[1]}")
                self._starting.add_done_callback(self._started)
            await asyncio.shield(self._starting)  # its WorkloadError fails each spawn waiting for it

    def _started(self, task: asyncio.Task[None]) -> None:
        if self._starting is task:
            self._starting = None
        if not task.cancelled():
            task.exception()  # seen by the spawns that waited; none may have (they were cancelled)
        self._wake.set()  # started for a Route that has gone since: it may be released again

    async def _warm(self) -> None:
        try:
            await self._ensure_runtime()
        except WorkloadError as exc:
            if not self.pods:  # a spawn waiting for the same start reports it otherwise
                self._set_health(RevisionHealth(False, exc.reason, str(exc), failed=True))
                self._refuse(str(exc))
                self._record_failure(str(exc))

    def _should_release(self) -> bool:
        return (not self.reachable and self.desired == 0 and not self.pods and self._runtime_up
                and self.new_runtime is not None and not self._stopping
                and self._starting is None and self._releasing is None)

    async def _release(self) -> None:
        """Stop the runtime of a revision no Route targets and with no instance (a function's template and its
        spare: their processes, memory and the daemon's fds); a fresh one starts when it is needed again."""
        assert self.new_runtime is not None
        self._runtime_up = False
        released, self.runtime = self.runtime, self.new_runtime()
        log.info("%s/%s: no route targets it and it has no instance: its runtime is stopped", *self.key)
        try:
            await released.stop()
        except Exception:
            log.exception("%s/%s: stopping its runtime failed", *self.key)
        finally:
            self._releasing = None

    # -- converge --------------------------------------------------------------------------------
    async def _converge_loop(self) -> None:
        while True:
            self._wake.clear()
            self._schedule_waiting()
            live = [p for p in self.pods if p.phase in ("Pending", "Running")]
            if len(live) < self.desired:
                self._spawn_missing()
            else:
                self._set_shortfall(None)
            if len(live) > self.desired:
                # Idle instances go first, then the least busy; the newest first among equals.
                extra = sorted(live, key=lambda p: (p.ready, p.slot.in_flight, -p.created))
                for pod in extra[: len(live) - self.desired]:
                    self._background(self._terminate(pod))
            if self._should_release():
                self._releasing = asyncio.create_task(self._release(), name=f"release {self.key[1]}")
            await self._wake.wait()

    def _spawn_missing(self) -> None:
        missing = self.desired - self.live_count
        # Bounded by the machine's limit, not by `desired` (which a manifest may set to a million).
        while missing > 0 and self.budget.take():
            self._spawn_soon()
            missing -= 1
        if missing <= 0:
            self._set_shortfall(None)
            return
        self._set_shortfall(Shortfall(self.desired, self.live_count, self.budget.describe()))
        self.budget.wait_for_room(self._wake.set)
        if self.ready_count == 0 and self.live_count == 0 and self.shortfall is not None:
            self._refuse(self.shortfall.message, limit=True)

    def _spawn_soon(self) -> None:
        suffix = "".join(secrets.choice(_POD_SUFFIX_ALPHABET) for _ in range(5))
        name = f"{self.key[1]}-deployment-{suffix}"
        slot, port = self._fresh_slot(name)
        pod = Pod(name, self.key, self.clock(), slot, self.log_dir / f"{name}.log")
        self.pods.append(pod)
        if self._schedule(pod):
            self._background(self._run_pod(pod, port))

    def _fresh_slot(self, pod_name: str) -> tuple[Slot, int]:
        """A slot on a port of its own: each start of a pod's instance listens on a new one."""
        port = free_port()
        return Slot(pod_name, UpstreamPool("127.0.0.1", port), self.throttler.capacity), port

    def _requests(self) -> Requests:
        spec = self.runtime.spec
        return Requests(spec.requests_cpu_millis, spec.requests_memory)

    def _schedule(self, pod: Pod) -> bool:
        """Place the pod's requests on the machine; if they do not fit it stays Pending, unschedulable, and is
        tried again when room is given back (the scheduler's FailedScheduling, reported once per pod)."""
        asked = self._requests()
        if self.node is None or not asked:
            pod.unschedulable = None
            return True
        if self.node.take(asked):
            pod.held, pod.unschedulable = asked, None
            self.on_change()
            return True
        if pod.unschedulable is None:
            pod.unschedulable = self.node.why_not(asked)
            self._pod_event(pod, "FailedScheduling", pod.unschedulable)
        self.node.wait_for_room(self._wake.set)
        return False

    def _schedule_waiting(self) -> None:
        for pod in [p for p in self.pods if p.unschedulable is not None and p.phase == "Pending"]:
            if not self._schedule(pod):
                return  # first come, first placed
            pod.slot.pool.close()
            pod.slot, port = self._fresh_slot(pod.name)
            self._background(self._run_pod(pod, port))

    async def _run_pod(self, pod: Pod, port: int) -> None:
        while await self._run_instance(pod, port):
            # A failed startup or liveness probe: the kubelet restarts the container in place — same pod, its
            # restart count one higher, after the crash-loop backoff — and so does wisp (on a new port).
            if pod.instance is not None:
                await asyncio.wait([pod.instance.exited])  # stopped by `_restart`, within its grace
            pod.restarts += 1
            pod.restart_reason = None
            self.throttler.remove(pod.slot)
            pod.slot.pool.close()
            pod.slot, port = self._fresh_slot(pod.name)
            pod.instance = None
            pod.phase = "Pending"
            self.on_change()
            await asyncio.sleep(min(BACKOFF_MAX, BACKOFF_START * 2 ** (pod.restarts - 1)))

    async def _run_instance(self, pod: Pod, port: int) -> bool:
        """One instance of the pod, from spawn to exit; True when a probe asks for it to be restarted in place."""
        try:
            if self._failures:
                await asyncio.sleep(min(BACKOFF_MAX, BACKOFF_START * 2 ** (self._failures - 1)))
            await self._ensure_runtime()
            if pod.phase != "Pending":  # terminated while waiting
                return False
            pod.instance = await self.runtime.spawn(pod.name, port, pod.log_path)
            if pod.phase != "Pending":  # terminated while it was being spawned: nobody else will stop it
                pod.instance.kill()
                return False
            self.throttler.add(pod.slot)
            startup = self.runtime.spec.startup
            started = startup is None or await probe_until(port, startup, pod.instance, pod.instance.exited)
            if startup is not None and not started and not pod.instance.exited.done() and pod.phase == "Pending":
                return self._restart(pod, f"startup probe failed {startup.failure_threshold} times")
            await pod.instance.wait_ready(READY_TIMEOUT)
        except WorkloadError as exc:
            self._failures += 1
            was_pending = pod.phase == "Pending"
            pod.phase = "Failed"
            if pod.instance is not None:
                pod.instance.kill()
            self._forget(pod)
            if not was_pending:  # terminated while starting: not a failure of the revision
                return False
            if isinstance(exc, ContainerMissing):
                reason = exc.reason
            else:
                reason = "ExitCode" if "exit" in str(exc) else "ProgressDeadlineExceeded"
            self._set_health(RevisionHealth(False, reason, str(exc), failed=True))
            if self.ready_count == 0:
                self._refuse(str(exc))  # starting fails: answer held requests rather than hold them
            if pod.instance is None:  # no instance, so no instance log says why (a template that cannot load)
                self._record_failure(str(exc))
            else:
                log.warning("instance %s failed to start: %s", pod.name, exc)
            self._wake.set()
            return False
        if pod.phase != "Pending":  # terminated while starting
            return False
        pod.phase = "Running"
        self._failures = 0
        self._hold()
        self.throttler.mark_ready(pod.slot)
        self._set_health(RevisionHealth(True, "", ""))
        watchers = self._watch_probes(pod, port)
        try:
            await cap_while_running(pod.log_path, self.log_limits, pod.instance.exited, self.clock)
        finally:
            for watcher in watchers:
                watcher.cancel()
        status = pod.instance.exited.result()
        if pod.phase == "Running" and pod.restart_reason is None and _oom_killed(pod.instance):
            # The kernel killed it for going over its memory limit: Kubernetes' OOMKilled, restarted in place.
            pod.last_termination = "OOMKilled"
            pod.restart_reason = "OOMKilled"
            log.warning("instance %s was killed for going over its memory limit (OOMKilled); restarting it",
                        pod.name)
            self._note_in_log(pod, "OOMKilled: the instance went over its memory limit; the container is restarted")
            self._pod_event(pod, "OOMKilled", "container user-container went over its memory limit and was killed; "
                                              "it is restarted")
        if pod.phase == "Running" and pod.restart_reason is not None:
            return True
        if pod.phase == "Running":  # died on its own
            pod.phase = "Failed"
            self._forget(pod)
            lines = tail_text(pod.log_path, 10)
            log.warning("instance %s exited with status %s", pod.name, status)
            self._failures += 1
            if self.ready_count == 0:
                self._set_health(RevisionHealth(
                    False, "ExitCode", f"instance exited with status {status}\nlast log lines:\n{lines}", failed=True
                ))
            self._wake.set()
        return False

    def take_events(self) -> list[PodEvent]:
        """What happened to the pods since the last call (for the daemon's core/v1 Events), oldest first."""
        events = list(self.pod_events)
        self.pod_events.clear()
        return events

    def _pod_event(self, pod: Pod, reason: str, message: str) -> None:
        self.pod_events.append(PodEvent(pod.name, "Warning", reason, message))
        self.on_change()

    def _restart(self, pod: Pod, reason: str) -> bool:
        """Stop the pod's instance for a restart in place (a probe failed); True, for `_run_instance` to return."""
        pod.restart_reason = reason
        pod.slot.ready = False  # no new request for it
        log.warning("instance %s: %s; restarting it", pod.name, reason)
        self._note_in_log(pod, f"{reason}; the container is restarted")
        self._pod_event(pod, "Unhealthy", f"{reason}; container user-container will be restarted")
        if pod.instance is not None:
            self._background(pod.instance.terminate(min(self.drain_seconds, PROBE_KILL_GRACE)))
        return True

    def _watch_probes(self, pod: Pod, port: int) -> list[asyncio.Task[None]]:
        """Liveness (restart after failureThreshold failures in a row) and a declared readiness probe (out of
        the throttler's rotation after failureThreshold failures, back at the next success) for the instance's
        life."""
        instance = pod.instance
        assert instance is not None
        spec = self.runtime.spec
        tasks: list[asyncio.Task[None]] = []
        liveness = spec.liveness
        if liveness is not None:
            failures = Failures(liveness.failure_threshold)

            def on_liveness(ok: bool) -> bool:
                if failures.record(ok) and pod.phase == "Running":
                    self._restart(pod, f"liveness probe failed {failures.threshold} times")
                    return False
                return pod.phase == "Running"

            tasks.append(asyncio.create_task(watch(port, liveness, instance, instance.exited, on_liveness)))
        readiness = spec.probe
        if readiness.declared:
            unready = Failures(readiness.failure_threshold)
            # After start, a period of 0 (Knative's "probe aggressively") is 1 s: an instance is not polled 20 times
            # a second for the rest of its life.
            after_start = replace(readiness, period=max(readiness.period, 1.0), initial_delay=0.0)

            def on_readiness(ok: bool) -> bool:
                if pod.phase != "Running" or pod.restart_reason is not None:
                    return False
                if unready.record(ok):
                    pod.slot.ready = False
                    self.on_change()
                elif ok and not pod.slot.ready:
                    self.throttler.mark_ready(pod.slot)
                    self.on_change()
                return True

            tasks.append(asyncio.create_task(watch(port, after_start, instance, instance.exited, on_readiness)))
        return tasks

    def _note_in_log(self, pod: Pod, message: str) -> None:
        with contextlib.suppress(OSError), os.fdopen(
                os.open(pod.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as f:
            f.write(f"{rfc3339(self.clock())} wisp: {message}\n")

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
            if not self.pods:
                self._wake.set()  # the last one: the runtime may be released now
        if pod.counted:
            pod.counted = False
            self.budget.give_back()
        if pod.held and self.node is not None:
            held, pod.held = pod.held, Requests()
            self.node.give_back(held)
        self.on_change()

    def _record_failure(self, message: str) -> None:
        """A failure no instance log holds goes to the daemon's log and to the revision's own log file,
        which `wisp logs` shows beside its instances' (prefixed with the revision's name)."""
        log.warning("revision %s/%s failed to start: %s", *self.key, message)
        stamp = rfc3339(self.clock())
        path = self.log_dir / f"{self.key[1]}.log"
        with contextlib.suppress(OSError):
            if path.stat().st_size > self.log_limits.max_bytes:  # a crash loop must not fill the disk either
                rotate(path)
        with contextlib.suppress(OSError), os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
                                                     "a") as f:
            f.write(f"{stamp} wisp: revision {self.key[1]} failed to start: {message}\n")

    def _refuse(self, message: str, limit: bool = False) -> None:
        """Requests held for this revision (and new ones, until an instance is ready) get a short reason."""
        name = self.key[1]
        self.throttler.refuse(f"{public_reason(message)} (details: `wisp describe revision {name}`)")
        self._refused_for_limit = limit

    def _hold(self) -> None:
        """Hold requests again while no instance is ready (an instance is starting, or will on demand)."""
        self.throttler.refuse(None)
        self._refused_for_limit = False

    def _set_shortfall(self, shortfall: Shortfall | None) -> None:
        if shortfall != self.shortfall:
            if shortfall is None and self._refused_for_limit:
                self._hold()  # room again: requests are held for the instance that starts
            self.shortfall = shortfall
            self.on_change()

    def _background(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_health(self, health: RevisionHealth) -> None:
        if health != self.health:
            self.health = health
            self.on_change()
