"""The running side of Serving: per revision a runner, a throttler and a KPA autoscaler.

The ingress looks throttlers up here. One ticker drives every revision's autoscaler each
`tick_interval` seconds; a request that finds no ready instance pokes its autoscaler at once. A revision at
zero with no request is not ticked (nothing could change); while no revision needs ticks, the ticker
sleeps without a timer until a poke, a new revision or a settings change wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wisp.api.autoscaling import ScalingSpec
from wisp.serving.autoscaler import Decision, RevisionAutoscaler
from wisp.serving.ingress import Timeouts
from wisp.serving.instance_limit import InstanceBudget, this_machine
from wisp.serving.node_resources import NodeResources
from wisp.serving.revision_runner import RevisionHealth, RevisionRunner
from wisp.serving.routing import RevisionKey
from wisp.serving.throttler import Throttler, ThrottlerHooks
from wisp.serving.workloads.log_rotation import LogLimits
from wisp.serving.workloads.types import Runtime, WorkloadSpec
from wisp.types import Clock

log = logging.getLogger("wisp.autoscaler")


@dataclass(frozen=True)
class RevisionSettings:
    """What the data plane needs beyond the workload itself."""

    container_concurrency: int
    queue_depth: int
    timeouts: Timeouts
    scaling: ScalingSpec = field(default_factory=ScalingSpec)
    reachable: bool = True  # some Route targets it (control/routing_state.py)
    h2c: bool = False  # its container port is named h2c: instances are spoken to in HTTP/2 (`speaks_h2c`)

    @property
    def start_scale(self) -> int:
        if not self.reachable:
            return 0  # nothing can send it a request: min-scale and initial scale do not apply
        scaling = self.scaling
        start = max(scaling.min_scale, scaling.initial_scale)
        return min(start, scaling.max_scale) if scaling.max_scale else start


@dataclass(eq=False)
class _Revision:
    spec: WorkloadSpec
    settings: RevisionSettings
    runner: RevisionRunner
    throttler: Throttler
    autoscaler: RevisionAutoscaler | None  # None when the class is not KPA: a fixed scale


def speaks_h2c(container: Mapping[str, Any]) -> bool:
    """Knative's rule: a serving container whose (first) port is named `h2c` is spoken to in HTTP/2 over
    cleartext; `http1` or no name, HTTP/1.1. wisp applies it to container instances; a function is served by
    wisp's own HTTP/1.1 server whatever its port says."""
    ports = container.get("ports") or []
    return bool(ports) and isinstance(ports[0], Mapping) and ports[0].get("name") == "h2c"


