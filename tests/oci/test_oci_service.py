"""Knative Services from OCI images through a real wisp daemon and podman: the runtime contract, Kubernetes'
command/args rules, a bad image, scale from zero and back, a container that exits, and `wisp logs`."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oci_images import engine
from tests.serving.harness import Harness, running_daemon, service
from wisp.api import kinds as k
from wisp.control.conditions import get_condition
from wisp.serving.workloads.oci import OciRuntime

TOKEN = "wisp-api-token-that-must-stay-in-the-daemon"
DAEMON_ONLY = "WISP_TEST_DAEMON_ONLY_VARIABLE"
SECRET = {
    "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "default"},
    "data": {"password": base64.b64encode(b"declared-secret-value").decode()},
}
CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "default"},
          "data": {"MODE": "fast"}}
ENV = [{"name": "GREETING", "value": "hi"},
       {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}]
FAST_AUTOSCALER = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
    "data": {"scale-to-zero-grace-period": "2s", "allow-zero-initial-scale": "true"},
}

pytestmark = pytest.mark.usefixtures("oci_env")


def oci_service(name: str, image: str, *, annotations: dict[str, str] | None = None,
                **container: Any) -> dict[str, Any]:
    return service(name, image, function=False, annotations=annotations, spec={"timeoutSeconds": 10},
                   container=container)


async def podman(*args: str) -> str:
    result = await asyncio.to_thread(subprocess.run, [engine(), *args], capture_output=True, text=True,
                                     timeout=60, check=True)
    return result.stdout


async def containers_of(h: Harness) -> list[str]:
    """Names of this daemon's containers, running or not."""
    out = await podman("ps", "-a", "--format", "{{.Names}}", "--filter",
                       f"label=wisp.dev/daemon={h.daemon.containers.label}")
    return out.split()


@asynccontextmanager
async def oci_daemon(state: Path, **options: Any) -> AsyncIterator[Harness]:
    """`running_daemon`, then the check that its stop left none of its containers (removed if it did)."""
    label = ""
    async with running_daemon(state, **options) as h:
        label = h.daemon.containers.label
        yield h
    out = await podman("ps", "-a", "--format", "{{.Names}}", "--filter", f"label=wisp.dev/daemon={label}")
    if left := out.split():
        await podman("rm", "-f", "-t", "0", *left)
        pytest.fail(f"the daemon stopped, but its containers were left: {left}")


