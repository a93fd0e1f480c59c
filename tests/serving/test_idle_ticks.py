"""The data plane's ticker: a revision idle at zero is not ticked, and with none to tick the ticker sleeps
until a request, a new revision or a settings change (fake runtime, fake clock for the KPA)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.fake_runtime import FakeRuntime
from wisp.api.autoscaling import AutoscalerConfig, resolve_scaling
from wisp.serving.autoscaler import Decision, RevisionAutoscaler
from wisp.serving.dataplane import DataPlane, RevisionSettings
from wisp.serving.ingress import Timeouts
from wisp.serving.workloads.types import WorkloadSpec

KEY = ("default", "idle-00001")
TICK = 0.01  # real seconds between ticks; the KPA's own time is the fake clock
ZERO = {"autoscaling.knative.dev/initial-scale": "0"}
CONFIG = AutoscalerConfig(allow_zero_initial_scale=True)

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The fake time of every KPA tick."""
    seen: list[float] = []
    original: Callable[[RevisionAutoscaler, float, int], Decision] = RevisionAutoscaler.tick

    def counting(self: RevisionAutoscaler, now: float, ready_instances: int) -> Decision:
        seen.append(now)
        return original(self, now, ready_instances)

    monkeypatch.setattr(RevisionAutoscaler, "tick", counting)
    return seen


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[tuple[DataPlane, Clock]]:
    clock = Clock()
    dataplane = DataPlane(FakeRuntime, tmp_path / "logs", clock, lambda key: None, tick_interval=TICK)
    await dataplane.start()
    try:
        yield dataplane, clock
    finally:
        await dataplane.stop()


def settings(annotations: dict[str, str]) -> RevisionSettings:
    return RevisionSettings(container_concurrency=0, queue_depth=100, timeouts=Timeouts(total=30.0),
                            scaling=resolve_scaling(annotations, 0, CONFIG))


def workload(tmp_path: Path) -> WorkloadSpec:
    return WorkloadSpec(revision=KEY[1], namespace=KEY[0], workload_class="function", directory=tmp_path, image=".")


async def quiet_for(ticks: list[float], seconds: float = 0.2) -> bool:
    """True when no tick happened for `seconds` (20 tick intervals)."""
    before = len(ticks)
    await asyncio.sleep(seconds)
    return len(ticks) == before


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(TICK)


async def test_at_zero_without_requests_nothing_ticks(plane: tuple[DataPlane, Clock], ticks: list[float],
                                                      tmp_path: Path) -> None:
    dataplane, _ = plane
    await dataplane.ensure(KEY, workload(tmp_path), settings(ZERO))
    await until(lambda: len(ticks) >= 1)  # one decision, then the revision is idle at zero
    assert await quiet_for(ticks)
    assert len(ticks) == 1


async def test_a_request_at_zero_starts_ticks_and_scale_to_zero_stops_them(
    plane: tuple[DataPlane, Clock], ticks: list[float], tmp_path: Path
) -> None:
    dataplane, clock = plane
    await dataplane.ensure(KEY, workload(tmp_path), settings(ZERO))
    await until(lambda: len(ticks) >= 1)
    assert await quiet_for(ticks)

    backend = dataplane.backend(KEY)
    assert backend is not None
    throttler = backend[0]
    slot = await asyncio.wait_for(throttler.acquire(5.0), 5)  # poked at zero: an instance starts at once
    await until(lambda: len(ticks) >= 5)  # and the KPA ticks again
    runner = dataplane.runner(KEY)
    assert runner is not None and runner.desired == 1
    throttler.release(slot)

    clock.now += 1000  # past the stable window and the scale-to-zero grace
    await until(lambda: runner.desired == 0 and not runner.pods)
    assert await quiet_for(ticks)  # one tick at zero, then nothing
    last = dataplane.last_decision(KEY)
    assert last is not None and last.desired == 0 and last.ready_instances == 0


async def test_a_min_scale_given_at_zero_wakes_the_ticker(plane: tuple[DataPlane, Clock], ticks: list[float],
                                                          tmp_path: Path) -> None:
    dataplane, _ = plane
    await dataplane.ensure(KEY, workload(tmp_path), settings(ZERO))
    await until(lambda: len(ticks) >= 1)
    assert await quiet_for(ticks)
    await dataplane.ensure(KEY, workload(tmp_path), settings({**ZERO, "autoscaling.knative.dev/min-scale": "1"}))
    runner = dataplane.runner(KEY)
    assert runner is not None
    await until(lambda: runner.desired == 1 and runner.ready_count == 1)
    assert not await quiet_for(ticks)  # an instance exists: ticks go on


async def test_stop_while_the_ticker_sleeps(tmp_path: Path) -> None:
    dataplane = DataPlane(FakeRuntime, tmp_path / "logs", Clock(), lambda key: None, tick_interval=TICK)
    await dataplane.start()
    await asyncio.sleep(0.05)  # no revision: the ticker waits for one, without a timer
    await asyncio.wait_for(dataplane.stop(), 5)
