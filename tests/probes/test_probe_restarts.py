"""Startup and liveness probes through a real daemon, on a local-process instance of the conformance runtime
app: a startup probe gates readiness and restarts a container that never starts; an exec liveness probe restarts
it in place (same pod, restart count up) when it fails failureThreshold times."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conformance.conftest import APP_DIR, knative_service
from tests.serving.harness import running_daemon, service, write_function
from wisp.api import kinds as k

COMMAND = ["python3", "runtime.py"]


def container(**extra: Any) -> dict[str, Any]:
    return {"image": str(APP_DIR), "command": COMMAND, **extra}


async def pods(api: httpx.AsyncClient, prefix: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await api.get("/api/v1/namespaces/default/pods")).json()["items"]
    return [p for p in items if p["metadata"]["name"].startswith(prefix)]


async def until(check: Any, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_a_startup_probe_gates_readiness(tmp_path: Path) -> None:
    # Ready only after READY_DELAY; the startup probe (every second, 5 chances) lets it get there.
    startup = {"httpGet": {"path": "/healthz/readiness"}, "periodSeconds": 1, "failureThreshold": 5}
    async with running_daemon(tmp_path / "state") as h, httpx.AsyncClient(base_url=h.api) as api:
        h.apply(knative_service("slow", container(env=[{"name": "READY_DELAY", "value": "2"}], startupProbe=startup)))
        await h.ready("slow", timeout=60)
        r = await h.request("slow.default.localhost", "/healthz/readiness")
        assert (r.status_code, r.text) == (200, "ready")  # no request reached it before its startup probe passed
        assert [c["restartCount"] for p in await pods(api, "slow-") for c in p["status"]["containerStatuses"]] == [0]


async def test_a_failing_startup_probe_restarts_the_container(tmp_path: Path) -> None:
    startup = {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}
    async with running_daemon(tmp_path / "state") as h, httpx.AsyncClient(base_url=h.api) as api:
        h.apply(knative_service("never", container(startupProbe=startup)))

        async def restarted() -> bool:
            found = await pods(api, "never-")
            return any(c["restartCount"] >= 1 for p in found for c in p["status"]["containerStatuses"])

        await until(restarted)
        found = await pods(api, "never-")
        assert len(found) == 1 and not found[0]["status"]["containerStatuses"][0]["ready"]
        log = next((tmp_path / "state" / "logs" / "default").glob("never-00001/never-*.log")).read_text()
        assert "startup probe failed 2 times; the container is restarted" in log


async def test_an_exec_liveness_probe_restarts_the_container_in_place(tmp_path: Path) -> None:
    flag = tmp_path / "unhealthy"
    code = f"import os, sys; sys.exit(1 if os.path.exists({str(flag)!r}) else 0)"
    liveness = {"exec": {"command": [sys.executable, "-c", code]}, "periodSeconds": 1, "failureThreshold": 2}
    async with running_daemon(tmp_path / "state") as h, httpx.AsyncClient(base_url=h.api) as api:
        h.apply(knative_service("live", container(livenessProbe=liveness)))
        await h.ready("live", timeout=60)
        first = await pods(api, "live-")
        pid = first[0]["status"]["containerStatuses"][0]["pid"]
        flag.touch()

        async def restarted() -> bool:
            found = await pods(api, "live-")
            return bool(found) and found[0]["status"]["containerStatuses"][0]["restartCount"] == 1

        await until(restarted)
        flag.unlink()

        async def ready_again() -> bool:
            found = await pods(api, "live-")
            status = found[0]["status"]["containerStatuses"][0]
            return bool(status["ready"]) and status["pid"] != pid

        await until(ready_again)
        after = await pods(api, "live-")
        assert [p["metadata"]["name"] for p in after] == [p["metadata"]["name"] for p in first]  # the same pod
        assert (await h.request("live.default.localhost", "/healthz/livenessCounter")).status_code == 200


async def test_a_function_instance_runs_its_exec_readiness_probe(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", """
        import wisp

        @wisp.http
        def handle(request):
            return "hello"
    """)
    flag = tmp_path / "ready-flag"
    probe = {"exec": {"command": ["test", "-f", str(flag)]}}
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("fn", code, container={"readinessProbe": probe}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3
        while loop.time() < deadline:  # not ready while the command fails (the TCP probe would have passed)
            svc = h.daemon.store.get(k.SERVICE, "default", "fn")
            ready = [c for c in (svc or {}).get("status", {}).get("conditions", []) if c["type"] == "Ready"]
            assert not ready or ready[0]["status"] != "True"
            await asyncio.sleep(0.2)
        await asyncio.to_thread(flag.touch)
        await h.ready("fn", timeout=30)
        assert (await h.request("fn.default.localhost")).text == "hello"
