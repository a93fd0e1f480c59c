"""knative/serving test/conformance/runtime/readiness_probe_test.go: a Service is Ready, and answers, only once
its readiness probe passes (httpGet, tcpSocket, exec), with the default period and periodSeconds 1; and once an
instance's readiness fails after start, requests no longer reach it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.conftest import Target, conformance_daemon, knative_service

DELAY = "2"  # seconds; upstream waits 10 s
HANDLERS: dict[str, tuple[dict[str, Any], str]] = {
    "httpGet": ({"httpGet": {"path": "/healthz/readiness"}}, "READY_DELAY"),
    "tcpSocket": ({"tcpSocket": {}}, "LISTEN_DELAY"),
    "exec": ({"exec": {"command": ["probe"]}}, "READY_DELAY"),  # after the app's own command (target.command)
}
CASES = [pytest.param(handler, target, id=f"{handler}-{target}") for handler in HANDLERS
         for target in ("process", "oci")]


@pytest.mark.parametrize("period", [0, 1])
@pytest.mark.parametrize(("handler", "target"), CASES, indirect=["target"])
async def test_probe_runtime(tmp_path: Path, target: Target, handler: str, period: int) -> None:
    action, delay_var = HANDLERS[handler]
    if handler == "exec":
        action = {"exec": {"command": [*target.command, "probe"]}}
    probe = {**action, **({"periodSeconds": period} if period else {})}
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(knative_service("probe", target.container(env=[{"name": delay_var, "value": DELAY}],
                                                          readinessProbe=probe)))
        await h.ready("probe", timeout=120)
        r = await h.request("probe.default.localhost", "/healthz/readiness")
        assert (r.status_code, r.text) == (200, "ready")


@pytest.mark.parametrize("period", [0, 1])
async def test_probe_runtime_after_startup(tmp_path: Path, target: Target, period: int) -> None:
    probe = {"httpGet": {"path": "/healthz/readiness"}, **({"periodSeconds": period} if period else {})}
    async with conformance_daemon(tmp_path, target) as h:
        # A short timeoutSeconds: the requests held for an instance that never comes back end soon after the test.
        h.apply(knative_service("after", target.container(readinessProbe=probe), spec={"timeoutSeconds": 5}))
        await h.ready("after", timeout=120)
        host = "after.default.localhost"
        assert (await h.request(host, "/healthz/readiness")).status_code == 200
        assert (await h.request(host, "/start-failing")).status_code == 200
        # Its only instance fails readiness from now on: requests stop reaching it (they are held, and time out,
        # or are refused) within failureThreshold (3) periods.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            try:
                r = await h.request(host, "/", timeout=2)
            except httpx.TimeoutException:
                break
            if r.status_code == 503:
                break
            assert r.status_code == 200, r.text
            assert loop.time() < deadline, "requests still reach an instance whose readiness fails"
            await asyncio.sleep(0.2)