class DataPlane:
    def __init__(
        self,
        runtime_factory: Callable[[WorkloadSpec], Runtime],
        log_root: Path,
        clock: Clock,
        on_change: Callable[[RevisionKey], None],
        tick_interval: float = 2.0,
        budget: InstanceBudget | None = None,
        node: NodeResources | None = None,
        log_limits: LogLimits | None = None,
    ) -> None:
        self._runtime_factory = runtime_factory
        # One budget for every revision: the limit is the machine's, not a revision's.
        self.budget = budget if budget is not None else InstanceBudget(this_machine())
        # The machine's allocatable CPU and memory, against instances' resources.requests (None: not scheduled).
        self.node = node
        self._log_limits = log_limits or LogLimits()
        self._log_root = log_root
        self._clock = clock
        self._on_change = on_change
        self._tick_interval = tick_interval
        self._revisions: dict[RevisionKey, _Revision] = {}
        self._ticker: asyncio.Task[None] | None = None
        # Runners being stopped after their revision was removed: a daemon stop waits for them too (a removal's
        # caller may be cancelled mid-drain, which must not leave its instances running).
        self._removing: set[asyncio.Future[None]] = set()
        self._wake = asyncio.Event()  # set when a revision may need ticks again

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_loop(), name="autoscaler ticks")

    async def stop(self) -> None:
        """Stop scaling, then drain and stop every revision at once (each instance drains on its own)."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await asyncio.gather(*(self.remove(k) for k in list(self._revisions)), return_exceptions=True)
        await asyncio.gather(*self._removing, return_exceptions=True)

    # -- the ingress's view ----------------------------------------------------------------------
    def backend(self, key: RevisionKey) -> tuple[Throttler, Timeouts] | None:
        revision = self._revisions.get(key)
        return None if revision is None else (revision.throttler, revision.settings.timeouts)

    # -- the reconciler's view -------------------------------------------------------------------
    async def ensure(self, key: RevisionKey, spec: WorkloadSpec, settings: RevisionSettings) -> None:
        """Run the revision with this spec (idempotent); a different spec replaces the old runner."""
        current = self._revisions.get(key)
        if current is not None and current.spec == spec:
            if current.settings != settings:
                self._update_settings(current, settings)
            if spec.volumes and [v.files for v in spec.volumes] != [v.files for v in current.spec.volumes]:
                await self._update_volumes(current, spec)
            return
        if current is not None:
            await self.remove(key)
        now = self._clock()
        autoscaler = RevisionAutoscaler(settings.scaling, now) if settings.scaling.supported else None
        if autoscaler is not None:
            autoscaler.reachable = settings.reachable
        throttler = Throttler(settings.container_concurrency, settings.queue_depth, h2c=settings.h2c)
        runner = RevisionRunner(
            key=key, runtime=self._runtime_factory(spec), throttler=throttler,
            log_dir=self._log_root / key[0] / key[1], clock=self._clock,
            on_change=lambda: self._on_change(key), drain_seconds=settings.timeouts.total,
            budget=self.budget, node=self.node, desired=settings.start_scale, log_limits=self._log_limits,
            reachable=settings.reachable,
            # Only a function holds processes at zero (its template and spare), released while unrouted; a
            # container holds none, and an OCI one would pay `podman info` again at its next start.
            new_runtime=(lambda: self._runtime_factory(spec)) if spec.workload_class == "function" else None,
        )
        revision = _Revision(spec, settings, runner, throttler, autoscaler)
        if autoscaler is not None:
            throttler.hooks = self._hooks(key, revision, autoscaler)
        self._revisions[key] = revision
        self._wake.set()
        await runner.start()
        self._on_change(key)

    @staticmethod
    async def _update_volumes(revision: _Revision, spec: WorkloadSpec) -> None:
        """A Secret or ConfigMap a volume shows changed: its files are swapped under the running instances."""
        update = getattr(revision.runner.runtime, "update_volumes", None)
        if update is not None:
            await update(spec)
        revision.spec = spec

    async def remove(self, key: RevisionKey) -> None:
        revision = self._revisions.pop(key, None)
        if revision is not None:
            stopping = asyncio.ensure_future(revision.runner.stop())
            self._removing.add(stopping)
            stopping.add_done_callback(self._removing.discard)
            await asyncio.shield(stopping)

    def kill_instances(self) -> None:
        """SIGKILL every instance now (a second Ctrl-C): a stop then has no drain to wait for."""
        for revision in self._revisions.values():
            revision.runner.kill_all()

    def health(self, key: RevisionKey) -> RevisionHealth | None:
        revision = self._revisions.get(key)
        return None if revision is None else revision.runner.health

    def runner(self, key: RevisionKey) -> RevisionRunner | None:
        revision = self._revisions.get(key)
        return None if revision is None else revision.runner

    def runners(self) -> list[RevisionRunner]:
        return [r.runner for r in self._revisions.values()]

    def last_decision(self, key: RevisionKey) -> Decision | None:
        revision = self._revisions.get(key)
        if revision is None or revision.autoscaler is None:
            return None
        return revision.autoscaler.last_decision

    def scaling(self, key: RevisionKey) -> ScalingSpec | None:
        revision = self._revisions.get(key)
        return None if revision is None else revision.settings.scaling

    def reachable(self, key: RevisionKey) -> bool | None:
        revision = self._revisions.get(key)
        return None if revision is None else revision.settings.reachable

    def keys(self) -> list[RevisionKey]:
        return list(self._revisions)

    # -- autoscaling -----------------------------------------------------------------------------
    def _hooks(self, key: RevisionKey, revision: _Revision, autoscaler: RevisionAutoscaler) -> ThrottlerHooks:
        clock = self._clock

        def on_cold() -> None:
            # Activator: a request is waiting and nothing is ready; scale now, not at the next tick.
            self._apply(key, revision, autoscaler.poke(clock()))

        return ThrottlerHooks(
            on_cold=on_cold,
            on_start=lambda: autoscaler.record_start(clock()),
            on_finish=lambda: autoscaler.record_finish(clock()),
        )

    def _update_settings(self, revision: _Revision, settings: RevisionSettings) -> None:
        if settings.reachable != revision.settings.reachable:
            revision.runner.set_reachable(settings.reachable)
            if revision.autoscaler is not None:
                revision.autoscaler.reachable = settings.reachable
            self._wake.set()  # unrouted: the next tick takes it to zero; routed again: min-scale is back
        revision.settings = settings
        revision.throttler.set_h2c(settings.h2c)
        revision.throttler.set_capacity(settings.container_concurrency)
        revision.throttler.queue_depth = settings.queue_depth
        if revision.autoscaler is not None and settings.scaling.supported:
            revision.autoscaler.update_spec(settings.scaling)
            self._wake.set()  # a min-scale may have appeared

    @staticmethod
    def _needs_tick(revision: _Revision) -> bool:
        autoscaler = revision.autoscaler
        return autoscaler is not None and not autoscaler.idle_at_zero(len(revision.runner.pods))

    def tick(self) -> None:
        """One autoscaler round over every revision that needs one (the ticker calls it; tests may too)."""
        now = self._clock()
        for key, revision in list(self._revisions.items()):
            if revision.autoscaler is None:
                continue
            if self._needs_tick(revision):
                self._apply(key, revision, revision.autoscaler.tick(now, revision.runner.ready_count))

    def _apply(self, key: RevisionKey, revision: _Revision, decision: Decision) -> None:
        runner = revision.runner
        if decision.desired != runner.desired:
            log.info("%s/%s: %s (was %d)", key[0], key[1], decision.describe(), runner.desired)
            runner.set_desired(decision.desired)
            self._wake.set()  # a poke at zero: the revision needs ticks from now on
            self._on_change(key)

    async def _tick_loop(self) -> None:
        while True:
            if not any(self._needs_tick(r) for r in self._revisions.values()):
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(self._tick_interval)
            try:
                self.tick()
            except Exception:  # one bad tick must not stop scaling for good
                log.exception("autoscaler tick failed")
