"""knative/serving test/conformance/runtime/liveness_probe_test.go: a liveness probe that keeps passing leaves the
container alone; once it fails failureThreshold times in a row the container is restarted (its pod's restart
count goes up) and the probe passes again on the new one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.conformance.conftest import Target, conformance_daemon, knative_service
from tests.serving.harness import Harness

HOST = "liveness.default.localhost"
CHECKS = 3  # upstream waits for 5 checks; periodSeconds 1 makes each a second


async def checks(h: Harness) -> int:
    r = await h.request(HOST, "/healthz/livenessCounter")
    return int(r.text) if r.status_code == 200 and r.text.isdigit() else -1


async def restart_counts(api: httpx.AsyncClient) -> list[int]:
    pods: list[dict[str, Any]] = (await api.get("/api/v1/namespaces/default/pods")).json()["items"]
    return [c["restartCount"] for p in pods if p["metadata"]["name"].startswith("liveness-")
            for c in p["status"]["containerStatuses"]]


async def until(what: str, check: Any, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.25)


async def test_liveness_with_fail(tmp_path: Path, target: Target) -> None:
    probe = {"httpGet": {"path": "/healthz/liveness"}, "periodSeconds": 1, "failureThreshold": 3}
    async with conformance_daemon(tmp_path, target) as h, httpx.AsyncClient(base_url=h.api, timeout=10) as api:
        h.apply(knative_service("liveness", target.container(livenessProbe=probe)))
        await h.ready("liveness", timeout=120)

        async def probed() -> bool:
            return await checks(h) >= CHECKS

        await until("the liveness probe ran a few times", probed)
        assert await restart_counts(api) == [0], "the container restarted while its liveness probe passed"

        assert (await h.request(HOST, "/start-failing", method="POST")).status_code == 200

        async def restarted() -> bool:
            return any(count > 0 for count in await restart_counts(api))

        await until("the container was restarted", restarted)
        await until("the liveness probe passes again on the restarted container", probed)
        assert await restart_counts(api) == [1]
