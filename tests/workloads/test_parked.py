"""A revision with a sandbox and a cgroup keeps one instance parked past their set-up (workloads/parked.py): the
next spawn hands it its port; nothing of the user's runs before that; output, cgroup and sandbox are the
instance's; a restart, a dead parked process and stop are handled."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from workload_helpers import CONTRACT_ENV, write_code

from wisp.net import free_port
from wisp.serving.workloads import WorkloadSpec, cgroups
from wisp.serving.workloads.cgroups import Limits
from wisp.serving.workloads.container import ProcessRuntime
from wisp.serving.workloads.parked import PARKED_DIR
from wisp.serving.workloads.volumes import Mount, Volume

# The sandbox has its own /tmp: a virtualenv in a clone under /tmp is not there, the system's python3 is.
SYSTEM_PYTHON = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "/usr/bin/python3"

SERVER = {"server.py": """
    import http.server, json, os, pathlib

    # A mark per start: the test checks that a parked process has not run this yet.
    pathlib.Path("marks", os.environ["PORT"]).write_text(str(os.getpid()))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"port": os.environ["PORT"], "scratch": os.path.isdir("/scratch"),
                               "cgroup": open("/proc/self/cgroup").read(), "stdin": os.readlink("/proc/self/fd/0"),
                               "service": os.environ.get("K_SERVICE")}).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    print("serving on", os.environ["PORT"], flush=True)
    http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""}


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    code = write_code(tmp_path / "app", SERVER)
    (code / "marks").mkdir()
    spec = WorkloadSpec(revision="tiny-00001", namespace="default", workload_class="container",
                        directory=code, image="./app", command=[SYSTEM_PYTHON, "server.py"],
                        env={**CONTRACT_ENV, "PATH": os.environ.get("PATH", os.defpath)}, timeout_seconds=10,
                        volumes=(Volume("scratch", "emptyDir", size_limit=2**20),),
                        mounts=(Mount("scratch", "/scratch"),), limits=Limits(memory=256 * 2**20))
    made = ProcessRuntime(spec, tmp_path / "volumes")
    await made.start()
    try:
        yield made
    finally:
        await made.stop()


async def answer(port: int) -> dict[str, object]:
    async with httpx.AsyncClient(timeout=10) as client:
        body: dict[str, object] = (await client.get(f"http://127.0.0.1:{port}/")).json()
        return body


def marks(runtime: ProcessRuntime) -> list[str]:
    assert runtime.spec.directory is not None
    return sorted(p.name for p in (runtime.spec.directory / "marks").iterdir())


def parked_cgroups() -> list[Path]:
    found = cgroups.hierarchy()
    assert found is not None and found.memory is not None
    return list(found.memory.glob("wisp-parked-*"))




async def test_the_next_instance_is_the_parked_one(runtime: ProcessRuntime, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    before = set(parked_cgroups())  # another test's may be on their way out
    first_port = free_port()
    first = await runtime.spawn("tiny-00001-deployment-aaaaa", first_port, logs / "a.log")
    await first.wait_ready(20)
    await asyncio.wait_for(runtime.parked.wait(), 20)
    assert runtime._parked is not None
    parked_pid = runtime._parked.proc.pid
    assert marks(runtime) == [str(first_port)]  # parked: past its sandbox and cgroup, before the command
    assert set(parked_cgroups()) - before

    port = free_port()
    second = await runtime.spawn("tiny-00001-deployment-bbbbb", port, logs / "b.log")
    assert second.pid == parked_pid
    await second.wait_ready(20)
    seen = await answer(port)
    assert seen["port"] == str(port) and seen["service"] == "hello"
    assert seen["scratch"] is True  # in its sandbox
    assert "wisp-parked-" in str(seen["cgroup"])  # in its cgroup, limits written
    assert seen["stdin"] == "/dev/null"
    assert f"serving on {port}" in (logs / "b.log").read_text()  # its output is the instance's log
    assert sorted(marks(runtime)) == sorted([str(first_port), str(port)])
    assert str(port) in json.dumps(second.env)  # exec probes get the instance's PORT

    await asyncio.wait_for(runtime.parked.wait(), 20)  # the next one parks
    await second.terminate(5)
    await first.terminate(5)
    await runtime.stop()
    assert set(parked_cgroups()) - before == set()  # each removed as its process went
    assert list((logs / PARKED_DIR).iterdir()) == []


async def test_a_restart_starts_directly_and_keeps_the_parked_one(runtime: ProcessRuntime, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "a.log"
    first = await runtime.spawn("tiny-00001-deployment-aaaaa", free_port(), log)
    await first.wait_ready(20)
    await first.terminate(5)
    await asyncio.wait_for(runtime.parked.wait(), 20)
    assert runtime._parked is not None
    parked_pid = runtime._parked.proc.pid

    port = free_port()
    again = await runtime.spawn("tiny-00001-deployment-aaaaa", port, log)  # same name: the log is appended
    assert again.pid != parked_pid and runtime.parked.is_set()
    await again.wait_ready(20)
    assert log.read_text().count("serving on") == 2
    await again.terminate(5)


async def test_a_parked_process_that_died_is_replaced(runtime: ProcessRuntime, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    first = await runtime.spawn("tiny-00001-deployment-aaaaa", free_port(), logs / "a.log")
    await first.wait_ready(20)
    await asyncio.wait_for(runtime.parked.wait(), 20)
    assert runtime._parked is not None
    dead = runtime._parked
    os.killpg(dead.proc.pid, signal.SIGKILL)
    await dead.proc.wait()

    port = free_port()
    second = await runtime.spawn("tiny-00001-deployment-bbbbb", port, logs / "b.log")
    assert second.pid != dead.proc.pid
    await second.wait_ready(20)
    assert (await answer(port))["port"] == str(port)
    await asyncio.wait_for(runtime.parked.wait(), 20)
    assert not dead.log_path.exists()  # its file (and cgroup) went with it
    await second.terminate(5)
    await first.terminate(5)
