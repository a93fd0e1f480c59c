"""Container-class runtime: local-directory processes (OCI images: tests/oci)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from workload_helpers import CONTRACT_ENV, write_code

from wisp.net import free_port
from wisp.serving.workloads import Probe, Runtime, WorkloadError, WorkloadSpec

MakeRuntime = Callable[[WorkloadSpec], Runtime]

SERVER = {"server.py": """
    import http.server, json, os, signal, sys, time

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/healthz" and not os.path.exists("ready.flag"):
                self.send_response(503); self.end_headers(); return
            body = json.dumps({k: os.environ.get(k) for k in ("PORT", "K_SERVICE", "K_REVISION")}).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def drain(signum, frame):
        print("draining on SIGTERM", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, drain)
    print("container starting in", os.getcwd(), flush=True)
    http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""}


def container_spec(directory: Path | None, image: str, command: list[str], args: list[str] | None = None,
                   probe: Probe | None = None) -> WorkloadSpec:
    return WorkloadSpec(revision="proc-00001", namespace="default", workload_class="container",
                        directory=directory, image=image, command=command, args=args or [],
                        env=dict(CONTRACT_ENV), probe=probe or Probe(), timeout_seconds=10)


async def test_process_serves_with_contract_env_and_logs(runtimes: MakeRuntime, tmp_path: Path) -> None:
    code = write_code(tmp_path / "proc", SERVER)
    runtime = runtimes(container_spec(code, "./proc", [sys.executable], ["server.py"]))
    await runtime.start()
    log = tmp_path / "logs" / "proc.log"
    instance = await runtime.spawn("proc-00001-deployment-aaaaa", free_port(), log)
    await instance.wait_ready(20)
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"http://127.0.0.1:{instance.port}/")
    assert r.json() == {"PORT": str(instance.port), "K_SERVICE": "hello", "K_REVISION": "hello-00001"}
    await instance.terminate(grace=8)
    assert instance.exited.result() == 0
    text = log.read_text()
    assert f"container starting in {code}" in text and "draining on SIGTERM" in text


async def test_http_get_probe_waits_for_a_2xx(runtimes: MakeRuntime, tmp_path: Path) -> None:
    code = write_code(tmp_path / "proc", SERVER)
    spec = container_spec(code, "./proc", [sys.executable, "server.py"], probe=Probe(http_path="/healthz"))
    runtime = runtimes(spec)
    await runtime.start()
    instance = await runtime.spawn("probed", free_port(), tmp_path / "probed.log")
    with pytest.raises(WorkloadError, match="not ready"):
        await instance.wait_ready(0.5)  # serving, but /healthz answers 503
    (code / "ready.flag").write_text("")
    await instance.wait_ready(20)
    instance.kill()
    assert await asyncio.wait_for(instance.exited, 5) == -9


async def test_command_exiting_at_once_is_a_clear_error(runtimes: MakeRuntime, tmp_path: Path) -> None:
    crash = "import sys\nprint('missing DATABASE_URL')\nsys.exit(3)\n"
    code = write_code(tmp_path / "proc", {"crash.py": crash})
    runtime = runtimes(container_spec(code, "./proc", [sys.executable, "crash.py"]))
    await runtime.start()
    instance = await runtime.spawn("crashy", free_port(), tmp_path / "crashy.log")
    with pytest.raises(WorkloadError) as info:
        await instance.wait_ready(20)
    assert "exited with status 3" in str(info.value) and "missing DATABASE_URL" in str(info.value)


async def test_missing_executable_and_missing_command(runtimes: MakeRuntime, tmp_path: Path) -> None:
    code = write_code(tmp_path / "proc", {})
    runtime = runtimes(container_spec(code, "./proc", ["./no-such-binary"]))
    await runtime.start()
    with pytest.raises(WorkloadError, match=re.escape("cannot run './no-such-binary'")):
        await runtime.spawn("nobin", free_port(), tmp_path / "nobin.log")
    with pytest.raises(WorkloadError, match="needs a command"):
        await runtimes(container_spec(code, "./proc", [])).start()


ORPHAN_PARENT = """
import asyncio, sys
from pathlib import Path
from wisp.serving.workloads import make_runtime, WorkloadSpec

async def main():
    spec = WorkloadSpec(revision="o-00001", namespace="default", workload_class="container",
                        directory=Path(sys.argv[1]), image="./box", command=["sleep", "600"])
    runtime = make_runtime(spec)
    await runtime.start()
    instance = await runtime.spawn("o-00001-deployment-xxxxx", 1, Path(sys.argv[1]) / "o.log")
    print(instance.pid, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip()
    except FileNotFoundError:
        return ""


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for init (which reaps orphans when it gets to them) to collect it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_instances_die_with_a_killed_daemon(tmp_path: Path) -> None:
    # A daemon killed with SIGKILL cannot stop its instances; the kernel must (parent-death signal).
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ORPHAN_PARENT, str(tmp_path), stdout=asyncio.subprocess.PIPE)
    assert parent.stdout is not None
    pid = int(await asyncio.wait_for(parent.stdout.readline(), 30))
    # setpriv sets the parent-death signal and then execs the command: once `sleep` runs, the guard is armed
    # (a daemon killed in the microseconds before that would orphan it; that window is not what this tests).
    deadline = time.monotonic() + 10
    while _command(pid) != "sleep" and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # no event tells us another process has exec'd
    assert _command(pid) == "sleep", f"the instance did not start: {_command(pid)!r}"
    parent.kill()
    await parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        await asyncio.sleep(0.02)  # no event tells us another process's child has gone
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("the container instance outlived its daemon")
