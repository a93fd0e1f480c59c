"""The h2c pool against a real HTTP/2 server (uvicorn with wisp's H2cOrHttp1Protocol): bodies both ways,
trailers, multiplexing, timeouts, refusal, and the throttler giving h2c revisions' slots a pool."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import uvicorn

from wisp.http_client.h2_pool import H2Pool, request_headers
from wisp.http_client.pool import UpstreamPool, UpstreamTimeout, UpstreamUnreachable
from wisp.serving.h2c import H2cOrHttp1Protocol
from wisp.serving.throttler import Slot, Throttler

release = asyncio.Event()


async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def, type-arg]
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    await send({"type": "http.response.start", "status": 200, "trailers": True,
                "headers": [(b"content-type", b"text/plain")]})
    if path == "/stall":
        await asyncio.sleep(30)  # holds the body: the client's idle timeout must fire first
    if path == "/wait":
        await release.wait()
    await send({"type": "http.response.body", "body": b"got %d" % len(body), "more_body": True})
    await send({"type": "http.response.body", "body": b""})
    await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"%d" % sum(body))]})


@pytest_asyncio.fixture
async def port() -> AsyncIterator[int]:
    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="critical", access_log=False, http=H2cOrHttp1Protocol)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    try:
        yield sock.getsockname()[1]
    finally:
        await server.shutdown(sockets=[sock])
        sock.close()


def get(path: str, method: bytes = b"GET") -> list[tuple[bytes, bytes]]:
    return request_headers(method, b"x.default.localhost", path.encode(), [(b"te", b"trailers")])


async def read(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join([chunk async for chunk in response.body(10)])


async def test_bodies_trailers_and_one_connection_for_many_streams(port: int) -> None:
    pool = H2Pool("127.0.0.1", port)
    try:
        response = await pool.request(get("/", b"POST"), bytes(range(256)) * 1000, 10)
        assert response.status == 200 and await read(response) == b"got 256000"
        assert response.trailers == [(b"x-sum", b"%d" % (sum(range(256)) * 1000))]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"abc"

        streamed = await pool.request(get("/", b"POST"), chunks(), 10)
        assert await read(streamed) == b"got 9"
        responses = await asyncio.gather(*(pool.request(get(f"/{i}"), b"", 10) for i in range(30)))
        assert [await read(r) for r in responses] == [b"got 0"] * 30
        assert len(pool._conns) == 1  # multiplexed
    finally:
        pool.close()


async def test_idle_timeout_and_refused_connections(port: int) -> None:
    pool = H2Pool("127.0.0.1", port)
    try:
        stalled = await pool.request(get("/stall"), b"", 10)
        with pytest.raises(UpstreamTimeout):
            async for _ in stalled.body(0.2):
                pass
        # The connection carries on for other streams.
        assert await read(await pool.request(get("/after"), b"", 10)) == b"got 0"
    finally:
        pool.close()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = H2Pool("127.0.0.1", closed.getsockname()[1])
    with pytest.raises(UpstreamUnreachable):
        await nobody.request(get("/"), b"", 5)
    assert nobody.unreachable


async def test_close_lets_open_streams_finish(port: int) -> None:
    release.clear()
    pool = H2Pool("127.0.0.1", port)
    response = await pool.request(get("/wait"), b"", 10)
    pool.close()
    with pytest.raises(UpstreamUnreachable):
        await pool.request(get("/new"), b"", 10)  # no new requests once closed
    release.set()
    assert await read(response) == b"got 0"


def test_throttler_gives_h2c_slots_a_pool_and_closes_it() -> None:
    throttler = Throttler(capacity=1, queue_depth=10)
    plain = Slot("a", UpstreamPool("127.0.0.1", 1), 1)
    throttler.add(plain)
    assert plain.h2 is None
    throttler.set_h2c(True)
    assert plain.h2 is not None and plain.h2.port == 1
    later = Slot("b", UpstreamPool("127.0.0.1", 2), 1)
    throttler.add(later)
    assert later.h2 is not None
    throttler.remove(later)
    assert later.h2._closed
