"""Each build context built and run for real with podman, answering as the wisp-served original does; and the
round trip: the exported manifests, pointing at the built images, applied to a wisp daemon that serves them
through its OCI container class (podman).

podman, runc and mmdebstrap come from `make test-install`; where they are missing these tests skip, and fail
in CI (tests/oci_images.py). The base image is Debian's python3 (no registry is reachable here), named with
`wisp build --base-image`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import typer
import yaml
from typer.testing import CliRunner

from tests import oci_images
from tests.export.conftest import APPS, DOMAIN, EXAMPLES, KAFKA, func_project, read_export
from tests.wisp_process import WispProcess
from wisp.cli import export_commands
from wisp.eventing.local_kafka import LocalKafka, ensure_topics
from wisp.export.export import export
from wisp.export.options import ExportOptions

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(1800)]

REGISTRY = "registry.wisp.test/export-images"
START_TIMEOUT_S = 60.0
SERVED = ("hello", "hello-container", "echo", "demo-barrage", "test-barrage-process", "greeter")


def _cli() -> typer.Typer:
    app = typer.Typer()
    export_commands.register(app)
    app.callback()(lambda: None)
    return app


@dataclass
class Built:
    out: Path
    docs: dict[str, dict[str, Any]]  # Service name → exported Service
    images: dict[str, str]  # Service name → image
    env: dict[str, str]  # podman's environment
    project: Path
    export_output: str
    build_output: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("export-images")
    env = oci_images.engine_env(oci_images.containers_conf(tmp / "conf"))
    oci_images.engine()
    base = oci_images.base_image(env)
    project = func_project(tmp / "projects")
    out = tmp / "out"
    runner = CliRunner()
    started = time.perf_counter()
    exported = runner.invoke(_cli(), ["export", *map(str, EXAMPLES), str(APPS / "events"), str(project), "-o",
                                      str(out), "--registry", REGISTRY, "--kafka", KAFKA, "--domain", DOMAIN])
    assert exported.exit_code == 0, exported.output
    print(f"export: {time.perf_counter() - started:.2f}s\n{exported.output}")
    build = runner.invoke(_cli(), ["build", str(out), "--base-image", base], env={"CONTAINERS_CONF":
                                                                                   env["CONTAINERS_CONF"]})
    assert build.exit_code == 0, build.output
    print(build.output)
    docs = {d["metadata"]["name"]: d for ds in read_export(out).values() for d in ds if d["kind"] == "Service"}
    images = {name: d["spec"]["template"]["spec"]["containers"][0]["image"] for name, d in docs.items()}
    assert set(images) == set(SERVED)
    try:
        yield Built(out, docs, images, env, project, exported.output, build.output)
    finally:
        for image in set(images.values()):
            oci_images.remove_image(image, env)


# -- the originals, served by wisp from the source manifests ------------------------------------------------


def _served_sources(tmp: Path, project: Path) -> Path:
    """The source manifests with absolute code paths (TABLE_URL in this test's directory), in one folder."""
    served = tmp / "served"
    served.mkdir()
    sources = [EXAMPLES[0] / "00-secret.yaml", EXAMPLES[0] / "10-process.yaml", EXAMPLES[0] / "30-homepage.yaml",
               EXAMPLES[1] / "hello.yaml", APPS / "events" / "events.yaml"]
    for source in sources:
        docs = [d for d in yaml.safe_load_all(source.read_text()) if d]
        for doc in docs:
            for container in (doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []):
                if container["image"].startswith("./"):
                    container["image"] = str((source.parent / container["image"]).resolve())
                for var in container.get("env") or []:
                    if var["name"] == "TABLE_URL":
                        var["value"] = f"sqlite:///{tmp}/original.db"
        (served / source.name).write_text(yaml.safe_dump_all(docs))
    shutil.copytree(project, served / project.name)
    return served


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def original(built: Built, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WispProcess]:
    tmp = tmp_path_factory.mktemp("original")
    daemon = WispProcess(_served_sources(tmp, built.project), tmp / "state", "127.0.0.1:9", tmp / "wisp.log")
    await daemon.start(timeout=240)
    try:
        yield daemon
    finally:
        await daemon.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def round_trip(built: Built, tmp_path_factory: pytest.TempPathFactory,
                     original: WispProcess) -> AsyncIterator[WispProcess]:
    """The exported manifests as they are (images, DomainMapping and all), plus the Secret the cluster would
    have been given with `kubectl create secret`, applied to a wisp daemon that runs images with podman."""
    tmp = tmp_path_factory.mktemp("round-trip")
    manifests = tmp / "manifests"
    manifests.mkdir()
    for name in ("10-process.yaml", "30-homepage.yaml", "hello.yaml", "events.yaml", "greeter.yaml"):
        shutil.copy(built.out / name, manifests / name)
    shutil.copy(EXAMPLES[0] / "00-secret.yaml", manifests / "00-secret.yaml")
    daemon = WispProcess(manifests, tmp / "state", "127.0.0.1:9", tmp / "wisp.log")
    await _start_with_podman(daemon, built)
    try:
        yield daemon
    finally:
        await daemon.stop()


async def _start_with_podman(daemon: WispProcess, built: Built) -> None:
    """Start the daemon with the machine's containers.conf in its environment, as a user's shell has it."""
    saved = os.environ.get("CONTAINERS_CONF")
    os.environ["CONTAINERS_CONF"] = built.env["CONTAINERS_CONF"]
    try:
        await daemon.start(timeout=240)
    finally:
        if saved is None:
            os.environ.pop("CONTAINERS_CONF")
        else:
            os.environ["CONTAINERS_CONF"] = saved


# -- each image on its own, as Knative's runtime contract starts it -----------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _podman(built: Built, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([oci_images.engine(), *args], env=built.env, capture_output=True, text=True, timeout=120,
                          check=check)


