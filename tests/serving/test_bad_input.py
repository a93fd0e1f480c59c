"""What bad input gets: a 422 naming the field, or Ready=False with a message; nothing half-applied."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.harness import running_daemon, service, write_function
from wisp.api import kinds as k

HELLO = """
def handle(request):
    return "hi"
"""


def _with(resource: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node = resource
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[last] = value  # type: ignore[index]
    return resource


BAD_SERVICES = [
    ("spec.template.spec.containerConcurrency", 1001, "spec.template.spec.containerConcurrency"),
    ("spec.template.spec.timeoutSeconds", 601, "spec.template.spec.timeoutSeconds"),
    ("metadata.name", "Bad_Name", "metadata.name"),
    ("spec.template.metadata.annotations",
     {"autoscaling.knative.dev/min-scale": "3", "autoscaling.knative.dev/max-scale": "2"},
     "spec.template.metadata.annotations[autoscaling.knative.dev/max-scale]"),
    ("spec.traffic", [{"latestRevision": True, "percent": 60}], "spec.traffic"),
    ("spec.template.spec.containers.0.env", [{"name": "PORT", "value": "1"}],
     "spec.template.spec.containers[0].env[0].name"),
    ("spec.template.spec.containers.0.env", [{"name": "K_REVISION", "value": "1"}],
     "spec.template.spec.containers[0].env[0].name"),
    ("spec.template.spec.containers.0.ports", [{"containerPort": 8012}],
     "spec.template.spec.containers[0].ports"),
]


@pytest.mark.parametrize(("path", "value", "field"), BAD_SERVICES, ids=[c[2] for c in BAD_SERVICES])
async def test_invalid_service_is_rejected_with_its_field_path(
    tmp_path: Path, path: str, value: Any, field: str
) -> None:
    good = service("good", "./fn")
    bad = _with(service("bad", "./fn"), path, value)
    async with running_daemon(tmp_path / "state") as h:
        reply = await h.client.post(f"{h.api}/apply", json={"items": [good, bad]})
        assert reply.status_code == 422, reply.text
        fields = [c["field"] for c in reply.json()["details"]["causes"]]
        assert any(f.startswith(field) for f in fields), fields
        # Nothing from the rejected batch was applied, not even the valid first document.
        assert h.daemon.store.list(k.SERVICE) == []


@pytest.mark.parametrize(("body", "message"), [
    ({"apiVersion": "serving.knative.dev/v2", "kind": "Service", "metadata": {"name": "x"}}, "apiVersion"),
    ({"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "x"}}, "unknown kind"),
])
async def test_unknown_kind_or_version(tmp_path: Path, body: dict[str, Any], message: str) -> None:
    async with running_daemon(tmp_path / "state") as h:
        reply = await h.client.post(f"{h.api}/apply", json={"items": [body]})
        assert reply.status_code == 422
        assert message in reply.text


async def test_missing_traffic_revision_is_ready_false_naming_the_field(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", HELLO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("svc", code, traffic=[{"revisionName": "svc-09999", "percent": 100}]))
        svc = await h.failed("svc")
        ready = next(c for c in svc["status"]["conditions"] if c["type"] == "Ready")
        assert "spec.traffic[0].revisionName" in ready["message"]
        assert "svc-09999" in ready["message"]


async def test_function_that_cannot_be_imported(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", "import no_such_module_here\n")
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("broken", code))
        revision = await h.failed("broken-00001", kind=k.REVISION)
        ready = next(c for c in revision["status"]["conditions"] if c["type"] == "Ready")
        assert "no_such_module_here" in ready["message"]
        svc = await h.failed("broken")
        assert "no_such_module_here" in next(c for c in svc["status"]["conditions"] if c["type"] == "Ready")["message"]
        # Its host exists but cannot serve: 503 with a short reason (the traceback is for `wisp describe`).
        await h.wait_for(k.ROUTE, "default", "broken", lambda r: any(
            c["type"] == "Ready" and c["status"] == "False" for c in r.get("status", {}).get("conditions", [])))
        reply = await h.request("broken.default.localhost")
        assert reply.status_code == 503 and "ModuleNotFoundError in main.py" in reply.text
        assert "Traceback" not in reply.text


async def test_container_command_that_exits_at_once(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "crash.py").write_text("import sys\nprint('cannot find my config file', flush=True)\nsys.exit(3)\n")
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("crashy", box, function=False, container={"command": ["python3", "crash.py"]}))
        revision = await h.failed("crashy-00001", kind=k.REVISION)
        ready = next(c for c in revision["status"]["conditions"] if c["type"] == "Ready")
        assert "cannot find my config file" in ready["message"]
        assert "3" in ready["message"]


def _docker_works() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True, check=False).returncode == 0


async def test_oci_image_without_engine_is_ready_false(tmp_path: Path) -> None:
    # Docker's client is on these machines without an engine; podman (which works) is not chosen.
    if _docker_works():
        pytest.skip("docker has a working engine on this machine: no engine-less choice to test")
    async with running_daemon(tmp_path / "state", container_engine="docker") as h:
        h.apply(service("nginx", "docker.io/library/nginx:1", function=False))
        revision = await h.failed("nginx-00001", kind=k.REVISION)
        ready = next(c for c in revision["status"]["conditions"] if c["type"] == "Ready")
        assert "container engine" in ready["message"]


async def test_two_containers_are_ready_false(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    twin = service("twin", box, function=False, container={"command": ["true"], "ports": [{"containerPort": 8080}]})
    twin["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": str(box), "command": ["true"]})
    async with running_daemon(tmp_path / "state") as h:
        h.apply(twin)
        revision = await h.failed("twin-00001", kind=k.REVISION)
        ready = next(c for c in revision["status"]["conditions"] if c["type"] == "Ready")
        assert "one container" in ready["message"]


async def test_secret_values_never_leave_the_daemon(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", """
import os
def handle(request):
    return os.environ["PASSWORD"] + "|" + os.environ["USER_NAME"]
