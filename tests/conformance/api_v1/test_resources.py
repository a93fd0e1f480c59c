"""knative/serving test/conformance/api/v1/resources_test.go: a Revision with a memory limit serves requests
that stay under it, and one that goes over it gets no answer (the instance is killed: OOMKilled, restarted).
Upstream uses 350Mi and its ExceedingMemoryLimitSize; scaled down here. A local process has a cgroup of its own
(and wisp reports the OOM kill on its pod); an OCI container gets the engine's --memory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.conftest import Target, conformance_daemon, knative_service

HOST = "resources.default.localhost"


async def test_custom_resources_limits(tmp_path: Path, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    resources = {"limits": {"memory": "96Mi"}, "requests": {"memory": "96Mi"}}
    user_cwd = tmp_path / "cwd"  # where the user ran `wisp up`: the daemon writes nothing there
    user_cwd.mkdir()
    monkeypatch.chdir(user_cwd)
    async with conformance_daemon(tmp_path, target) as h, httpx.AsyncClient(base_url=h.api, timeout=10) as api:
        h.apply(knative_service("resources", target.container(resources=resources)))
        await h.ready("resources", timeout=60)

        async def bloat(mb: int) -> int:
            r = await h.request(HOST, "/bloat", method="POST", params={"mb": mb}, timeout=30)
            return r.status_code

        assert await bloat(20) == 200
        assert await bloat(40) == 200
        assert await bloat(300) >= 500  # over the limit: the kernel kills the instance mid-request
        if target.kind == "oci":
            # The container is gone and replaced; a new one serves (what upstream checks ends above).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while await bloat(20) != 200:
                assert loop.time() < deadline
                await asyncio.sleep(0.5)
            assert list(user_cwd.iterdir()) == []  # podman's conmon writes `oom` into its working directory
            return

        async def statuses() -> list[dict[str, Any]]:
            pods = (await api.get("/api/v1/namespaces/default/pods")).json()["items"]
            return [c for p in pods for c in p["status"]["containerStatuses"]]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not any(s.get("lastState", {}).get("terminated", {}).get("reason") == "OOMKilled" and s["ready"]
                      for s in await statuses()):
            assert loop.time() < deadline, await statuses()
            await asyncio.sleep(0.2)
        # At least one restart: under load the ingress may send the failed request once more (a connection reset
        # before any answer counts as unreachable), and the restarted container is killed a second time.
        assert [s["restartCount"] >= 1 for s in await statuses()] == [True]
        events = (await api.get("/api/v1/namespaces/default/events")).json()["items"]
        assert any(e["type"] == "Warning" and e["reason"] == "OOMKilled" and e["involvedObject"]["kind"] == "Pod"
                   for e in events), events
        assert await bloat(20) == 200  # the restarted container serves again
