"""HttpPoster: the request head it writes (built as one string from a URL parsed once) and the reply it reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from wisp.eventing.http_post import HttpPoster

REPLY = b"HTTP/1.1 200 OK\r\nCe-Id: r1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A keep-alive server that answers each request with REPLY and keeps what it read, one entry a request."""
    requests: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the client closed its connection
                break
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            )
            requests.append(head + await reader.readexactly(length))
            writer.write(REPLY)
            await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield port, requests


async def test_request_head_and_reply(server: tuple[int, list[bytes]]) -> None:
    port, requests = server
    poster = HttpPoster()
    try:
        headers = {"Ce-Id": "e1", "Content-Type": "text/plain", "Connection": "close", "Content-Length": "99"}
        reply = await poster.post(f"http://127.0.0.1:{port}/a/b?x=1", headers, b"hello", 5.0)
        assert (reply.status, reply.body) == (200, b"{}")
        assert reply.headers == {"ce-id": "r1", "content-type": "application/json", "content-length": "2"}
        # Names lowercased, hop-by-hop headers dropped (the length is the poster's), the URL's host added.
        assert (
            requests[0]
            == (
                "POST /a/b?x=1 HTTP/1.1\r\nce-id: e1\r\ncontent-type: text/plain\r\n"
                f"host: 127.0.0.1:{port}\r\ncontent-length: 5\r\n\r\nhello"
            ).encode()
        )
        # The same URL again, with a Host of the caller's: that one, not the URL's; the connection reused.
        await poster.post(f"http://127.0.0.1:{port}/a/b?x=1", {"Host": "svc.example"}, b"", 5.0)
        assert requests[1] == b"POST /a/b?x=1 HTTP/1.1\r\nhost: svc.example\r\ncontent-length: 0\r\n\r\n"
        assert len(poster._pools) == 1
    finally:
        poster.close()


async def test_malformed_url_and_header_raise_value_error() -> None:
    poster = HttpPoster()
    for _ in range(2):  # not cached as if it had worked
        with pytest.raises(ValueError):
            await poster.post("http://127.0.0.1:notaport/", {}, b"", 1.0)
    with pytest.raises(ValueError):  # not Latin-1: cannot go in a header
        await poster.post("http://127.0.0.1:1/", {"ce-x": "\u2603"}, b"", 1.0)
    for broken in ("a\r\nx-injected: 1", "a\nb", "a\rb"):  # a line break would start a header of the caller's
        with pytest.raises(ValueError):
            await poster.post("http://127.0.0.1:1/", {"traceparent": broken}, b"", 1.0)
    poster.close()
