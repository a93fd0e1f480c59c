"""The KPA with real instances: scale up under load, to zero when idle, from zero without dropping."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.serving.harness import Harness, running_daemon, service, write_function
from wisp.serving.revision_runner import RevisionRunner

SLEEPER = """
import asyncio

async def handle(request):
    await asyncio.sleep(float(request.query_params.get("sleep", "0.1")))
    return "ok"
"""

FAST_CONFIG = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
    "data": {"scale-to-zero-grace-period": "2s", "allow-zero-initial-scale": "true"},
}


async def load(h: Harness, host: str, clients: int, seconds: float, path: str = "/",
               pause: float = 0.0) -> dict[int, int]:
    """`clients` closed-loop clients for `seconds` in another process; returns {status: count}."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.serving.loadgen", h.ingress + path, host, str(clients), str(seconds), str(pause),
        stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[2],
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return {int(status): count for status, count in json.loads(out).items()}


async def until(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> float:
    """Poll running state (instances have no store event per probe); returns the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)
    return time.monotonic() - started


def runner_of(h: Harness, revision: str) -> RevisionRunner:
    runner = h.daemon.dataplane.runner(("default", revision))
    assert runner is not None
    return runner


async def test_scales_to_target_then_to_zero(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", SLEEPER)
    async with running_daemon(tmp_path / "state", tick_interval=0.5) as h:
        h.apply(FAST_CONFIG, service("sleepy", code, spec={"containerConcurrency": 10},
                                     annotations={"autoscaling.knative.dev/window": "6s"}))
        await h.ready("sleepy")
        runner = runner_of(h, "sleepy-00001")
        samples: list[int] = []

        async def sample() -> None:
            while True:
                samples.append(runner.desired)
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        statuses = await load(h, "sleepy.default.localhost", clients=35, seconds=10)
        sampler.cancel()
        assert set(statuses) == {200}, statuses
        target = 10 * 0.7  # containerConcurrency × the default 70 % utilisation
        expected = -(-35 // target)  # ceil(35 / 7) = 5
        settled = samples[-8:]  # the last two seconds of load
        assert settled and all(d == expected for d in settled), samples
        assert runner.ready_count == expected
        # Idle: after the stable window (6 s) and the grace period (2 s), it goes to zero.
        stopped = time.monotonic()
        await until(lambda: runner.desired == 0 and not runner.pods, timeout=30)
        took = time.monotonic() - stopped
        assert took >= 2.0, took  # never before the grace period
        assert took <= 6 + 2 + 6, took


async def test_burst_against_zero_instances_all_succeed(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", SLEEPER)
    async with running_daemon(tmp_path / "state", tick_interval=0.5) as h:
        h.apply(FAST_CONFIG, service("cold", code, spec={"containerConcurrency": 10},
                                     annotations={"autoscaling.knative.dev/initial-scale": "0"}))
        await h.ready("cold")
        runner = runner_of(h, "cold-00001")
        assert runner.desired == 0 and not runner.pods
        limits = httpx.Limits(max_connections=250)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            replies = await asyncio.gather(*(
                client.get(h.ingress + "/?sleep=0.05", headers={"Host": "cold.default.localhost"})
                for _ in range(200)
            ))
        assert [r.status_code for r in replies] == [200] * 200
        assert runner.desired >= 1


async def test_min_and_max_scale_bound_the_count(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", SLEEPER)
    annotations = {"autoscaling.knative.dev/min-scale": "2", "autoscaling.knative.dev/max-scale": "3",
                   "autoscaling.knative.dev/window": "6s"}
    async with running_daemon(tmp_path / "state", tick_interval=0.5) as h:
        h.apply(FAST_CONFIG, service("bounded", code, spec={"containerConcurrency": 1}, annotations=annotations))
        await h.ready("bounded")
        runner = runner_of(h, "bounded-00001")
        await until(lambda: runner.ready_count == 2, timeout=30)
        seen: list[int] = []

        async def sample() -> None:
            while True:
                seen.append(len([p for p in runner.pods if p.phase in ("Pending", "Running")]))
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample())
        # 12 clients against at most 3 instances of concurrency 1: the queue absorbs the rest.
        statuses = await load(h, "bounded.default.localhost", clients=12, seconds=4, path="/?sleep=0.1")
        # Then idle for longer than the stable window and the grace period: still two.
        await asyncio.sleep(10)
        sampler.cancel()
        assert set(statuses) == {200}, statuses
        assert max(seen) == 3, seen
        assert min(seen) >= 2, seen
        assert runner.ready_count == 2


async def test_rps_metric_scales_on_request_rate(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", SLEEPER)
    annotations = {"autoscaling.knative.dev/metric": "rps", "autoscaling.knative.dev/target": "10",
                   "autoscaling.knative.dev/window": "6s"}
    async with running_daemon(tmp_path / "state", tick_interval=0.5) as h:
        h.apply(FAST_CONFIG, service("rate", code, annotations=annotations))
        await h.ready("rate")
        runner = runner_of(h, "rate-00001")
        # About 8 clients × ~9 req/s of 10 ms requests: concurrency stays below 1, but the rate is ~70/s.
        statuses = await load(h, "rate.default.localhost", clients=8, seconds=8, path="/?sleep=0.01", pause=0.1)
        rate = sum(statuses.values()) / 8
        assert set(statuses) == {200}, statuses
        expected = -(-rate // (10 * 0.7))
        assert runner.desired >= min(expected, 3) >= 2, (rate, runner.desired)