""")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "default"},
              "data": {"password": base64.b64encode(b"s3cr3t-value").decode()},
              "stringData": {"user": "alice-the-admin"}}
    env = [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
           {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}}]
    async with running_daemon(tmp_path / "state") as h:
        h.apply(secret, service("uses-secret", code, container={"env": env}))
        await h.ready("uses-secret")
        assert (await h.request("uses-secret.default.localhost")).text == "s3cr3t-value|alice-the-admin"
        for path in ("/api/v1/namespaces/default/secrets", "/api/v1/namespaces/default/secrets/creds"):
            text = (await h.client.get(h.api + path)).text
            assert "s3cr3t" not in text and base64.b64encode(b"s3cr3t-value").decode() not in text
            assert "alice-the-admin" not in text
            assert "password" in text  # the keys are shown, never the values


async def test_missing_secret_is_ready_false_then_recovers(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", HELLO)
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("waits", code, container={"env": env}))
        revision = await h.failed("waits-00001", kind=k.REVISION)
        assert "later" in next(c for c in revision["status"]["conditions"] if c["type"] == "Ready")["message"]
        h.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "later", "namespace": "default"},
                 "stringData": {"token": "t"}})
        await h.ready("waits")


async def test_non_loopback_api_requires_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wisp.daemon import Daemon, DaemonOptions, StartupError

    monkeypatch.delenv("WISP_TOKEN", raising=False)
    daemon = Daemon(DaemonOptions(host="0.0.0.0", port=0, api_port=0, state_dir=tmp_path / "s"))
    with pytest.raises(StartupError, match="WISP_TOKEN"):
        await daemon.start()


async def test_token_is_enforced_when_set(tmp_path: Path) -> None:
    async with running_daemon(tmp_path / "state", token="letmein") as h:
        denied = await h.client.get(f"{h.api}/api/v1/namespaces/default/secrets")
        assert denied.status_code == 401
        allowed = await h.client.get(f"{h.api}/api/v1/namespaces/default/secrets",
                                     headers={"Authorization": "Bearer letmein"})
        assert allowed.status_code == 200
        _ = httpx


async def test_volumes_are_ready_false_saying_so(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", HELLO)
    svc = service("mounts", code, container={"volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]})
    svc["spec"]["template"]["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "cfg"}}]
    async with running_daemon(tmp_path / "state") as h:
        h.apply(svc)
        revision = await h.failed("mounts-00001", kind=k.REVISION)
        ready = next(c for c in revision["status"]["conditions"] if c["type"] == "Ready")
        assert "spec.containers[0].volumeMounts" in ready["message"] and "not supported" in ready["message"]
