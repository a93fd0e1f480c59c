"""A revision no Route targets (routing state reserve): the data plane takes it to zero whatever its min-scale,
then releases its runtime (a function's template); a request or a Route brings it back. Fake runtime that
counts starts and stops, fake clock for the KPA."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest

from tests.fake_runtime import FakeInstance
from tests.serving.test_idle_ticks import TICK, Clock
from wisp.api.autoscaling import AutoscalerConfig, resolve_scaling
from wisp.serving.dataplane import DataPlane, RevisionSettings
from wisp.serving.ingress import Timeouts
from wisp.serving.revision_runner import RevisionRunner
from wisp.serving.workloads.types import WorkloadClass, WorkloadSpec

KEY = ("default", "old-00001")
PINNED = {"autoscaling.knative.dev/min-scale": "1"}
ZERO = {"autoscaling.knative.dev/initial-scale": "0"}
CONFIG = AutoscalerConfig(allow_zero_initial_scale=True)

pytestmark = pytest.mark.timeout(60)


class CountingRuntime:
    """Each instance of it is one template's life: started at most once, stopped once."""

    events: ClassVar[list[str]] = []

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        self.running = False

    async def start(self) -> None:
        assert not self.running
        self.running = True
        self.events.append("start")

    async def spawn(self, name: str, port: int, log_path: Path) -> FakeInstance:
        assert self.running, "spawn from a runtime that is not running"
        return FakeInstance(name, port)

    async def stop(self) -> None:
        if self.running:
            self.events.append("stop")
        self.running = False


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[tuple[DataPlane, Clock]]:
    CountingRuntime.events = []
    clock = Clock()
    dataplane = DataPlane(CountingRuntime, tmp_path / "logs", clock, lambda key: None, tick_interval=TICK)
    await dataplane.start()
    try:
        yield dataplane, clock
    finally:
        await dataplane.stop()


def settings(annotations: dict[str, str], reachable: bool = True) -> RevisionSettings:
    return RevisionSettings(container_concurrency=0, queue_depth=100, timeouts=Timeouts(total=30.0),
                            scaling=resolve_scaling(annotations, 0, CONFIG), reachable=reachable)


def workload(tmp_path: Path, workload_class: WorkloadClass = "function") -> WorkloadSpec:
    return WorkloadSpec(revision=KEY[1], namespace=KEY[0], workload_class=workload_class, directory=tmp_path,
                        image=".")


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(TICK)


def runner_of(dataplane: DataPlane) -> RevisionRunner:
    runner = dataplane.runner(KEY)
    assert runner is not None
    return runner


def released(runner: RevisionRunner) -> bool:
    return not runner.pods and not runner.runtime_running and CountingRuntime.events[-1:] == ["stop"]


async def test_unrouted_goes_to_zero_despite_min_scale_and_its_runtime_stops(
    plane: tuple[DataPlane, Clock], tmp_path: Path
) -> None:
    dataplane, _ = plane
    await dataplane.ensure(KEY, workload(tmp_path), settings(PINNED))
    runner = runner_of(dataplane)
    await until(lambda: runner.ready_count == 1)
    first = runner.runtime

    await dataplane.ensure(KEY, workload(tmp_path), settings(PINNED, reachable=False))
    await until(lambda: released(runner))  # no stable window, no grace: the next tick
    assert CountingRuntime.events == ["start", "stop"]
    assert runner.runtime is not first  # a fresh one, started when needed
    assert runner.desired == 0 and runner.health.ready  # still Ready: it can be served from zero


async def test_a_request_still_in_it_keeps_its_instance_until_done(plane: tuple[DataPlane, Clock],
                                                                   tmp_path: Path) -> None:
    dataplane, clock = plane
    await dataplane.ensure(KEY, workload(tmp_path), settings(PINNED))
    runner = runner_of(dataplane)
    await until(lambda: runner.ready_count == 1)
    slot = await runner.throttler.acquire(5.0)
    await dataplane.ensure(KEY, workload(tmp_path), settings(PINNED, reachable=False))
    for _ in range(5):
        clock.now += 2
        await asyncio.sleep(TICK * 3)
    assert runner.desired == 1 and runner.ready_count == 1 and runner.runtime_running
    runner.throttler.release(slot)
    await until(lambda: released(runner))


