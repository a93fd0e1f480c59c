"""The running side of Serving: a runner and a throttler per revision, looked up by the ingress."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wisp.serving.ingress import Timeouts
from wisp.serving.revision_runner import RevisionHealth, RevisionRunner
from wisp.serving.routing import RevisionKey
from wisp.serving.throttler import Throttler
from wisp.serving.workloads.types import Runtime, WorkloadSpec
from wisp.types import Clock

log = logging.getLogger("wisp.serving")


@dataclass(frozen=True)
class RevisionSettings:
    """What the data plane needs beyond the workload itself."""

    container_concurrency: int
    queue_depth: int
    timeouts: Timeouts
    min_scale: int = 0
    initial_scale: int = 1

    @property
    def start_scale(self) -> int:
        return max(self.min_scale, self.initial_scale)


@dataclass(eq=False)
class _Revision:
    spec: WorkloadSpec
    settings: RevisionSettings
    runner: RevisionRunner
    throttler: Throttler


class DataPlane:
    def __init__(
        self,
        runtime_factory: Callable[[WorkloadSpec], Runtime],
        log_root: Path,
        clock: Clock,
        on_change: Callable[[RevisionKey], None],
    ) -> None:
        self._runtime_factory = runtime_factory
        self._log_root = log_root
        self._clock = clock
        self._on_change = on_change
        self._revisions: dict[RevisionKey, _Revision] = {}

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
                current.settings = settings
                current.throttler.set_capacity(settings.container_concurrency)
                current.throttler.queue_depth = settings.queue_depth
            return
        if current is not None:
            await self.remove(key)
        throttler = Throttler(settings.container_concurrency, settings.queue_depth)
        runner = RevisionRunner(
            key=key, runtime=self._runtime_factory(spec), throttler=throttler,
            log_dir=self._log_root / key[0] / key[1], clock=self._clock,
            on_change=lambda: self._on_change(key), drain_seconds=settings.timeouts.total,
            desired=settings.start_scale,
        )
        self._revisions[key] = _Revision(spec, settings, runner, throttler)
        await runner.start()
        self._on_change(key)

    async def remove(self, key: RevisionKey) -> None:
        revision = self._revisions.pop(key, None)
        if revision is not None:
            await revision.runner.stop()

    def health(self, key: RevisionKey) -> RevisionHealth | None:
        revision = self._revisions.get(key)
        return None if revision is None else revision.runner.health

    def runner(self, key: RevisionKey) -> RevisionRunner | None:
        revision = self._revisions.get(key)
        return None if revision is None else revision.runner

    def runners(self) -> list[RevisionRunner]:
        return [r.runner for r in self._revisions.values()]

    def keys(self) -> list[RevisionKey]:
        return list(self._revisions)

    async def stop(self) -> None:
        """Drain and stop every revision at once (each instance gets its own drain budget)."""
        revisions = list(self._revisions)
        await asyncio.gather(*(self.remove(k) for k in revisions), return_exceptions=True)
