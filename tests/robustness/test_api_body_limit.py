"""The control API refuses a body over its limit (3 MiB, as the Kubernetes API server) with 413, while it arrives.

Against a real daemon on free ports, over raw sockets where it matters: a declared Content-Length over the limit
is answered before any of the body is sent, and a chunked body is answered as soon as it passes the limit,
while the client has not finished sending (so the daemon cannot have held the rest).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.serving.harness import Harness, running_daemon
from wisp.control.body_limit import DEFAULT_LIMIT

LIMIT = DEFAULT_LIMIT
BODY_PATHS = [
    ("POST", "/apply"),
    ("POST", "/delete"),
    ("POST", "/api/v1/namespaces/default/configmaps"),
    ("PUT", "/api/v1/namespaces/default/configmaps/big"),
    ("POST", "/apis/serving.knative.dev/v1/namespaces/default/services"),
    ("POST", "/v1/traces"),  # the OTLP receiver shares the control API's port, and its limit
]


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_daemon(tmp_path / "state") as h:
        yield h


def test_the_limit_is_the_api_servers() -> None:
    assert LIMIT == 3 * 1024 * 1024


async def _exchange(port: int, head: bytes, chunks: list[bytes]) -> tuple[int, dict[str, object]]:
    """Send `head` and `chunks`, an incomplete body, and read the answer: only a server that judges the body
    as it arrives can give one, a server waiting for the whole body would wait for ever."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        async with asyncio.timeout(10):
            head_bytes = await reader.readuntil(b"\r\n\r\n")
            status = int(head_bytes.split(b" ", 2)[1])
            headers = dict(line.split(b": ", 1) for line in head_bytes.split(b"\r\n")[1:] if b": " in line)
            body = await reader.readexactly(int(headers[b"content-length"]))
        return status, json.loads(body)
    except TimeoutError:
        raise AssertionError("no answer to an incomplete body: the server waits to read it whole") from None
    finally:
        writer.close()


def _head(method: str, path: str, *extra: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *extra, "", ""]
    return "\r\n".join(lines).encode()


def _assert_too_large(status: int, body: dict[str, object]) -> None:
    assert status == 413, body
    assert body == {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                    "message": f"Request entity too large: limit is {LIMIT}", "reason": "RequestEntityTooLarge",
                    "code": 413}


@pytest.mark.parametrize(("method", "path"), BODY_PATHS)
async def test_a_declared_length_over_the_limit_is_refused_before_the_body(daemon: Harness, method: str,
                                                                         path: str) -> None:
    port = daemon.daemon.options.api_port
    # Less than declared: the answer must not wait for the body.
    status, body = await _exchange(port, _head(method, path, f"Content-Length: {LIMIT + 1}"), [b" " * 65536] * 4)
    _assert_too_large(status, body)
    assert (await daemon.client.get(f"{daemon.api}/healthz")).status_code == 200


@pytest.mark.parametrize(("method", "path"), BODY_PATHS)
async def test_a_chunked_body_is_refused_as_it_passes_the_limit(daemon: Harness, method: str, path: str) -> None:
    port = daemon.daemon.options.api_port
    piece = b" " * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    # Past the limit and never terminated: only a server that counts as it reads can answer this.
    chunks = [chunk] * (LIMIT // len(piece) + 2)
    status, body = await _exchange(port, _head(method, path, "Transfer-Encoding: chunked"), chunks)
    _assert_too_large(status, body)


async def test_an_ordinary_client_gets_the_status(daemon: Harness) -> None:
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"blob": "x" * (LIMIT + 10)}}
    try:
        response = await daemon.client.post(f"{daemon.api}/apply", json={"items": [big]})
    except httpx.WriteError:  # some clients cannot read an answer sent while they still write; curl and httpx can
        pytest.fail("the daemon closed the connection without answering")
    _assert_too_large(response.status_code, response.json())
    assert daemon.daemon.store.all() == []


async def test_a_body_under_the_limit_is_read(daemon: Harness) -> None:
    padding = " " * (LIMIT - 1024)
    text = '{"items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "near"}, "data": {"k": "v"}}]}'
    response = await daemon.client.post(f"{daemon.api}/apply", content=(text + padding).encode(),
                                        headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert [r["name"] for r in response.json()["items"]] == ["near"]


@pytest.mark.parametrize("depth", [100, 100_000])
async def test_deeply_nested_json_is_a_bad_request(daemon: Harness, depth: int) -> None:
    # Deeper than Python's recursion limit must still be a 400, never a 500.
    body = '{"items": [' + "[" * depth + "]" * depth + "]}"
    response = await daemon.client.post(f"{daemon.api}/apply", content=body.encode(),
                                        headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert daemon.daemon.store.all() == []
