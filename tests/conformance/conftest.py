"""Knative Serving's conformance tests (knative/serving test/conformance), rewritten for wisp and run against
both kinds of container instance: a local directory run as a process, and an OCI image run through podman.

The app under test is `runtime_app/runtime.py` (the role of Knative's runtime test image): the same file is the
local directory and, copied into an image built `FROM` the tests' Debian base, the OCI image."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2
import hpack
import hyperframe
import pytest

from tests.oci_images import build_image, containers_conf, engine, engine_env
from tests.serving.harness import Harness, running_daemon
from wisp.api import kinds as k
from wisp.control.conditions import get_condition
from wisp.types import Resource

APP_DIR = Path(__file__).parent / "runtime_app"
RUNTIME_IMAGE = "localhost/wisp-conformance-runtime:1"
# The image runs as a non-root user, as Knative's test images (ko's nonroot, 65532) do.
CONTAINERFILE = """\
FROM {base}
COPY runtime.py /app/runtime.py
COPY deps /app/deps
WORKDIR /app
USER 65532:65532
ENTRYPOINT ["python3", "/app/runtime.py"]
"""
# The first test to need the image may build the tests' base image (mmdebstrap): its set-up gets this long.
BASE_BUILD_ALLOWANCE = 900


@dataclass(frozen=True)
class Target:
    """How the runtime app runs: `process` (image: a local directory, command given) or `oci` (an image)."""

    kind: str
    image: str
    command: tuple[str, ...]  # what runs the app: the directory's command, or the image's entrypoint
    env: dict[str, str] = field(default_factory=dict)  # for podman: CONTAINERS_CONF

    def container(self, **extra: Any) -> dict[str, Any]:
        """The container of a Service running the app; `extra` fields (env, args, probes, ...) added."""
        body: dict[str, Any] = {"image": self.image}
        if self.kind == "process":
            body["command"] = list(self.command)
        body.update(extra)
        return body


def _deps() -> dict[str, str]:
    """h2 and its two pure-Python dependencies, for the image's HTTP/2 answers (the base image has no pip)."""
    files: dict[str, str] = {}
    for module in (h2, hpack, hyperframe):
        package = Path(module.__file__ or "").parent
        for path in sorted(package.glob("*.py")):
            files[f"deps/{package.name}/{path.name}"] = path.read_text()
    return files


@pytest.fixture(scope="session")
def runtime_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    engine()
    conf = containers_conf(tmp_path_factory.mktemp("containers"))
    env = engine_env(conf)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_CONF", str(conf))  # the daemons the tests start run podman with it
        files = {"Containerfile": CONTAINERFILE, "runtime.py": (APP_DIR / "runtime.py").read_text(), **_deps()}
        yield build_image(RUNTIME_IMAGE, files, env), env


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        oci = callspec is not None and callspec.params.get("target") == "oci"
        if oci and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(BASE_BUILD_ALLOWANCE))


@pytest.fixture(params=["process", "oci"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "process":
        # The script by its absolute path: with an absolute workingDir the process does not start in APP_DIR.
        return Target("process", str(APP_DIR), ("python3", str(APP_DIR / "runtime.py")))
    image, env = request.getfixturevalue("runtime_image")
    return Target("oci", image, ("python3", "/app/runtime.py"), env)


async def _engine(env: dict[str, str], *args: str) -> str:
    result = await asyncio.to_thread(subprocess.run, [engine(), *args], env=env, capture_output=True, text=True,
                                     timeout=60, check=True)
    return result.stdout


@asynccontextmanager
async def conformance_daemon(tmp_path: Path, target: Target, **options: Any) -> AsyncIterator[Harness]:
    """A wisp daemon for one test; for OCI targets, the check that it left none of its containers."""
    label = ""
    async with running_daemon(tmp_path / "state", **options) as h:
        label = h.daemon.containers.label
        yield h
    if target.kind == "oci":
        out = await _engine(target.env, "ps", "-a", "--format", "{{.Names}}", "--filter",
                            f"label=wisp.dev/daemon={label}")
        if left := out.split():
            await _engine(target.env, "rm", "-f", "-t", "0", *left)
            pytest.fail(f"the daemon stopped, but its containers were left: {left}")


def knative_service(name: str, container: dict[str, Any], *, spec: dict[str, Any] | None = None,
                    annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                    traffic: list[dict[str, Any]] | None = None, template_name: str | None = None) -> Resource:
    """A container-class Knative Service (spec.template.spec: `spec` plus the one container)."""
    template_meta: dict[str, Any] = {"annotations": dict(annotations or {})}
    if template_name:
        template_meta["name"] = template_name
    body: Resource = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "labels": dict(labels or {})},
        "spec": {"template": {"metadata": template_meta, "spec": {**(spec or {}), "containers": [container]}}},
    }
    if traffic is not None:
        body["spec"]["traffic"] = traffic
    return body


def condition(resource: Resource, type_: str = "Ready") -> dict[str, Any]:
    found = get_condition(resource, type_)
    assert found is not None, f"no {type_} condition: {resource.get('status')}"
    return dict(found)


async def runtime_info(h: Harness, name: str, path: str = "/", **kwargs: Any) -> dict[str, Any]:
    """GET the app's runtime info through the ingress (Knative's fetchRuntimeInfo)."""
    r = await h.request(f"{name}.default.localhost", path, **kwargs)
    assert r.status_code == 200, r.text
    info: dict[str, Any] = r.json()
    return info


async def serve_and_fetch(h: Harness, target: Target, name: str = "runtime", *, timeout: float = 120,
                          headers: dict[str, str] | None = None, spec: dict[str, Any] | None = None,
                          **container: Any) -> dict[str, Any]:
    """Apply a Service running the app, wait until it is Ready, and return its runtime info."""
    h.apply(knative_service(name, target.container(**container), spec=spec))
    await h.ready(name, timeout=timeout)
    return await runtime_info(h, name, headers=headers or {})


def revision_of(h: Harness, service: str) -> Resource:
    svc = h.daemon.store.get(k.SERVICE, "default", service)
    assert svc is not None
    name = svc["status"]["latestReadyRevisionName"]
    revision = h.daemon.store.get(k.REVISION, "default", name)
    assert revision is not None
    return revision
