"""HTTP/2 from clients at the ingress: prior knowledge (httpx with h2) and `Upgrade: h2c` (curl, nghttp2), to an
HTTP/1.1 instance; the HTTP/1.1 path beside it unchanged."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import in_ci
from tests.serving.harness import running_daemon, service, write_function

ECHO = """
async def handle(request):
    body = await request.body()
    if request.url.path == "/big":
        return "x" * int(request.query_params["n"])
    return {"method": request.method, "path": request.url.path, "query": request.url.query,
            "host": request.headers.get("host"), "length": len(body), "tail": body[-8:].decode("latin-1"),
            "forwarded": request.headers.get("forwarded")}
"""
HOST = "echo.default.localhost"


async def test_prior_knowledge_requests_are_served_over_http2(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("echo", code))
        await h.ready("echo")
        async with httpx.AsyncClient(http1=False, http2=True, timeout=30) as client:
            reply = await client.get(f"{h.ingress}/a/b?x=1", headers={"host": HOST})
            assert reply.http_version == "HTTP/2"
            seen = reply.json()
            assert (seen["method"], seen["path"], seen["query"], seen["host"]) == ("GET", "/a/b", "x=1", HOST)
            assert "proto=http" in seen["forwarded"]
            # A body larger than every flow-control window, both ways.
            body = b"0123456789abcdef" * 200_000
            posted = await client.post(f"{h.ingress}/up", headers={"host": HOST}, content=body)
            assert posted.json()["length"] == len(body) and posted.json()["tail"] == "89abcdef"
            big = await client.get(f"{h.ingress}/big?n=3000000", headers={"host": HOST})
            assert big.http_version == "HTTP/2" and len(big.content) == 3_000_000
            # Many streams at once on the one connection.
            replies = await asyncio.gather(*(client.get(f"{h.ingress}/s{i}", headers={"host": HOST})
                                             for i in range(50)))
            assert sorted(r.json()["path"] for r in replies) == sorted(f"/s{i}" for i in range(50))
            unknown = await client.get(f"{h.ingress}/", headers={"host": "nobody.default.localhost"})
            assert unknown.status_code == 404 and unknown.http_version == "HTTP/2"
        async with httpx.AsyncClient(timeout=30) as plain:  # HTTP/1.1 beside it, as before
            reply = await plain.get(f"{h.ingress}/p", headers={"host": HOST})
            assert reply.http_version == "HTTP/1.1" and reply.json()["path"] == "/p"


async def test_upgrade_h2c_from_http1(tmp_path: Path) -> None:
    curl = shutil.which("curl")
    if curl is None:
        assert not in_ci(), "curl is needed (apt-get install -y curl)"
        pytest.skip("curl is not installed")
    code = write_function(tmp_path / "fn", ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("echo", code))
        await h.ready("echo")
        process = await asyncio.create_subprocess_exec(
            curl, "-sS", "--http2", "-H", f"Host: {HOST}", "-w", "\\n%{http_version}\\n",
            f"{h.ingress}/up/graded?y=2", f"{h.ingress}/second",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err
        first, version1, second, version2 = out.decode().splitlines()
        assert json.loads(first)["path"] == "/up/graded" and json.loads(first)["query"] == "y=2"
        assert json.loads(second)["path"] == "/second"
        assert (version1, version2) == ("2", "2")  # the first request upgraded the connection; the second used it


async def test_stopping_the_daemon_lets_http2_streams_in_flight_finish(tmp_path: Path) -> None:
    # curl (nghttp2) as the client: httpx's HTTP/2 fails a stream still waiting when GOAWAY arrives, even one the
    # server says it will answer.
    curl = shutil.which("curl")
    if curl is None:
        assert not in_ci(), "curl is needed (apt-get install -y curl)"
        pytest.skip("curl is not installed")
    code = write_function(tmp_path / "fn", """
import asyncio
async def handle(request):
    await asyncio.sleep(float(request.query_params.get("sleep", "0")))
    return "done"
""")
    async with asyncio.timeout(60):
        async with running_daemon(tmp_path / "state") as h:
            h.apply(service("slow", code))
            await h.ready("slow")
            process = await asyncio.create_subprocess_exec(
                curl, "-sS", "--http2-prior-knowledge", "-H", "Host: slow.default.localhost",
                "-w", "\\n%{http_version}", f"{h.ingress}/?sleep=1",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            runner = h.daemon.dataplane.runner(("default", "slow-00001"))
            assert runner is not None
            while runner.throttler.in_flight == 0:  # the stream has reached the instance (it sleeps 1 s there)
                await asyncio.sleep(0.01)
        # The daemon has stopped: the stream in flight was answered, then GOAWAY went out and the connection closed.
        out, err = await process.communicate()
    assert process.returncode == 0, err
    assert out.decode().splitlines() == ["done", "2"]
