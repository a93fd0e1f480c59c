"""The ingress's HTTP/2 server against hostile input: odd header blocks and random frames after the preface.
Each exchange ends (an answer, a reset or a closed connection) within a bound, and the server keeps serving."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import h2.config
import h2.connection
import h2.events
import httpx
import pytest_asyncio
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wisp.serving.h2c import PREFACE, H2cOrHttp1Protocol

FUZZ = settings(max_examples=80, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TIMEOUT = 10.0
# Silence for this long after its last answer reads as the server waiting for more from us (on loopback it has
# long since handled what it was sent); still_serves then checks it is not wedged. 80 examples × this per test.
QUIET = 0.05


async def echo(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def, type-arg]
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-path", scope["raw_path"])]})
    await send({"type": "http.response.body", "body": b"%d" % len(body)})


@pytest_asyncio.fixture
async def server() -> AsyncIterator[int]:
    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(echo, lifespan="off", log_level="critical", access_log=False, http=H2cOrHttp1Protocol)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    try:
        yield sock.getsockname()[1]
    finally:
        await server.shutdown(sockets=[sock])
        sock.close()


async def send_and_drain(port: int, data: bytes) -> None:
    """Write `data`, then read until the server closes or stays quiet; never longer than TIMEOUT."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(TIMEOUT):
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), QUIET)
                except TimeoutError:
                    return  # quiet: waiting for more from us, as a server may
                if not chunk:
                    return
    except (ConnectionResetError, BrokenPipeError):
        return
    finally:
        writer.close()


async def still_serves(port: int) -> None:
    async with httpx.AsyncClient(http1=False, http2=True, timeout=TIMEOUT) as client:
        reply = await client.post(f"http://127.0.0.1:{port}/ok", content=b"abc")
    assert (reply.status_code, reply.text, reply.http_version) == (200, "3", "HTTP/2")


header_names = st.one_of(st.sampled_from([b":method", b":path", b":scheme", b":authority", b":status", b":x",
                                          b"connection", b"te", b"host", b"content-length", b"upgrade"]),
                         st.binary(min_size=1, max_size=12))
header_blocks = st.lists(st.tuples(header_names, st.binary(max_size=24)), min_size=1, max_size=8)


@FUZZ
@given(headers=header_blocks, body=st.binary(max_size=200), end=st.booleans())
async def test_odd_header_blocks(server: int, headers: list[tuple[bytes, bytes]], body: bytes, end: bool) -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding=None, validate_outbound_headers=False, normalize_outbound_headers=False))
    client.initiate_connection()
    client.send_headers(1, headers, end_stream=not body and end)
    if body:
        client.send_data(1, body, end_stream=end)
    await send_and_drain(server, client.data_to_send())
    await still_serves(server)


@FUZZ
@given(garbage=st.binary(min_size=1, max_size=300))
async def test_random_frames_after_the_preface(server: int, garbage: bytes) -> None:
    await send_and_drain(server, PREFACE + garbage)
    await still_serves(server)


async def test_answers_each_stream_of_a_well_formed_connection(server: int) -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    for stream_id in (1, 3, 5):
        client.send_headers(stream_id, [(b":method", b"GET"), (b":path", b"/s%d" % stream_id),
                                        (b":scheme", b"http"), (b":authority", b"x")], end_stream=True)
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(client.data_to_send())
    answered: dict[int, bytes] = {}
    async with asyncio.timeout(TIMEOUT):
        while len(answered) < 3:
            data = await reader.read(65536)
            assert data, "closed before every stream was answered"
            for event in client.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    answered[event.stream_id] = dict(event.headers)[b"x-path"]
            writer.write(client.data_to_send())
    writer.close()
    assert answered == {1: b"/s1", 3: b"/s3", 5: b"/s5"}


async def test_a_header_list_over_the_limit_is_refused(server: int) -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    huge = [(b"x-big-%d" % i, b"v" * 1000) for i in range(80)]  # 80 KB of fields: over the 64 KiB limit
    client.send_headers(1, [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x"),
                            *huge], end_stream=True)
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(client.data_to_send())
    answered = False
    async with asyncio.timeout(TIMEOUT):
        while data := await reader.read(65536):
            for event in client.receive_data(data):
                answered |= isinstance(event, h2.events.ResponseReceived)
    writer.close()
    assert not answered  # refused (the connection ends), never served
    await still_serves(server)
