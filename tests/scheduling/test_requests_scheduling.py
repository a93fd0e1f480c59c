"""resources.requests scheduled against the machine's allocatable CPU and memory, as on a one-node cluster: an
instance that does not fit stays Pending (PodScheduled False, a FailedScheduling event) while its requests are
held, and starts when room is given back."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.conftest import APP_DIR, knative_service
from tests.serving.harness import running_daemon
from wisp.api import kinds as k
from wisp.serving.node_resources import NodeResources, Requests, reserved

COMMAND = ["python3", str(APP_DIR / "runtime.py")]


ZERO_INITIAL_SCALE = {"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
                      "data": {"allow-zero-initial-scale": "true"}}


def service(name: str, cpu: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return knative_service(name, {"image": str(APP_DIR), "command": COMMAND,
                                  "resources": {"requests": {"cpu": cpu}}}, annotations=annotations)


async def pods(api: httpx.AsyncClient, prefix: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await api.get("/api/v1/namespaces/default/pods")).json()["items"]
    return [p for p in items if p["metadata"]["name"].startswith(prefix)]


async def test_an_instance_that_does_not_fit_waits_pending_and_its_requests_are_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WISP_SYSTEM_RESERVED", "cpu=0,memory=0")
    allocatable = len(os.sched_getaffinity(0)) * 1000
    async with running_daemon(tmp_path / "state") as h, httpx.AsyncClient(base_url=h.api, timeout=10) as api:
        # "small" is Ready at zero instances (initial scale 0); then "big" takes all but 500m of the CPU.
        h.apply(ZERO_INITIAL_SCALE, service("small", "1000m", {"autoscaling.knative.dev/initial-scale": "0"}))
        await h.ready("small")
        h.apply(service("big", f"{allocatable - 500}m"))
        await h.ready("big")

        # A request for "small" scales it from zero, but its instance does not fit: Pending, and the request is
        # held (the activator's part) ...
        held = asyncio.create_task(h.request("small.default.localhost", "/healthz/readiness", timeout=60))

        async def pending() -> list[dict[str, Any]]:
            return [p for p in await pods(api, "small-") if p["status"]["phase"] == "Pending"
                    and p["status"].get("conditions", [{}])[0].get("reason") == "Unschedulable"]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not await pending():
            assert loop.time() < deadline, await pods(api, "small-")
            await asyncio.sleep(0.1)
        message = (await pending())[0]["status"]["conditions"][0]["message"]
        assert message.startswith("0/1 nodes are available: 1 Insufficient cpu."), message
        events = (await api.get("/api/v1/namespaces/default/events")).json()["items"]
        assert any(e["reason"] == "FailedScheduling" and e["type"] == "Warning" for e in events), events
        assert not held.done()

        # ... until room is given back: "big" goes away, the instance is placed and answers the held request.
        h.daemon.store.delete(k.SERVICE, "default", "big")
        r = await held
        assert (r.status_code, r.text) == (200, "ready")
        assert [p["status"]["phase"] for p in await pods(api, "small-")] == ["Running"]


def test_node_resources_fit_and_give_back() -> None:
    node = NodeResources(cpu_millis=2000, memory=1024)
    woken: list[int] = []
    assert node.take(Requests(1500, 512)) and not node.take(Requests(1000, 0))
    assert "1 Insufficient cpu" in node.why_not(Requests(1000, 0))
    assert "1 Insufficient memory" in node.why_not(Requests(0, 600))
    node.wait_for_room(lambda: woken.append(1))
    node.give_back(Requests(1500, 512))
    assert woken == [1] and node.take(Requests(1000, 0))


def test_reserved_syntax() -> None:
    assert reserved("cpu=500m,memory=1Gi") == Requests(500, 2**30)
    assert reserved(None).memory > 0
    with pytest.raises(ValueError, match="WISP_SYSTEM_RESERVED"):
        reserved("disk=1Gi")
