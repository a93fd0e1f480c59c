"""kill -9 of a function revision's template process (issue 8, defect 4).

The template is supervised and restarted; requests held while it is down are answered (served once it is
back, or 503 with a short reason when it cannot come back), never left hanging; the revision is Ready again.
The restart backoff is checked on a fake clock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.harness import Harness, running_daemon, service, write_function
from wisp.api import kinds as k
from wisp.control.conditions import get_condition
from wisp.net import free_port
from wisp.serving.revision_runner import RevisionRunner
from wisp.serving.workloads import WorkloadError, WorkloadSpec
from wisp.serving.workloads.backoff import Backoff
from wisp.serving.workloads.function import FunctionRuntime

REVISION = ("default", "phoenix-00001")
HOST = "phoenix.default.localhost"

# Fails to import while a file named BROKEN sits next to it: a restart that cannot load the code.
CODE = """
import os

if os.path.exists("BROKEN"):
    import a_module_that_is_not_there

async def handle(request):
    return {"pid": os.getpid()}
"""


def _runner(h: Harness) -> RevisionRunner:
    runner = h.daemon.dataplane.runner(REVISION)
    assert runner is not None
    return runner


def _template_pid(runner: RevisionRunner) -> int:
    runtime = runner.runtime
    assert isinstance(runtime, FunctionRuntime) and runtime.template_pid is not None
    return runtime.template_pid


async def _until(predicate: object, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


def _ready_status(h: Harness) -> str | None:
    revision = h.daemon.store.get(k.REVISION, *REVISION)
    condition = get_condition(revision or {}, "Ready")
    return None if condition is None else str(condition.get("status"))


async def test_held_and_later_requests_are_served_after_a_template_kill(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", CODE)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("phoenix", code))
        await h.ready("phoenix")
        runner = _runner(h)
        first = (await h.request(HOST)).json()["pid"]
        template = _template_pid(runner)

        os.kill(template, signal.SIGKILL)
        # Its instance dies with it; requests sent now find nothing ready and are held.
        await _until(lambda: runner.ready_count == 0)
        async with asyncio.timeout(30):  # without supervision these hang for the revision's 300 s timeout
            held = await asyncio.gather(*(h.request(HOST) for _ in range(5)))
        assert [r.status_code for r in held] == [200] * 5
        assert all(r.json()["pid"] != first for r in held)  # served by an instance of the new template
        assert _template_pid(runner) != template

        await h.wait_for(k.REVISION, *REVISION, lambda r: _ready_status(h) == "True")
        later = await h.request(HOST)
        assert later.status_code == 200
        runtime = runner.runtime
        assert isinstance(runtime, FunctionRuntime) and runtime.restarts == 1


async def test_a_template_that_cannot_come_back_answers_503_with_a_short_reason(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", CODE)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("phoenix", code))
        await h.ready("phoenix")
        runner = _runner(h)
        (code / "BROKEN").write_text("")  # the code on disk no longer imports
        os.kill(_template_pid(runner), signal.SIGKILL)
        await _until(lambda: runner.ready_count == 0)

        async with asyncio.timeout(30):
            replies = await asyncio.gather(*(h.request(HOST) for _ in range(3)))
        for reply in replies:
            assert reply.status_code == 503, reply.text
            assert "ModuleNotFoundError in main.py" in reply.text
            assert "Traceback" not in reply.text and str(tmp_path) not in reply.text
        # The owner gets the whole story.
        revision = await h.wait_for(k.REVISION, *REVISION, lambda r: _ready_status(h) == "False")
        message = get_condition(revision, "Ready")["message"]  # type: ignore[index]
        assert "a_module_that_is_not_there" in message

        # Fixed on disk: a later restart (within the backoff) brings it back.
        (code / "BROKEN").unlink()
        await h.wait_for(k.REVISION, *REVISION, lambda r: _ready_status(h) == "True", timeout=90)
        assert (await h.request(HOST)).status_code == 200


def test_backoff_on_a_fake_clock() -> None:
    backoff = Backoff(initial=0.5, factor=2, cap=4, reset_after=60)
    backoff.started(now=0)
    # The first crash after a healthy run restarts at once; crashes before it has stayed up 60 s back off.
    assert backoff.next_delay(now=100) == 0
    backoff.started(now=100)
    assert [backoff.next_delay(now=101 + i) for i in range(6)] == [0.5, 1, 2, 4, 4, 4]
    backoff.started(now=200)
    assert backoff.next_delay(now=230) == 4  # up only 30 s: still crash-looping
    backoff.started(now=230)
    assert backoff.next_delay(now=290) == 0  # up 60 s: healthy again, the next restart is immediate


async def test_supervisor_waits_the_backoff_on_its_clock(tmp_path: Path) -> None:
    """Real template processes, fake time: each failed restart asks for the next, longer, wait."""
    code = write_function(tmp_path / "fn", CODE)
    clock = [1000.0]
    waits: list[float] = []
    unbroken = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds
        if len(waits) == 3:
            (code / "BROKEN").unlink()  # the next attempt loads
            unbroken.set()

    spec = WorkloadSpec(revision="phoenix-00001", namespace="default", workload_class="function", directory=code,
                        image="./fn", env={"K_REVISION": "phoenix-00001"}, timeout_seconds=5)
    runtime = FunctionRuntime(spec, backoff=Backoff(initial=0.5, cap=30, reset_after=60), now=lambda: clock[0],
                              sleep=sleep)
    try:
        await runtime.start()
        (code / "BROKEN").write_text("")
        assert runtime.template_pid is not None
        os.kill(runtime.template_pid, signal.SIGKILL)
        await asyncio.wait_for(unbroken.wait(), 60)
        # Restart 1 is immediate and fails; then 0.5 s, 1 s, 2 s between attempts until one loads.
        assert waits == [0.5, 1, 2]
        instance = await runtime.spawn("phoenix-00001-deployment-aaaaa", free_port(), tmp_path / "a.log")
        await instance.wait_ready(20)
        assert runtime.restarts == 4

        # Up for a (fake) minute: the next crash restarts at once again.
        clock[0] += 61
        waits.clear()
        assert runtime.template_pid is not None
        os.kill(runtime.template_pid, signal.SIGKILL)
        await asyncio.wait_for(instance.exited, 10)
        again = await runtime.spawn("phoenix-00001-deployment-bbbbb", free_port(), tmp_path / "b.log")
        await again.wait_ready(20)
        assert waits == []
    finally:
        await runtime.stop()


async def test_spawn_during_a_backoff_fails_at_once_with_the_reason(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", CODE)
    spec = WorkloadSpec(revision="phoenix-00001", namespace="default", workload_class="function", directory=code,
                        image="./fn", env={"K_REVISION": "phoenix-00001"}, timeout_seconds=5)
    never = asyncio.Event()

    async def sleep_forever(seconds: float) -> None:
        await never.wait()

    runtime = FunctionRuntime(spec, sleep=sleep_forever)
    try:
        await runtime.start()
        (code / "BROKEN").write_text("")
        assert runtime.template_pid is not None
        os.kill(runtime.template_pid, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(WorkloadError, match=r"ModuleNotFoundError in main\.py"):
            # The first restart fails; the supervisor then sleeps (forever, here): spawns must not wait for it.
            while True:
                await runtime.spawn("x", free_port(), tmp_path / "x.log")
        assert time.monotonic() - started < 30
    finally:
        await runtime.stop()


async def test_requests_in_flight_when_the_template_dies_are_answered(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", """
        import asyncio

        async def handle(request):
            await asyncio.sleep(float(request.query_params.get("sleep", "0")))
            return "ok"
    """)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("phoenix", code))
        await h.ready("phoenix")
        runner = _runner(h)
        slow = asyncio.create_task(h.request(HOST, "/?sleep=30"))
        await _until(lambda: runner.throttler.in_flight == 1)
        os.kill(_template_pid(runner), signal.SIGKILL)
        async with asyncio.timeout(10):
            reply = await slow
        assert reply.status_code == 502  # its instance died under it: answered, not hung
        async with httpx.AsyncClient(timeout=30) as client:
            after = await client.get(h.ingress, headers={"Host": HOST})
        assert after.status_code == 200