async def get_json(h: Harness, host: str, path: str = "/") -> dict[str, Any]:
    r = await h.request(host, path)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_a_service_from_an_image_gets_the_runtime_contract(
        tmp_path: Path, server_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WISP_TOKEN", TOKEN)
    monkeypatch.setenv(DAEMON_ONLY, "leaked")
    async with oci_daemon(tmp_path / "state", token=TOKEN) as h:
        h.apply(SECRET, CONFIG, oci_service("hello", server_image, env=ENV,
                                            envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}]))
        await h.ready("hello", timeout=90)
        seen = await get_json(h, "hello.default.localhost", "/?q=1")
        env = seen["env"]
        assert {key: env[key] for key in ("K_SERVICE", "K_CONFIGURATION", "K_REVISION")} == {
            "K_SERVICE": "hello", "K_CONFIGURATION": "hello", "K_REVISION": "hello-00001"}
        assert env["PORT"].isdigit() and env["GREETING"] == "hi" and env["CFG_MODE"] == "fast"
        assert env["DB_PASSWORD"] == "declared-secret-value"
        # Nothing of the daemon's own environment: no token, no PATH/HOME (the image has its own), no engine conf.
        assert TOKEN not in str(env) and DAEMON_ONLY not in env and "CONTAINERS_CONF" not in env
        assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        headers = {name.lower(): value for name, value in seen["headers"].items()}
        assert headers["host"] == "hello.default.localhost" and headers["x-forwarded-proto"] == "http"
        assert "forwarded" in headers and "x-forwarded-for" in headers
        assert seen["argv"] == ["python3", "/app/serve.py", "from-image-cmd"]

        # Knative's tag-to-digest resolution, recorded on the Revision.
        revision = h.daemon.store.get(k.REVISION, "default", "hello-00001")
        assert revision is not None
        digest = (await podman("image", "inspect", "--format", "{{.Digest}}", server_image)).strip()
        assert revision["status"]["containerStatuses"][0]["imageDigest"] == f"{server_image.split(':')[0]}@{digest}"

        # `wisp logs`: the instance's output, prefixed with its name.
        async with httpx.AsyncClient(base_url=h.api, timeout=10,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            logs = (await api.get("/api/v1/namespaces/default/services/hello/logs",
                                  params={"follow": "false"})).text
        assert "serving on" in logs and "GET /?q=1" in logs and "hello-00001-deployment-" in logs


async def test_command_args_working_dir_and_user(tmp_path: Path, server_image: str) -> None:
    async with oci_daemon(tmp_path / "state") as h:
        h.apply(oci_service("args", server_image, args=["one", "two"]),
                oci_service("cmd", server_image, command=["python3", "-X", "utf8", "/app/serve.py"], args=["x"],
                            workingDir="/tmp", securityContext={"runAsUser": 4321}))
        await asyncio.gather(h.ready("args", timeout=90), h.ready("cmd", timeout=90))
        assert (await get_json(h, "args.default.localhost"))["argv"] == ["python3", "/app/serve.py", "one", "two"]
        seen = await get_json(h, "cmd.default.localhost")
        assert seen["argv"] == ["python3", "-X", "utf8", "/app/serve.py", "x"]
        assert (seen["cwd"], seen["uid"]) == ("/tmp", 4321)


async def test_a_bad_image_makes_the_revision_not_ready_naming_it(tmp_path: Path) -> None:
    missing = "localhost/wisp-test-no-such-image:1"
    async with oci_daemon(tmp_path / "state") as h:
        h.apply(oci_service("ghost", missing), oci_service("never", missing, imagePullPolicy="Never"))
        for name in ("ghost", "never"):
            failed = await h.failed(name, timeout=90)
            ready = get_condition(failed, "Ready")
            assert ready is not None and missing in str(ready.get("message")), failed["status"]
        revision = h.daemon.store.get(k.REVISION, "default", "ghost-00001")
        assert revision is not None
        condition = get_condition(revision, "Ready")
        assert condition is not None and f'Unable to fetch image "{missing}"' in str(condition.get("message"))
        assert "imageDigest" not in revision["status"]["containerStatuses"][0]
        never = h.daemon.store.get(k.REVISION, "default", "never-00001")
        assert never is not None and "is not present with pull policy of Never" in str(
            (get_condition(never, "Ready") or {}).get("message"))
        r = await h.request("ghost.default.localhost")
        assert r.status_code == 503 and missing in r.text


async def test_scale_from_zero_and_back(tmp_path: Path, server_image: str) -> None:
    async with oci_daemon(tmp_path / "state", tick_interval=0.5) as h:
        h.apply(FAST_AUTOSCALER, oci_service("cold", server_image, annotations={
            "autoscaling.knative.dev/initial-scale": "0", "autoscaling.knative.dev/window": "6s"}))
        await h.ready("cold", timeout=90)
        runner = h.daemon.dataplane.runner(("default", "cold-00001"))
        assert runner is not None and isinstance(runner.runtime, OciRuntime)
        assert not runner.pods and await containers_of(h) == []
        for round_ in range(2):
            started = time.monotonic()
            assert (await get_json(h, "cold.default.localhost"))["env"]["K_REVISION"] == "cold-00001"
            cold = time.monotonic() - started
            assert len(await containers_of(h)) == 1, round_
            # Idle: after the stable window and the grace period it is back at zero, its container removed.
            deadline = time.monotonic() + 40
            while runner.pods or await containers_of(h):
                assert time.monotonic() < deadline, "never scaled back to zero"
                await asyncio.sleep(0.5)
            print(f"scale from zero, round {round_}: {cold * 1000:.0f} ms to the first response")


async def test_a_container_that_exits_is_replaced(tmp_path: Path, server_image: str) -> None:
    async with oci_daemon(tmp_path / "state") as h:
        # min-scale 1: with no ready instance and no traffic the autoscaler may otherwise decide zero meanwhile.
        h.apply(oci_service("phoenix", server_image, annotations={"autoscaling.knative.dev/min-scale": "1"}))
        await h.ready("phoenix", timeout=90)
        [first] = await containers_of(h)
        await podman("kill", first)  # the app dies: status 137, as after an OOM kill
        deadline = time.monotonic() + 60
        while True:
            names = await containers_of(h)
            if names and first not in names:
                break
            assert time.monotonic() < deadline, names
            await asyncio.sleep(0.2)
        await h.ready("phoenix", timeout=60)
        assert (await get_json(h, "phoenix.default.localhost"))["env"]["K_SERVICE"] == "phoenix"


async def test_the_chosen_engine_is_the_one_used(tmp_path: Path, server_image: str) -> None:
    """`--container-engine docker` on a machine whose docker does not work: the Revision says so, podman or not."""
    async with oci_daemon(tmp_path / "state", container_engine="docker") as h:
        h.apply(oci_service("whale", server_image))
        failed = await h.failed("whale", timeout=60)
        message = str((get_condition(failed, "Ready") or {}).get("message"))
        assert f"image {server_image} needs a container engine (docker); none is installed and working: " in message
        assert "podman" not in message.split("working: ", 1)[1]


async def test_an_exec_readiness_probe_runs_in_the_container(tmp_path: Path, server_image: str) -> None:
    """The app listens at once, but the probe's file appears only when we make it, inside the container."""
    async with oci_daemon(tmp_path / "state") as h:
        h.apply(oci_service("gated", server_image, readinessProbe={
            "exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}))
        deadline = time.monotonic() + 60
        while not (names := await containers_of(h)):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # listening by now (a TCP probe would have passed): still not ready
        runner = h.daemon.dataplane.runner(("default", "gated-00001"))
        assert runner is not None and runner.ready_count == 0 and runner.pods
        await podman("exec", names[0], "touch", "/tmp/ready")
        await h.ready("gated", timeout=30)
        assert (await get_json(h, "gated.default.localhost"))["env"]["K_SERVICE"] == "gated"


async def test_a_failed_liveness_probe_restarts_the_container_in_place(tmp_path: Path, server_image: str) -> None:
    """Same pod, same container name, a new container: the old one is gone before the new one is created."""
    async with oci_daemon(tmp_path / "state") as h:
        # min-scale 1: without traffic the autoscaler could take it to zero while it restarts.
        liveness = {"exec": {"command": ["test", "!", "-f", "/tmp/die"]}, "periodSeconds": 1, "failureThreshold": 2}
        h.apply(oci_service("alive", server_image, annotations={"autoscaling.knative.dev/min-scale": "1"},
                            livenessProbe=liveness))
        await h.ready("alive", timeout=60)
        [name] = await containers_of(h)
        first_id = (await podman("container", "inspect", "--format", "{{.Id}}", name)).strip()
        await podman("exec", name, "touch", "/tmp/die")
        runner = h.daemon.dataplane.runner(("default", "alive-00001"))
        assert runner is not None
        deadline = time.monotonic() + 60
        while not (runner.pods and runner.pods[0].restarts == 1 and runner.ready_count == 1):
            assert time.monotonic() < deadline, ("never restarted", [(p.name, p.phase, p.restarts, p.ready)
                                                                     for p in runner.pods])
            await asyncio.sleep(0.2)
        assert await containers_of(h) == [name]
        assert (await podman("container", "inspect", "--format", "{{.Id}}", name)).strip() != first_id
        assert (await get_json(h, "alive.default.localhost"))["env"]["K_SERVICE"] == "alive"