@contextlib.asynccontextmanager
async def run_image(built: Built, service: str) -> AsyncIterator[str]:
    """`podman run` the Service's image with PORT, the K_* variables and the manifest's env and command (a
    Secret's keys get the values the source Secret has); the base URL once it accepts connections."""
    doc = built.docs[service]
    container = doc["spec"]["template"]["spec"]["containers"][0]
    port = _free_port()
    env = {"PORT": str(port), "K_SERVICE": service, "K_CONFIGURATION": service, "K_REVISION": f"{service}-00001"}
    for var in container.get("env") or []:
        env[var["name"]] = var.get("value", "")
    name = f"wisp-export-test-{uuid.uuid4().hex[:8]}"
    args = ["run", "-d", "--rm", "--name", name]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    args.append(built.images[service])
    args += [*(container.get("command") or []), *(container.get("args") or [])]
    started = await asyncio.to_thread(_podman, built, *args)
    assert started.returncode == 0, started.stderr
    try:
        await _wait_listening(built, port, name)
        yield f"http://127.0.0.1:{port}"
    finally:
        await asyncio.to_thread(_podman, built, "rm", "-f", name)


async def _wait_listening(built: Built, port: int, name: str) -> None:
    """Knative's default readiness: the TCP probe on PORT. Fails at once if the container has exited."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        state = await asyncio.to_thread(_podman, built, "inspect", "--format", "{{.State.Running}}", name)
        if state.stdout.strip() != "true":
            logs = await asyncio.to_thread(_podman, built, "logs", name)
            raise AssertionError(f"{name} exited before listening:\n{logs.stdout}\n{logs.stderr}")
        await asyncio.sleep(0.2)  # a probe's period, as the kubelet's
    raise AssertionError(f"{name} did not listen on {port} within {START_TIMEOUT_S}s")


# -- what each app is asked, and what of the answer must match ---------------------------------------------

BARRAGE_EVENT = {"ce-id": "e-1", "ce-source": "/test", "ce-specversion": "1.0", "ce-type": "barrage.message",
                 "content-type": "application/json"}


@dataclass(frozen=True)
class Probe:
    service: str
    method: str
    path: str
    status: int  # what the original answers: the comparison is of real answers, not of two failures
    answer: Callable[[httpx.Response], Any]
    headers: dict[str, str] | None = None
    body: bytes | None = None


def _json(*keys: str) -> Callable[[httpx.Response], Any]:
    return lambda r: (r.status_code, {k: r.json().get(k) for k in keys})


PROBES = [
    Probe("hello", "GET", "/?name=wisp", 200, _json("message", "revision")),
    Probe("hello-container", "GET", "/", 200, _json("message")),
    Probe("echo", "POST", "/", 200, lambda r: (r.status_code, r.headers.get("ce-type"), r.headers.get("ce-source"),
                                          r.headers.get("ce-subject"), r.json()),
          {"ce-id": "1", "ce-source": "/tests", "ce-specversion": "1.0", "ce-type": "dev.wisp.test.ping",
           "content-type": "application/json"}, b'{"n": 7}'),
    Probe("echo", "POST", "/", 400, lambda r: r.status_code, {"content-type": "application/json"}, b"{}"),
    Probe("demo-barrage", "GET", "/", 200, lambda r: (r.status_code, r.headers["content-type"], r.content)),
    Probe("demo-barrage", "GET", "/api/stats?run=none", 200, lambda r: (r.status_code, r.json())),
    Probe("demo-barrage", "POST", "/api/send", 400, lambda r: (r.status_code, r.json()),
          {"content-type": "application/json"}, b'{"message": "", "concurrency": 1, "duration": 1}'),
    Probe("test-barrage-process", "POST", "/", 200, lambda r: (r.status_code, r.json()), BARRAGE_EVENT,
          b'{"id": "m-1", "text": "what a scam", "run": "r"}'),
    Probe("test-barrage-process", "POST", "/", 400, lambda r: (r.status_code, r.json()), BARRAGE_EVENT, b"[1]"),
    Probe("greeter", "GET", "/", 200, lambda r: (r.status_code, r.text)),
    Probe("greeter", "GET", "/health/readiness", 200, lambda r: r.status_code),
]


async def _ask(client: httpx.AsyncClient, base: str, probe: Probe, host: str | None = None) -> Any:
    headers = {**(probe.headers or {}), **({"host": host} if host else {})}
    response = await client.request(probe.method, base + probe.path, headers=headers, content=probe.body)
    assert response.status_code == probe.status, (probe, response.status_code, response.text[:500])
    return probe.answer(response)


def _host(service: str) -> str:
    return f"{service}.default.localhost"


async def test_each_image_answers_as_the_wisp_served_original(built: Built, original: WispProcess) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        for service in SERVED:
            probes = [p for p in PROBES if p.service == service]
            async with run_image(built, service) as base:
                for probe in probes:
                    expected = await _ask(client, original.ingress, probe, _host(service))
                    got = await _ask(client, base, probe)
                    assert got == expected, (service, probe.method, probe.path)
    assert "exported in" in built.export_output


async def test_the_round_trip_serves_the_exported_manifests_through_podman(
    built: Built, original: WispProcess, round_trip: WispProcess
) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        for probe in PROBES:
            expected = await _ask(client, original.ingress, probe, _host(probe.service))
            got = await _ask(client, round_trip.ingress, probe, _host(probe.service))
            assert got == expected, (probe.service, probe.method, probe.path)
        # The seed's domain, moved under --domain by the export, reaches the HomePage through its DomainMapping.
        page = await client.get(round_trip.ingress + "/", headers={"host": f"barrage.demo.{DOMAIN}"})
        assert page.status_code == 200 and b"<html" in page.content.lower()
        pods = await client.get(round_trip.api + "/apis/serving.knative.dev/v1/namespaces/default/revisions")
        assert pods.status_code == 200
    listed = (await asyncio.to_thread(_podman, built, "ps", "--format", "{{.Image}}", check=True)).stdout.split()
    assert {built.images[s] for s in SERVED} <= set(listed)  # served by containers of the built images


def _machine_address() -> str:
    """An address of this machine that is not loopback (`--kafka` refuses loopback, as a cluster could not use
    it): the interface the kernel would send from. No packet is sent by a UDP connect."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1
        address = str(probe.getsockname()[0])
    assert not address.startswith("127."), "this machine has no address but loopback"
    return address


