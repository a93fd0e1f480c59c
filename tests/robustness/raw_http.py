"""A raw HTTP/1.1 client for robustness tests: the bytes go out exactly as given, responses are parsed with
httptools, and every exchange is bounded in time (a hang fails the test, it never blocks the run)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import httptools


@dataclass
class RawResponse:
    status: int
    headers: dict[bytes, bytes]  # names in lower case
    body: bytes


@dataclass
class Exchange:
    responses: list[RawResponse]
    closed: bool  # the server ended the connection
    written: int  # request bytes the client managed to write before it stopped (or the server cut it off)
    invalid: bool = False  # the server sent something that is not HTTP/1.1


@dataclass
class _Parser:
    head_only: bool = False  # responses to HEAD: a Content-Length but no body
    responses: list[RawResponse] = field(default_factory=list)
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _body: list[bytes] = field(default_factory=list)
    parser: httptools.HttpResponseParser | None = None

    def __post_init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        self._headers, self._body = {}, []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        if self.head_only:
            self._add()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self.head_only:
            self._add()

    def _add(self) -> None:
        assert self.parser is not None
        status = self.parser.get_status_code()
        if status >= 200 or status == 101:  # interim responses (100 Continue) are not answers
            self.responses.append(RawResponse(status, self._headers, b"".join(self._body)))


async def exchange(port: int, chunks: bytes | Iterable[bytes], *, responses: int = 1, until_closed: bool = False,
                   head_only: bool = False, timeout: float = 10.0) -> Exchange:
    """Write `chunks` (one write and drain each) while reading, until `responses` responses have arrived or the
    server closes (with `until_closed`, until it closes in any case); raises TimeoutError past `timeout`."""
    parts = [chunks] if isinstance(chunks, bytes) else chunks
    parsed = _Parser(head_only)
    written = 0
    invalid = False
    closed = False
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done = asyncio.Event()

        async def read() -> None:
            nonlocal closed, invalid
            try:
                while until_closed or len(parsed.responses) < responses:
                    data = await reader.read(65536)
                    if not data:
                        closed = True
                        break
                    assert parsed.parser is not None
                    parsed.parser.feed_data(data)
            except ConnectionError:
                closed = True
            except httptools.HttpParserError:
                invalid = True
            finally:
                done.set()

        reading = asyncio.create_task(read())
        try:
            for part in parts:
                if done.is_set():
                    break  # answered (or closed) before the whole request was sent
                writer.write(part)
                await writer.drain()
                written += len(part)
        except ConnectionError:
            pass  # the server cut the request off: what it answered before that is still read
        try:
            await reading
        finally:
            reading.cancel()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    return Exchange(parsed.responses, closed, written, invalid)


def request(target: bytes = b"/", *, host: bytes = b"nothing.localhost", method: bytes = b"GET",
            headers: Iterable[tuple[bytes, bytes]] = (), body: bytes = b"") -> bytes:
    """One request's bytes: the request line, Host, the given headers, Content-Length when there is a body."""
    lines = [method + b" " + target + b" HTTP/1.1", b"host: " + host]
    lines += [name + b": " + value for name, value in headers]
    if body:
        lines.append(b"content-length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
