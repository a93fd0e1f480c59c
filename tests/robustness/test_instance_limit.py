"""The machine-wide limit on instances (issue 8, defect 3: `min-scale` that forks the machine to death).

Every revision's instances together stay under a limit derived from memory and CPUs (or `--max-instances`);
a revision left short says so in its status (reason InstanceLimit, wanted/got); and the daemon stops promptly
on SIGINT in the middle of a scale-up, or while it waits for services to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.serving.harness import running_daemon, service, write_function
from wisp.api import kinds as k
from wisp.control.conditions import get_condition
from wisp.control.serving import _revision_conditions
from wisp.net import free_port
from wisp.serving.instance_limit import (
    INSTANCE_BYTES,
    INSTANCES_PER_CPU,
    GiB,
    InstanceBudget,
    MachineLimit,
    derive_limit,
    memory_bytes,
)
from wisp.serving.revision_runner import RevisionHealth, Shortfall

WISP = Path(sys.executable).parent / "wisp"
HELLO = """
async def handle(request):
    return "hello"
"""


def test_limit_follows_memory_and_cpus() -> None:
    assert derive_limit(24 * GiB, 2).limit == 2 * INSTANCES_PER_CPU  # CPUs bind
    assert derive_limit(2 * GiB, 64).limit == 2 * GiB // INSTANCE_BYTES  # memory binds
    assert derive_limit(64 * 1024 * 1024, 1).limit == 4  # never below a few
    assert "GiB of memory" in derive_limit(8 * GiB, 4).basis and "4 CPUs" in derive_limit(8 * GiB, 4).basis
    assert derive_limit(None, None).limit > 0


def test_memory_is_the_lower_of_ram_and_the_memory_cgroup(tmp_path: Path) -> None:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text("MemTotal:       16384000 kB\nMemFree:  1 kB\n")
    (proc / "self" / "cgroup").write_text("4:memory:/box\n0::/box2\n")
    assert memory_bytes(proc, root) == 16384000 * 1024  # no cgroup files: the RAM
    (root / "memory" / "box").mkdir(parents=True)
    (root / "memory" / "box" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1 "unlimited"
    assert memory_bytes(proc, root) == 16384000 * 1024
    (root / "box2").mkdir(parents=True)
    (root / "box2" / "memory.max").write_text(f"{2 * GiB}\n")  # v2
    assert memory_bytes(proc, root) == 2 * GiB
    (root / "box2" / "memory.max").write_text("max\n")
    (root / "memory" / "box" / "memory.limit_in_bytes").write_text(f"{GiB}\n")  # v1
    assert memory_bytes(proc, root) == GiB


def test_budget_counts_and_wakes_whoever_waits() -> None:
    budget = InstanceBudget(MachineLimit(2, "test"))
    woken: list[str] = []
    assert budget.take() and budget.take() and not budget.take()
    budget.wait_for_room(lambda: woken.append("a"))
    budget.give_back()
    assert woken == ["a"] and budget.take() and not budget.take()
    budget.give_back()
    assert woken == ["a"]  # told once


@dataclass
class _Runner:
    shortfall: Shortfall | None


def test_conditions_when_the_limit_binds() -> None:
    ready = RevisionHealth(True, "", "")
    short = Shortfall(wanted=5, got=2, limit="the machine-wide limit of 2 instances (test)")
    below_min = _revision_conditions(ready, _Runner(short), min_scale=3)  # type: ignore[arg-type]
    first = below_min[0]
    assert (first.type, first.status, first.reason) == ("ResourcesAvailable", "False", "InstanceLimit")
    assert "wanted 5 instances, got 2" in below_min[0].message
    # Only the autoscaler's demand above min-scale is capped: still Ready, and it says so.
    above_min = _revision_conditions(ready, _Runner(short), min_scale=1)  # type: ignore[arg-type]
    first = above_min[0]
    assert (first.type, first.status, first.reason) == ("ResourcesAvailable", "True", "InstanceLimit")
    nothing = _revision_conditions(RevisionHealth(), _Runner(Shortfall(1, 0, "x")), 0)  # type: ignore[arg-type]
    assert (nothing[0].status, nothing[0].reason) == ("False", "InstanceLimit")


def _condition(resource: dict[str, object], type_: str) -> dict[str, str]:
    found = get_condition(resource, type_)
    assert found is not None, resource.get("status")
    return found


async def test_the_limit_binds_across_revisions_and_is_reported(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", HELLO)
    async with running_daemon(tmp_path / "state", max_instances=2) as h:
        h.apply(service("greedy", code, annotations={"autoscaling.knative.dev/min-scale": "3"}))
        revision = await h.wait_for(k.REVISION, "default", "greedy-00001", lambda r: (
            (get_condition(r, "ResourcesAvailable") or {}).get("reason") == "InstanceLimit"))
        available = _condition(revision, "ResourcesAvailable")
        assert available["status"] == "False"
        assert "wanted 3 instances, got 2" in available["message"]
        assert "limit of 2 instances" in available["message"] and "--max-instances" in available["message"]
        assert _condition(revision, "Ready")["reason"] == "InstanceLimit"
        runner = h.daemon.dataplane.runner(("default", "greedy-00001"))
        assert runner is not None and len(runner.pods) == 2

        # Another revision finds no room at all: it says so, and its host answers 503 with the reason.
        h.apply(service("modest", code))
        modest = await h.wait_for(k.REVISION, "default", "modest-00001", lambda r: (
            (get_condition(r, "Ready") or {}).get("reason") == "InstanceLimit"))
        assert "wanted 1 instance, got 0" in _condition(modest, "Ready")["message"]
        await h.failed("modest")
        reply = await h.request("modest.default.localhost")
        assert reply.status_code == 503 and "wanted 1 instance, got 0" in reply.text
        assert h.daemon.dataplane.budget.in_use == 2

        # Room again: the waiting revision gets its instance and serves.
        h.daemon.store.delete(k.SERVICE, "default", "greedy")
        await h.ready("modest", timeout=60)
        assert (await h.request("modest.default.localhost")).text == "hello"


async def _wait_line(stream: asyncio.StreamReader, marker: bytes, out: list[bytes], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while line := await stream.readline():
            out.append(line)
            if marker in line:
                return
    raise AssertionError(b"".join(out).decode(errors="replace"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead, only not yet reaped.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    return False


async def _up(tmp_path: Path, manifest: str, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    path = tmp_path / "app.yaml"
    path.write_text(textwrap.dedent(manifest))
    api_port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(WISP), "up", str(path), "--port", str(free_port()), "--api-port", str(api_port),
        "--state-dir", str(tmp_path / "state"), *extra,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return process, f"http://127.0.0.1:{api_port}"


async def _stopped_by_sigint(process: asyncio.subprocess.Process, output: list[bytes], within: float) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        assert process.stdout is not None
        async with asyncio.timeout(within):
            output.append(await process.stdout.read())
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"SIGINT did not stop wisp within {within} s:\n"
                             + b"".join(output).decode(errors="replace")[-3000:]) from None
    return time.monotonic() - started


async def test_sigint_stops_the_daemon_mid_scale_up(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", HELLO)
    process, api = await _up(tmp_path, f"""
        apiVersion: serving.knative.dev/v1
        kind: Service
        metadata: {{name: crowd}}
        spec:
          template:
            metadata:
              annotations:
                wisp.dev/workload-class: function
                autoscaling.knative.dev/min-scale: "100"
            spec:
              containers: [{{image: {code}}}]
    """, "--max-instances", "16")
    output: list[bytes] = []
    assert process.stdout is not None
    try:
        await _wait_line(process.stdout, b"wisp is serving on", output, 90)
        async with httpx.AsyncClient(base_url=api, timeout=10) as client:
            pods = (await client.get("/api/v1/namespaces/default/pods")).json()["items"]
            revision = (await client.get(
                "/apis/serving.knative.dev/v1/namespaces/default/revisions/crowd-00001")).json()
        assert 0 < len(pods) <= 16
        assert "wanted 100 instances, got 16" in _condition(revision, "ResourcesAvailable")["message"]
        pids = [p["status"]["containerStatuses"][0]["pid"] for p in pods]
        elapsed = await _stopped_by_sigint(process, output, within=20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, b"".join(output).decode(errors="replace")[-3000:]
    assert elapsed < 15
    assert not [pid for pid in pids if pid and _alive(pid)]


async def test_sigint_while_waiting_for_services_to_start(tmp_path: Path) -> None:
    # An import that takes a minute: `wisp up` waits for the service; Ctrl-C must not wait with it.
    code = write_function(tmp_path / "fn", "import time\ntime.sleep(60)\n\ndef handle(request):\n    return 'x'\n")
    process, api = await _up(tmp_path, f"""
        apiVersion: serving.knative.dev/v1
        kind: Service
        metadata: {{name: sluggish}}
        spec:
          template:
            metadata: {{annotations: {{wisp.dev/workload-class: function}}}}
            spec:
              containers: [{{image: {code}}}]
    """)
    output: list[bytes] = []
    try:
        async with asyncio.timeout(60), httpx.AsyncClient(base_url=api, timeout=5) as client:
            while True:  # up, and its revision is being started
                with contextlib.suppress(httpx.HTTPError):
                    reply = await client.get("/apis/serving.knative.dev/v1/namespaces/default/revisions")
                    if reply.status_code == 200 and reply.json()["items"]:
                        break
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        elapsed = await _stopped_by_sigint(process, output, within=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert elapsed < 15, b"".join(output).decode(errors="replace")[-3000:]