async def _rows_of_run(built: Built, run: str) -> int:
    """Rows the processor's container has stored for `run` (its table is a SQLite file in its own /tmp)."""
    names = (await asyncio.to_thread(_podman, built, "ps", "--filter", "name=wisp-default-test-barrage-process",
                                     "--format", "{{.Names}}", check=True)).stdout.split()
    total = 0
    for name in names:
        query = ("import sqlite3, sys; print(sqlite3.connect('/tmp/wisp-barrage.db').execute("
                 "'SELECT count(*) FROM barrage WHERE run = ?', (sys.argv[1],)).fetchone()[0])")
        done = await asyncio.to_thread(_podman, built, "exec", name, "python3", "-c", query, run)
        total += int(done.stdout.strip() or 0) if done.returncode == 0 else 0
    return total


async def test_the_barrage_demo_round_trip_carries_events_through_kafka(
    built: Built, tmp_path_factory: pytest.TempPathFactory, round_trip: WispProcess
) -> None:
    """The whole exported demo, KafkaSource included: the HomePage's image produces to Kafka, the exported v1
    KafkaSource (with the delivery the seed's annotations became) delivers to the processor's image."""
    tmp = tmp_path_factory.mktemp("kafka-round-trip")
    kafka = LocalKafka(_free_port(), host=_machine_address(), log_file=tmp / "tansu.log")
    await kafka.start()
    daemon: WispProcess | None = None
    try:
        await ensure_topics(kafka.bootstrap_servers, ["barrage-info"], partitions=4)
        out = tmp / "out"
        await asyncio.to_thread(export, [EXAMPLES[0]], out,
                                ExportOptions.parse(REGISTRY, kafka.bootstrap_servers, DOMAIN, None, []))
        exported = read_export(out)
        assert exported["20-kafkasource.yaml"][0]["spec"]["bootstrapServers"] == [kafka.bootstrap_servers]
        for name in ("30-homepage.yaml", "10-process.yaml"):  # the same code: the images already built
            service = exported[name][0]
            assert service["spec"]["template"]["spec"]["containers"][0]["image"] == \
                built.images[service["metadata"]["name"]]
        manifests = tmp / "manifests"
        manifests.mkdir()
        for name in ("10-process.yaml", "20-kafkasource.yaml", "30-homepage.yaml"):
            shutil.copy(out / name, manifests / name)
        shutil.copy(EXAMPLES[0] / "00-secret.yaml", manifests / "00-secret.yaml")
        await round_trip.stop()  # its processor container is named as this one's; one demo at a time
        daemon = WispProcess(manifests, tmp / "state", kafka.bootstrap_servers, tmp / "wisp.log")
        await _start_with_podman(daemon, built)
        last: dict[str, Any] = {}
        body = {"message": "from the exported images", "concurrency": 2, "duration": 1}
        async with httpx.AsyncClient(timeout=120) as client, client.stream(
            "POST", f"{daemon.ingress}/api/send", json=body, headers={"host": _host("demo-barrage")}
        ) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.strip():
                    last = json.loads(line)
        assert last.get("done") and last["sent"] > 0 and not last.get("failed"), last
        deadline = time.monotonic() + 120
        while (stored := await _rows_of_run(built, last["run"])) < last["sent"]:
            assert time.monotonic() < deadline, f"{stored} of {last['sent']} stored"
            await asyncio.sleep(0.5)  # the processor commits rows in batches; its table is polled
        assert stored == last["sent"]
    finally:
        if daemon is not None:
            await daemon.stop()
        await kafka.stop()