async def test_a_request_after_release_starts_the_runtime_again(plane: tuple[DataPlane, Clock],
                                                               tmp_path: Path) -> None:
    dataplane, clock = plane
    await dataplane.ensure(KEY, workload(tmp_path), settings(PINNED))
    runner = runner_of(dataplane)
    await dataplane.ensure(KEY, workload(tmp_path), settings(PINNED, reachable=False))
    await until(lambda: released(runner))

    # One that picked the revision just before its Route moved on: held, served as from zero.
    slot = await asyncio.wait_for(runner.throttler.acquire(5.0), 5)
    assert runner.runtime_running and CountingRuntime.events == ["start", "stop", "start"]
    runner.throttler.release(slot)
    clock.now += 2
    await until(lambda: released(runner))
    assert CountingRuntime.events == ["start", "stop", "start", "stop"]


async def test_routed_again_the_runtime_starts_before_any_request(plane: tuple[DataPlane, Clock],
                                                                  tmp_path: Path) -> None:
    dataplane, _ = plane
    await dataplane.ensure(KEY, workload(tmp_path), settings(ZERO))
    runner = runner_of(dataplane)
    await dataplane.ensure(KEY, workload(tmp_path), settings(ZERO, reachable=False))
    await until(lambda: released(runner))
    await dataplane.ensure(KEY, workload(tmp_path), settings(ZERO))
    await until(lambda: runner.runtime_running)
    assert runner.desired == 0 and CountingRuntime.events == ["start", "stop", "start"]
    await asyncio.sleep(TICK * 20)
    assert runner.runtime_running  # routed at zero: it keeps its template (a cold start is a fork)

    await dataplane.ensure(KEY, workload(tmp_path), settings(PINNED))  # and min-scale applies again
    await until(lambda: runner.ready_count == 1)


async def test_routed_at_zero_keeps_its_runtime(plane: tuple[DataPlane, Clock], tmp_path: Path) -> None:
    dataplane, clock = plane
    await dataplane.ensure(KEY, workload(tmp_path), settings(ZERO))
    runner = runner_of(dataplane)
    slot = await asyncio.wait_for(runner.throttler.acquire(5.0), 5)
    runner.throttler.release(slot)
    await asyncio.sleep(TICK * 10)  # ticks see it active
    clock.now += 1000  # past the stable window and the grace period
    await until(lambda: runner.desired == 0 and not runner.pods)
    await asyncio.sleep(TICK * 20)
    assert runner.runtime_running and CountingRuntime.events == ["start"]


async def test_unrouted_at_start_does_not_start_its_runtime(plane: tuple[DataPlane, Clock], tmp_path: Path) -> None:
    """After a daemon restart a reserve revision comes up at zero (no min-scale, no initial scale), runtime idle."""
    dataplane, _ = plane
    await dataplane.ensure(KEY, workload(tmp_path), settings(PINNED, reachable=False))
    runner = runner_of(dataplane)
    await asyncio.sleep(TICK * 20)
    assert runner.desired == 0 and not runner.pods and not runner.runtime_running and CountingRuntime.events == []
    assert runner.health.ready
    slot = await asyncio.wait_for(runner.throttler.acquire(5.0), 5)
    runner.throttler.release(slot)
    assert CountingRuntime.events == ["start"]


async def test_a_container_revision_goes_to_zero_and_keeps_its_runtime(plane: tuple[DataPlane, Clock],
                                                                       tmp_path: Path) -> None:
    """A container's runtime holds no process at zero: only its instances go."""
    dataplane, _ = plane
    spec = workload(tmp_path, "container")
    await dataplane.ensure(KEY, spec, settings(PINNED))
    runner = runner_of(dataplane)
    await until(lambda: runner.ready_count == 1)
    await dataplane.ensure(KEY, spec, replace(settings(PINNED), reachable=False))
    await until(lambda: runner.desired == 0 and not runner.pods)
    await asyncio.sleep(TICK * 20)
    assert runner.runtime_running and CountingRuntime.events == ["start"]
