"""Each kind of probe against a real server: the gRPC health check (against grpcio's server), exec commands
(exit status, timeout), httpGet headers; and the kubelet's failure counting."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wisp.net import free_port
from wisp.serving.workloads.container import run_probe_command
from wisp.serving.workloads.probe import Failures, probe_once
from wisp.serving.workloads.probe_grpc import _request, serving_status
from wisp.serving.workloads.types import Probe

STATUS = {"": 1, "ok": 1, "down": 2}  # service → ServingStatus (1 SERVING, 2 NOT_SERVING)


def check(request: bytes, context: grpc.ServicerContext) -> bytes:
    service = request[2:].decode() if request else ""
    if service not in STATUS:
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    return b"\x08" + bytes([STATUS[service]])


@pytest.fixture
def health_port() -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)}),))
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield port
    server.stop(0)


async def test_grpc_probe_passes_only_on_serving(health_port: int) -> None:
    assert await probe_once(health_port, Probe(grpc_service=""))
    assert await probe_once(health_port, Probe(grpc_service="ok"))
    assert not await probe_once(health_port, Probe(grpc_service="down"))
    assert not await probe_once(health_port, Probe(grpc_service="missing"))  # a gRPC error status
    assert not await probe_once(free_port(), Probe(grpc_service=""))  # nothing listens


async def test_grpc_probe_against_a_plain_http_server_fails_within_its_timeout(tmp_path: Path) -> None:
    async def http1(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http1, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    assert not await probe_once(port, Probe(grpc_service="", timeout=2))
    assert time.monotonic() - started < 2.5
    server.close()


@given(st.text(max_size=300))
def test_health_request_encodes_the_service_name(service: str) -> None:
    message = _request(service)
    body = message[5:]
    assert int.from_bytes(message[1:5], "big") == len(body)
    if service:
        assert body[0] == 0x0A and body.endswith(service.encode()[:1024])
    assert serving_status(b"\x00\x00\x00\x00\x02\x08\x01") == 1 and serving_status(b"\x00\x00\x00\x00\x00") is None


@given(st.binary(max_size=64))
def test_serving_status_never_raises_on_any_answer(answer: bytes) -> None:
    assert serving_status(answer) is None or isinstance(serving_status(answer), int)


async def test_exec_probe_command_exit_status_and_timeout(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "FLAG": str(tmp_path / "flag")}
    code = "import os, sys; sys.exit(3 if os.path.exists(os.environ['FLAG']) else 0)"
    assert await run_probe_command([sys.executable, "-c", code], 5, tmp_path, env) == 0
    (tmp_path / "flag").touch()
    assert await run_probe_command([sys.executable, "-c", code], 5, tmp_path, env) == 3
    assert await run_probe_command(["/no/such/command"], 5, tmp_path, env) == 1
    started = time.monotonic()
    assert await run_probe_command(["sleep", "30"], 0.3, tmp_path, env) == -9
    assert time.monotonic() - started < 5


async def test_http_probe_sends_the_declared_headers() -> None:
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    assert await probe_once(port, Probe(http_path="/h", http_headers=(("X-Probe", "yes"),)))
    assert b"GET /h HTTP/1.1" in seen[0] and b"X-Probe: yes" in seen[0]
    server.close()


def test_failures_count_in_a_row_and_reset_on_success() -> None:
    failures = Failures(3)
    assert [failures.record(ok) for ok in (False, False, True, False, False, False, False)] == [
        False, False, False, False, False, True, False]
    assert Failures(0).threshold == 1
