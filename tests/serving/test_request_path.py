"""Serving end to end: real daemon, real instances, requests through the ingress by Host."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.serving.harness import Harness, running_daemon, service, write_function
from wisp.api import kinds as k

ECHO = """
import asyncio, os
import wisp

@wisp.http
async def handle(request):
    sleep = float(request.query_params.get("sleep", "0"))
    if sleep:
        await asyncio.sleep(sleep)
    names = ["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION", "GREETING"]
    return {
        "env": {n: os.environ.get(n) for n in names},
        "headers": {h: request.headers.get(h) for h in
                    ["host", "x-forwarded-for", "x-forwarded-proto", "forwarded"]},
    }
"""

CONTAINER_SERVER = """
import json, os, signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"env": {n: os.environ.get(n) for n in ["PORT", "K_SERVICE", "K_REVISION"]},
                           "host": self.headers.get("Host")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
"""


async def test_function_sees_runtime_contract_and_forwarded_headers(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("echo", code, container={"env": [{"name": "GREETING", "value": "hi"}]}))
        svc = await h.ready("echo")
        assert svc["status"]["url"] == f"http://echo.default.localhost:{h.daemon.network.port}"
        reply = (await h.request("echo.default.localhost")).json()
        env = reply["env"]
        assert env["K_SERVICE"] == "echo"
        assert env["K_CONFIGURATION"] == "echo"
        assert env["K_REVISION"] == "echo-00001"
        assert env["GREETING"] == "hi"
        assert env["PORT"] and int(env["PORT"]) != h.daemon.network.port
        headers = reply["headers"]
        assert headers["host"] == "echo.default.localhost"
        assert headers["x-forwarded-for"] == "127.0.0.1"
        assert headers["x-forwarded-proto"] == "http"
        assert "for=127.0.0.1" in headers["forwarded"] and "host=echo.default.localhost" in headers["forwarded"]


async def test_container_class_runs_its_command(tmp_path: Path) -> None:
    directory = tmp_path / "box"
    directory.mkdir()
    (directory / "server.py").write_text(CONTAINER_SERVER)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("box", directory, function=False, container={"command": ["python3", "server.py"]}))
        await h.ready("box")
        reply = (await h.request("box.default.localhost")).json()
        assert reply["env"]["K_SERVICE"] == "box"
        assert reply["env"]["K_REVISION"] == "box-00001"
        assert reply["host"] == "box.default.localhost"


async def test_template_change_creates_new_revision_and_moves_latest(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("echo", code, container={"env": [{"name": "GREETING", "value": "one"}]}))
        await h.ready("echo")
        h.apply(service("echo", code, container={"env": [{"name": "GREETING", "value": "two"}]}))
        svc = await h.wait_for(k.SERVICE, "default", "echo",
                               lambda s: s.get("status", {}).get("latestReadyRevisionName") == "echo-00002")
        assert svc["status"]["traffic"] == [{"revisionName": "echo-00002", "percent": 100, "latestRevision": True}]
        await h.ready("echo")
        reply = (await h.request("echo.default.localhost")).json()
        assert reply["env"]["GREETING"] == "two"
        assert h.daemon.store.get(k.REVISION, "default", "echo-00001") is not None


async def test_traffic_split_and_tags(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("split", code, template_name="split-blue"))
        await h.ready("split")
        traffic = [{"revisionName": "split-blue", "percent": 50, "tag": "blue"},
                   {"revisionName": "split-green", "percent": 50, "tag": "green"}]
        h.apply(service("split", code, template_name="split-green", traffic=traffic,
                        container={"env": [{"name": "GREETING", "value": "green"}]}))
        svc = await h.wait_for(k.SERVICE, "default", "split",
                               lambda s: len(s.get("status", {}).get("traffic", [])) == 2)
        port = h.daemon.network.port
        assert {t["tag"]: t["url"] for t in svc["status"]["traffic"]} == {
            "blue": f"http://blue-split.default.localhost:{port}",
            "green": f"http://green-split.default.localhost:{port}",
        }
        counts: Counter[str] = Counter()
        for _ in range(10):
            replies = await asyncio.gather(*(h.request("split.default.localhost") for _ in range(100)))
            counts.update(r.json()["env"]["K_REVISION"] for r in replies)
        assert sum(counts.values()) == 1000
        assert abs(counts["split-blue"] - 500) <= 50, counts
        for _ in range(20):
            assert (await h.request("green-split.default.localhost")).json()["env"]["K_REVISION"] == "split-green"
            assert (await h.request("blue-split.default.localhost")).json()["env"]["K_REVISION"] == "split-blue"


async def test_custom_domains(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    async with running_daemon(tmp_path / "state") as h:
        seed_style = service("page", code)
        seed_style["spec"]["template"]["metadata"]["annotations"].update({
            "fc.revision.serving.knative.aliyun.com/domain": '{"domain":"barrage.demo.localhost","path":"/*"}',
        })
        h.apply(seed_style, {
            "apiVersion": "serving.knative.dev/v1beta1", "kind": "DomainMapping",
            "metadata": {"name": "www.example.localhost", "namespace": "default"},
            "spec": {"ref": {"name": "page", "kind": "Service", "apiVersion": "serving.knative.dev/v1"}},
        })
        await h.ready("page")
        await h.ready("www.example.localhost", kind=k.DOMAIN_MAPPING)
        await h.ready("barrage.demo.localhost", kind=k.DOMAIN_MAPPING)
        for host in ("barrage.demo.localhost", "www.example.localhost"):
            reply = await h.request(host)
            assert reply.status_code == 200, reply.text
            assert reply.json()["env"]["K_SERVICE"] == "page"


async def test_cluster_local_is_not_public(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("inner", code, labels={"networking.knative.dev/visibility": "cluster-local"}))
        svc = await h.ready("inner")
        assert svc["status"]["url"] == "http://inner.default.svc.cluster.local"
        public = await h.request("inner.default.localhost")
        assert public.status_code == 404
        assert (await h.request("inner.default.svc.cluster.local")).status_code == 200


async def test_unknown_host_lists_hosts_and_body_limit(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    async with running_daemon(tmp_path / "state", body_limit=1024) as h:
        h.apply(service("echo", code))
        await h.ready("echo")
        missing = await h.request("nothing.default.localhost")
        assert missing.status_code == 404
        assert "echo.default.localhost" in missing.text
        big = await h.request("echo.default.localhost", method="POST", content=b"x" * 2048)
        assert big.status_code == 413
        assert "1024" in big.text


async def test_container_concurrency_queue_and_overflow(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("one", code, spec={"containerConcurrency": 1},
                        annotations={"wisp.dev/queue-depth": "1"}))
        await h.ready("one")
        throttler = h.daemon.dataplane.backend(("default", "one-00001"))[0]  # type: ignore[index]
        first = asyncio.create_task(h.request("one.default.localhost", "/?sleep=1"))
        while throttler.in_flight < 1:
            await asyncio.sleep(0.01)
        second = asyncio.create_task(h.request("one.default.localhost", "/?sleep=0"))
        while throttler.queued < 1:
            await asyncio.sleep(0.01)
        # The queue (depth 1) is full: a third request is turned away at once.
        third = await h.request("one.default.localhost")
        assert third.status_code == 503
        assert "overloaded" in third.text
        assert not second.done()  # still waiting behind the first: containerConcurrency 1 holds
        assert (await first).status_code == 200
        assert (await second).status_code == 200


async def test_timeout_seconds_answers_504(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("slow", code, spec={"timeoutSeconds": 1}))
        await h.ready("slow")
        started = time.monotonic()
        reply = await h.request("slow.default.localhost", "/?sleep=3")
        elapsed = time.monotonic() - started
        assert reply.status_code == 504
        assert 0.9 <= elapsed < 2.0, elapsed


async def test_killed_instance_gives_502_and_is_replaced(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("fragile", code))
        await h.ready("fragile")
        runner = h.daemon.dataplane.runner(("default", "fragile-00001"))
        assert runner is not None
        [pod] = runner.pods
        assert pod.instance is not None
        pending = asyncio.create_task(h.request("fragile.default.localhost", "/?sleep=10"))
        while pod.slot.in_flight < 1:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        os.kill(pod.instance.pid, signal.SIGKILL)
        reply = await pending
        assert reply.status_code == 502
        assert time.monotonic() - started < 2
        # A replacement comes up and serves.
        await h.wait_for(k.REVISION, "default", "fragile-00001",
                         lambda r: r.get("status", {}).get("actualReplicas") == 1 and bool(runner.pods)
                         and runner.pods[0] is not pod)
        assert (await h.request("fragile.default.localhost")).status_code == 200


async def test_restart_on_same_state_dir_restores_services(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    state = tmp_path / "state"
    async with running_daemon(state) as h:
        h.apply(service("keep", code))
        before = await h.ready("keep")
    async with running_daemon(state) as h2:
        after = await h2.ready("keep")
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        assert after["status"]["latestReadyRevisionName"] == "keep-00001"
        reply = await h2.request("keep.default.localhost")
        assert reply.status_code == 200
        assert json.loads(reply.text)["env"]["K_REVISION"] == "keep-00001"


async def wait_pods(h: Harness, revision: str, count: int) -> None:
    runner = h.daemon.dataplane.runner(("default", revision))
    assert runner is not None
    await h.wait_for(k.REVISION, "default", revision, lambda r: r.get("status", {}).get("actualReplicas") == count)


STREAMER = """
import asyncio
from starlette.responses import StreamingResponse

