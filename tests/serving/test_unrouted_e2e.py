"""Re-applied Services leave nothing behind (bench/soak.py's finding): a Revision no Route targets goes to zero
and a function Revision's template and spare stop, so the daemon's process tree and fds stay flat; traffic
pinned back to an old Revision serves it again. A real daemon; processes and fds read from /proc."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.serving.harness import Harness, running_daemon, service, write_function
from wisp.api import kinds as k
from wisp.control import routing_state as rs
from wisp.control.conditions import get_condition
from wisp.types import Resource

pytestmark = pytest.mark.timeout(240)

CODE = """
import os

def handle(request):
    return {"v": os.environ["V"], "pid": os.getpid()}
"""

SERVER = """
import http.server, json, os

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"v": os.environ["V"], "pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def descendants(root: int) -> set[int]:
    """Every live process under `root` (the daemon runs in this test's process)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled(read: Callable[[], int], wanted: Callable[[int], bool], timeout: float = 30.0) -> int:
    """The value once it satisfies `wanted` and holds for 0.5 s (a spare is forked shortly after an order)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if wanted(value):
            await asyncio.sleep(0.5)
            if read() == value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never settled; last {value}")
        await asyncio.sleep(0.1)


def churn(code: Path, version: int, *, function: bool = True, traffic: list[dict[str, Any]] | None = None,
          name: str = "churn") -> Resource:
    container: dict[str, Any] = {"env": [{"name": "V", "value": str(version)}]}
    if not function:
        container["command"] = ["python", "server.py"]
    return service(name, code, function=function, container=container, traffic=traffic)


async def serving(h: Harness, name: str, revision: str) -> dict[str, Any]:
    """Wait until the Route serves `revision` alone; its reply."""
    def served(route: Resource) -> bool:
        traffic = route.get("status", {}).get("traffic") or []
        return [t.get("revisionName") for t in traffic] == [revision]

    await h.wait_for(k.ROUTE, "default", name, served)
    reply = await h.request(f"{name}.default.localhost")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def revision_of(h: Harness, name: str) -> Resource:
    found = h.daemon.store.get(k.REVISION, "default", name)
    assert found is not None
    return found


async def reapply_and_measure(h: Harness, code: Path, function: bool, count: int) -> None:
    me = os.getpid()
    h.apply(churn(code, 1, function=function))
    assert (await serving(h, "churn", "churn-00001"))["v"] == "1"
    processes = await settled(lambda: len(descendants(me)), lambda n: n > 0)
    baseline_fds = fds()

    for version in range(2, count + 2):
        h.apply(churn(code, version, function=function))
        assert (await serving(h, "churn", f"churn-{version:05d}"))["v"] == str(version)
    # The old revisions have gone to zero and (functions) released their templates: one revision's worth left.
    assert await settled(lambda: len(descendants(me)), lambda n: n <= processes) == processes
    assert await settled(fds, lambda n: n <= baseline_fds + 2) <= baseline_fds + 2  # not 3 per revision

    for version in range(1, count + 1):
        old = revision_of(h, f"churn-{version:05d}")
        assert rs.state_of(old) == rs.RESERVE
        assert old["metadata"]["annotations"].get(rs.ROUTES_ANNOTATION) is None
        runner = h.daemon.dataplane.runner(("default", f"churn-{version:05d}"))
        assert runner is not None and not runner.pods
        if function:
            assert not runner.runtime_running
        active = get_condition(old, "Active")
        assert active is not None and (active["status"], active["reason"]) == ("False", "NoTraffic")
        assert get_condition(old, "Ready")["status"] == "True"  # type: ignore[index]
    latest = revision_of(h, f"churn-{count + 1:05d}")
    assert rs.state_of(latest) == rs.ACTIVE and latest["metadata"]["annotations"][rs.ROUTES_ANNOTATION] == "churn"

    # Traffic pinned back to the first revision (the template unchanged: no new revision): served again.
    pinned = [{"revisionName": "churn-00001", "percent": 100}]
    h.apply(churn(code, count + 1, function=function, traffic=pinned))
    reply = await serving(h, "churn", "churn-00001")
    assert reply["v"] == "1"
    assert rs.state_of(revision_of(h, "churn-00001")) == rs.ACTIVE
    assert rs.state_of(revision_of(h, f"churn-{count + 1:05d}")) == rs.RESERVE
    assert await settled(lambda: len(descendants(me)), lambda n: n <= processes) == processes


async def test_reapplied_function_service_keeps_the_process_tree_and_fds_flat(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", CODE)
    async with running_daemon(tmp_path / "state", tick_interval=0.2) as h:
        await reapply_and_measure(h, code, function=True, count=5)


async def test_reapplied_container_service_keeps_the_process_tree_flat(tmp_path: Path) -> None:
    code = tmp_path / "ctr"
    code.mkdir()
    (code / "server.py").write_text(SERVER)
    async with running_daemon(tmp_path / "state", tick_interval=0.2) as h:
        await reapply_and_measure(h, code, function=False, count=3)


async def test_a_routed_revision_at_zero_keeps_its_template(tmp_path: Path) -> None:
    """Scale to zero of a revision a Route targets leaves its template (the millisecond cold start)."""
    code = write_function(tmp_path / "fn", CODE)
    config = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
              "data": {"scale-to-zero-grace-period": "1s"}}
    async with running_daemon(tmp_path / "state", tick_interval=0.2) as h:
        h.apply(config, service("warm", code, annotations={"autoscaling.knative.dev/window": "6s"},
                                container={"env": [{"name": "V", "value": "1"}]}))
        await h.ready("warm")
        runner = h.daemon.dataplane.runner(("default", "warm-00001"))
        assert runner is not None
        async with asyncio.timeout(60):
            while runner.pods:
                await asyncio.sleep(0.2)
        assert runner.runtime_running and h.daemon.dataplane.reachable(("default", "warm-00001"))
        reply = await h.request("warm.default.localhost")
        assert reply.status_code == 200 and reply.json()["v"] == "1"
