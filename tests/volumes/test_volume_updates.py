"""Volumes of a local-process instance through a real daemon: a ConfigMap change reaches the running instance's
files (no restart, the kubelet's ..data swap), a subPath file keeps what it had, each instance has its own /tmp,
and a volume that cannot be made is reported on the Revision."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.conformance.conftest import APP_DIR, knative_service
from tests.serving.harness import Harness, running_daemon
from wisp.api import kinds as k
from wisp.control.conditions import get_condition

COMMAND = ["python3", str(APP_DIR / "runtime.py")]


def config_map(data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "default"},
            "data": data}


async def read(h: Harness, path: str) -> tuple[int, str]:
    r = await h.request("vol.default.localhost", "/file", params={"path": path})
    return r.status_code, r.text


async def test_a_config_map_change_reaches_the_running_instance(tmp_path: Path) -> None:
    container = {"image": str(APP_DIR), "command": COMMAND, "volumeMounts": [
        {"name": "cfg", "mountPath": "/wisp-test-settings"},
        {"name": "cfg", "mountPath": "/pinned.txt", "subPath": "mode"}]}
    async with running_daemon(tmp_path / "state") as h:
        volumes = {"volumes": [{"name": "cfg", "configMap": {"name": "settings"}}]}
        h.apply(config_map({"mode": "fast", "level": "1"}), knative_service("vol", container, spec=volumes))
        await h.ready("vol")
        assert await read(h, "/wisp-test-settings/mode") == (200, "fast")
        pid = (await h.request("vol.default.localhost", "/")).json()["host"]["envs"]["PORT"]
        h.apply(config_map({"mode": "slow"}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while await read(h, "/wisp-test-settings/mode") != (200, "slow"):
            assert loop.time() < deadline, "the ConfigMap change never reached the instance"
            await asyncio.sleep(0.1)
        assert (await read(h, "/wisp-test-settings/level"))[0] == 404  # a removed key is gone
        assert await read(h, "/pinned.txt") == (200, "fast")  # a subPath gets no updates, as on Kubernetes
        assert (await h.request("vol.default.localhost", "/")).json()["host"]["envs"]["PORT"] == pid  # no restart
        assert not await asyncio.to_thread(Path("/wisp-test-settings").exists)  # made in the sandbox, not the host


async def test_each_sandboxed_instance_has_its_own_tmp(tmp_path: Path) -> None:
    container = {"image": str(APP_DIR), "command": COMMAND, "workingDir": "/tmp"}
    async with running_daemon(tmp_path / "state") as h:
        h.apply(knative_service("vol", container))
        await h.ready("vol")
        r = await h.request("vol.default.localhost", "/write", params={"path": "/tmp/wisp-sandbox-probe", "text": "x"})
        assert r.status_code == 200
        assert await read(h, "/tmp/wisp-sandbox-probe") == (200, "x")
        assert not await asyncio.to_thread(Path("/tmp/wisp-sandbox-probe").exists)


async def test_a_missing_config_map_is_reported_on_the_revision(tmp_path: Path) -> None:
    container = {"image": str(APP_DIR), "command": COMMAND, "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}
    async with running_daemon(tmp_path / "state") as h:
        h.apply(knative_service("vol", container, spec={"volumes": [{"name": "cfg", "configMap": {"name": "nope"}}]}))
        revision = await h.failed("vol-00001", kind=k.REVISION)
        ready = get_condition(revision, "Ready")
        assert ready is not None and 'spec.volumes[0].configMap: config map "nope" not found' in ready["message"]
        h.apply(config_map({"mode": "fast"}), {**config_map({}), "metadata": {"name": "nope", "namespace": "default"}})
        await h.ready("vol")  # the ConfigMap arrives: the revision starts


async def test_a_mount_point_that_would_be_made_on_the_host_is_refused(tmp_path: Path) -> None:
    container = {"image": str(APP_DIR), "command": COMMAND,
                 "volumeMounts": [{"name": "cfg", "mountPath": "/etc/wisp-test-no-such-dir/inner"}]}
    async with running_daemon(tmp_path / "state") as h:
        volumes = {"volumes": [{"name": "cfg", "configMap": {"name": "settings"}}]}
        h.apply(config_map({"mode": "fast"}), knative_service("vol", container, spec=volumes))
        revision = await h.failed("vol-00001", kind=k.REVISION)
        ready = get_condition(revision, "Ready")
        assert ready is not None and "would create it in the host's /etc" in ready["message"], ready
        assert not await asyncio.to_thread(Path("/etc/wisp-test-no-such-dir").exists)


async def test_a_sandboxed_instance_whose_code_is_under_tmp_still_finds_it(tmp_path: Path) -> None:
    # The sandbox has its own /tmp; a code directory under the host's /tmp is bound back in.
    assert tmp_path.parts[1] == "tmp" or not str(tmp_path).startswith("/tmp")
    code = tmp_path / "app"
    code.mkdir()
    await asyncio.to_thread((code / "runtime.py").write_text, (APP_DIR / "runtime.py").read_text())
    container = {"image": str(code), "command": ["python3", "runtime.py"],
                 "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}
    async with running_daemon(tmp_path / "state") as h:
        h.apply(knative_service("vol", container, spec={"volumes": [{"name": "scratch", "emptyDir": {}}]}))
        await h.ready("vol")
        info = (await h.request("vol.default.localhost", "/")).json()
        assert info["host"]["user"]["cwd"] == {"directory": str(code)}


async def test_an_exec_probe_of_a_sandboxed_instance_sees_its_volumes(tmp_path: Path) -> None:
    container = {"image": str(APP_DIR), "command": COMMAND,
                 "volumeMounts": [{"name": "cfg", "mountPath": "/wisp-test-probe-cfg"}],
                 "readinessProbe": {"exec": {"command": ["test", "-f", "/wisp-test-probe-cfg/mode"]}},
                 "livenessProbe": {"exec": {"command": ["test", "-f", "/wisp-test-probe-cfg/mode"]},
                                   "periodSeconds": 1, "failureThreshold": 1}}
    volumes = {"volumes": [{"name": "cfg", "configMap": {"name": "settings"}}]}
    async with running_daemon(tmp_path / "state") as h:
        h.apply(config_map({"mode": "fast"}), knative_service("vol", container, spec=volumes))
        await h.ready("vol")  # the probe ran inside the sandbox: /wisp-test-probe-cfg exists only there
        # A negative check needs a span of time: two liveness periods pass without a restart.
        await asyncio.sleep(2.5)
        async with httpx.AsyncClient(base_url=h.api) as api:
            pods = (await api.get("/api/v1/namespaces/default/pods")).json()["items"]
        assert [p["status"]["containerStatuses"][0]["restartCount"] for p in pods] == [0]