async def handle(request):
    first = float(request.query_params.get("first", "0"))
    gap = float(request.query_params.get("gap", "0"))

    async def body():
        yield b"a"
        await asyncio.sleep(gap)
        yield b"b"

    await asyncio.sleep(first)
    return StreamingResponse(body())
"""


async def test_response_start_and_idle_timeouts(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", STREAMER)
    spec = {"timeoutSeconds": 30, "responseStartTimeoutSeconds": 1, "idleTimeoutSeconds": 1}
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("stream", code, spec=spec))
        await h.ready("stream")
        ok = await h.request("stream.default.localhost", "/?first=0.2&gap=0.2")
        assert (ok.status_code, ok.text) == (200, "ab")
        started = time.monotonic()
        late = await h.request("stream.default.localhost", "/?first=3")
        assert late.status_code == 504
        assert time.monotonic() - started < 2.5
        # Headers and the first byte came in time; then nothing for longer than idleTimeoutSeconds.
        async with h.client.stream("GET", h.ingress + "/?gap=3",
                                   headers={"Host": "stream.default.localhost"}) as reply:
            assert reply.status_code == 200
            received = b""
            started = time.monotonic()
            try:
                async for chunk in reply.aiter_bytes():
                    received += chunk
            except httpx.HTTPError:
                pass
            assert received == b"a"  # cut short: "b" never arrives
            assert time.monotonic() - started < 2.5


async def test_hpa_class_is_reported_as_unsupported(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    annotations = {"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev",
                   "autoscaling.knative.dev/metric": "cpu", "autoscaling.knative.dev/target": "80"}
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("cpu", code, annotations=annotations))
        revision = await h.failed("cpu-00001", kind=k.REVISION)
        ready = next(c for c in revision["status"]["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "AutoscalerClassNotSupported"
        assert "hpa" in ready["message"]
