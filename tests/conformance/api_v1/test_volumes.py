"""knative/serving test/conformance/api/v1/volumes_test.go: ConfigMap, Secret and projected volumes show their
data at the mountPath: a local process in its sandbox, an OCI container through the engine's -v.
TestProjectedServiceAccountToken is n/a: no API server issues tokens on one machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conformance.api_v1.kube import Kube, latest_revision_is, validate_control_plane
from tests.conformance.conftest import Target, conformance_daemon, knative_service
from tests.serving.harness import Harness
from wisp.types import Resource

HELLO_VOLUME_PATH = "/hello/world"  # upstream's test.HelloVolumePath
MOUNT = "/hello"


def config_map(name: str, data: dict[str, str]) -> Resource:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data}


def secret(name: str, data: dict[str, str]) -> Resource:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"},
            "stringData": data}


async def read(h: Harness, service: str, path: str) -> str:
    r = await h.request(f"{service}.default.localhost", "/file", params={"path": path})
    assert r.status_code == 200, r.text
    return r.text


async def serve(h: Harness, target: Target, name: str, volumes: list[dict[str, Any]],
                mounts: list[dict[str, Any]]) -> None:
    kube = Kube(h)
    body = knative_service(name, target.container(volumeMounts=mounts), spec={"volumes": volumes})
    created = await kube.create(body)
    assert created.status_code == 201, created.text
    await kube.wait("Service", name, latest_revision_is(f"{name}-00001"))
    await validate_control_plane(kube, target, name, name, f"{name}-00001", "1")


async def test_config_map_volume(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(config_map("cmv", {"world": "hello-volumes-cm"}))
        await serve(h, target, "cmv", [
            {"name": "projectedv", "configMap": {"name": "cmv", "optional": False}},
            {"name": "blah", "configMap": {"name": "does-not-exist", "optional": True}},
        ], [{"name": "projectedv", "mountPath": MOUNT}, {"name": "blah", "mountPath": "/does/not/matter"}])
        assert await read(h, "cmv", HELLO_VOLUME_PATH) == "hello-volumes-cm"


async def test_projected_config_map_volume(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(config_map("pcm", {"world": "hello-projected-cm"}))
        await serve(h, target, "pcm", [
            {"name": "projectedv", "projected": {"sources": [{"configMap": {"name": "pcm", "optional": False}}]}},
            {"name": "blah", "projected": {"sources": [{"configMap": {"name": "does-not-exist", "optional": True}}]}},
        ], [{"name": "projectedv", "mountPath": MOUNT}, {"name": "blah", "mountPath": "/does/not/matter"}])
        assert await read(h, "pcm", HELLO_VOLUME_PATH) == "hello-projected-cm"


async def test_secret_volume(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(secret("sv", {"world": "hello-volumes-secret"}))
        await serve(h, target, "sv", [
            {"name": "projectedv", "secret": {"secretName": "sv", "optional": False}},
            {"name": "blah", "secret": {"secretName": "does-not-exist", "optional": True}},
        ], [{"name": "projectedv", "mountPath": MOUNT}, {"name": "blah", "mountPath": "/does/not/matter"}])
        assert await read(h, "sv", HELLO_VOLUME_PATH) == "hello-volumes-secret"


async def test_projected_secret_volume(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(secret("psv", {"world": "hello-projected-secret"}))
        await serve(h, target, "psv", [
            {"name": "projectedv", "projected": {"sources": [{"secret": {"name": "psv", "optional": False}}]}},
            {"name": "blah", "projected": {"sources": [{"secret": {"name": "does-not-exist", "optional": True}}]}},
        ], [{"name": "projectedv", "mountPath": MOUNT}, {"name": "blah", "mountPath": "/does/not/matter"}])
        assert await read(h, "psv", HELLO_VOLUME_PATH) == "hello-projected-secret"


async def test_projected_complex(tmp_path: Path, target: Target) -> None:
    async with conformance_daemon(tmp_path, target) as h:
        h.apply(config_map("pcx", {"world": "text1", "other": "text2"}), secret("pcx", {"world": "text3"}))
        await serve(h, target, "pcx", [{"name": "projectedv", "projected": {"sources": [
            {"configMap": {"name": "pcx", "items": [{"key": "other", "path": "another"}], "optional": False}},
            {"secret": {"name": "pcx", "items": [{"key": "world", "path": "world"}], "optional": False}},
        ]}}], [{"name": "projectedv", "mountPath": MOUNT}])
        assert await read(h, "pcx", HELLO_VOLUME_PATH) == "text3"
        assert await read(h, "pcx", f"{MOUNT}/another") == "text2"
