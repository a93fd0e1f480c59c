"""A small HTTP/1.1 client for talking to instances: pooled keep-alive connections, streamed responses.

The ingress sits on every request, so this avoids a general-purpose client's per-request overhead:
httptools parses the response, the request head is assembled once as bytes, and connections are reused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httptools

# Buffered response chunks before the instance is asked to wait (flow control towards slow clients).
_HIGH_WATER = 32


class UpstreamError(Exception):
    """The instance could not give a response: it refused, closed, or died mid-request."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent  # whether any response bytes had arrived (then a retry is never safe)


class UpstreamTimeout(UpstreamError):
    pass


@dataclass
class UpstreamResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    _conn: _Connection
    # Captured now: once the message completes the connection may be reused with a new queue.
    _chunks: asyncio.Queue[bytes | Exception | None]

    async def body(self, idle_timeout: float | None = None) -> AsyncIterator[bytes]:
        """The body, chunk by chunk; `idle_timeout` bounds the wait for each chunk."""
        conn = self._conn
        while True:
            try:
                chunk = await asyncio.wait_for(self._chunks.get(), idle_timeout)
            except TimeoutError:
                conn.abort()
                raise UpstreamTimeout("instance sent no data within the idle timeout", sent=True) from None
            if conn.paused and self._chunks.qsize() < _HIGH_WATER // 2:
                conn.resume()
            if chunk is None:
                return
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk


@dataclass
class _Connection(asyncio.Protocol):
    pool: UpstreamPool
    transport: asyncio.Transport | None = None
    parser: httptools.HttpResponseParser = field(init=False)
    chunks: asyncio.Queue[bytes | Exception | None] = field(default_factory=asyncio.Queue)
    head: asyncio.Future[UpstreamResponse] | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    closed: bool = False
    paused: bool = False
    reusable: bool = False
    got_bytes: bool = False

    def __post_init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"invalid response from instance: {exc}", sent=True))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self._fail(UpstreamError("instance closed the connection", sent=self.got_bytes))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.head is not None and not self.head.done():
            status = self.parser.get_status_code()
            self.head.set_result(UpstreamResponse(status, self.headers, self, self.chunks))

    def on_body(self, body: bytes) -> None:
        self.chunks.put_nowait(body)
        if self.chunks.qsize() >= _HIGH_WATER and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        self.reusable = bool(self.parser.should_keep_alive())
        self.chunks.put_nowait(None)
        # A complete exchange; from here the connection may serve the next request.
        self.pool.release(self)

    # own
    def _fail(self, error: UpstreamError) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        elif self.head is not None and self.head.done():
            self.chunks.put_nowait(error)

    def resume(self) -> None:
        self.paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def abort(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def start(self, request: bytes) -> asyncio.Future[UpstreamResponse]:
        self.parser = httptools.HttpResponseParser(self)
        self.headers = []
        self.chunks = asyncio.Queue()
        self.got_bytes = False
        self.reusable = False
        self.head = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return self.head


class UpstreamPool:
    """Keep-alive connections to one instance."""

    def __init__(self, host: str, port: int, max_idle: int = 256) -> None:
        self.host = host
        self.port = port
        self._idle: deque[_Connection] = deque()
        self._max_idle = max_idle
        self._closed = False

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError as exc:
            raise UpstreamError(f"cannot connect to instance at {self.host}:{self.port}: {exc}", sent=False) from exc
        return conn

    def release(self, conn: _Connection) -> None:
        if conn.reusable and not conn.closed and not self._closed and len(self._idle) < self._max_idle:
            self._idle.append(conn)
        elif not conn.closed:
            conn.abort()

    async def request(self, head: bytes, body: bytes, start_timeout: float | None) -> UpstreamResponse:
        """Send one request; return once the response head arrives (within `start_timeout`)."""
        while self._idle:
            conn = self._idle.pop()
            if conn.closed:
                continue
            try:
                return await self._exchange(conn, head, body, start_timeout)
            except UpstreamError as exc:
                # A reused connection the instance had already closed: safe to try a fresh one.
                if exc.sent or isinstance(exc, UpstreamTimeout):
                    raise
        conn = await self._connect()
        return await self._exchange(conn, head, body, start_timeout)

    async def _exchange(
        self, conn: _Connection, head: bytes, body: bytes, start_timeout: float | None
    ) -> UpstreamResponse:
        future = conn.start(head + body)
        try:
            return await asyncio.wait_for(future, start_timeout)
        except TimeoutError:
            conn.abort()
            raise UpstreamTimeout("instance did not start its response in time", sent=False) from None

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().abort()


_HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"content-length", b"proxy-connection",
    }
)


def build_request_head(
    method: str, target: bytes, headers: list[tuple[bytes, bytes]], body_length: int,
    extra: list[tuple[bytes, bytes]],
) -> bytes:
    """The request line and headers sent to an instance: hop-by-hop headers dropped, length fixed."""
    parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        if name.lower() not in _HOP_BY_HOP:
            parts += [name, b": ", value, b"\r\n"]
    for name, value in extra:
        parts += [name, b": ", value, b"\r\n"]
    parts.append(b"content-length: %d\r\n\r\n" % body_length)
    return b"".join(parts)
