"""A small HTTP/1.1 client for talking to instances: pooled keep-alive connections, streamed responses.

The ingress sits on every request, so this avoids a general-purpose client's per-request overhead:
httptools parses the response, the request head is assembled once as bytes, connections are reused,
and timeouts are coarse deadlines swept by one timer per pool rather than `asyncio.wait_for` (which wraps
each wait in a Task) or a timer per request (creating and cancelling a uvloop timer costs ~5 µs).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, TypeVar, cast

import httptools

# Buffered response chunks before the instance is asked to wait (flow control towards slow clients).
_HIGH_WATER = 32

T = TypeVar("T")


class UpstreamError(Exception):
    """The instance could not give a response: it refused, closed, or died mid-request."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent  # whether any response bytes had arrived (then a retry is never safe)


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamUnreachable(UpstreamError):
    """Nothing listens on the instance's port any more (it died, or it drains): the request was not sent, so
    another instance may take it. The pool is marked `unreachable` and takes no more requests."""


class Watchdog:
    """Deadlines for many futures with one timer that ticks only while something is watched.

    A watched future not done by its deadline gets TimeoutError, at most one tick late: plenty for
    request timeouts, which Knative counts in whole seconds."""

    def __init__(self, tick: float = 0.05) -> None:
        self._tick = tick
        self._due: dict[asyncio.Future[Any], float] = {}
        self._timer: asyncio.TimerHandle | None = None

    async def wait(self, future: asyncio.Future[T], timeout: float | None) -> T:
        """Await `future` for at most `timeout` seconds (None: no limit)."""
        if timeout is None:
            return await future
        self._due[future] = time.monotonic() + timeout
        if self._timer is None:
            loop = future.get_loop()
            self._timer = loop.call_later(self._tick, self._sweep, loop)
        try:
            return await future
        finally:
            self._due.pop(future, None)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        for future in [f for f, due in self._due.items() if due <= now]:
            del self._due[future]
            if not future.done():
                future.set_exception(TimeoutError())
        self._timer = loop.call_later(self._tick, self._sweep, loop) if self._due else None


class _Body:
    """One response's body as it arrives; owned by the response, so it outlives the connection's reuse."""

    __slots__ = ("chunks", "done", "error", "waiter")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.done = False
        self.error: UpstreamError | None = None
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class UpstreamResponse:
    __slots__ = ("_body", "_conn", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], conn: _Connection, body: _Body) -> None:
        self.status = status
        self.headers = headers
        self._conn = conn
        self._body = body

    @property
    def complete(self) -> bool:
        """The whole body has arrived already (the common case for small responses)."""
        return self._body.done and self._body.error is None

    def take_complete(self) -> bytes:
        """The whole body of a `complete` response, at once."""
        chunks = self._body.chunks
        body = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        return body

    async def body(self, idle_timeout: float | None = None) -> AsyncIterator[bytes]:
        """The body, chunk by chunk; `idle_timeout` bounds the wait for each chunk."""
        state, conn = self._body, self._conn
        while True:
            while state.chunks:
                chunk = state.chunks.popleft()
                if conn.paused and conn.body is state and len(state.chunks) < _HIGH_WATER // 2:
                    conn.resume()
                yield chunk
            if state.error is not None:
                raise state.error
            if state.done:
                return
            state.waiter = conn.loop.create_future()
            try:
                await conn.pool.watchdog.wait(state.waiter, idle_timeout)
            except TimeoutError:
                conn.abort()
                raise UpstreamTimeout("instance sent no data within the idle timeout", sent=True) from None
            finally:
                state.waiter = None


class _Connection(asyncio.Protocol):
    __slots__ = (
        "body",
        "closed",
        "got_bytes",
        "head",
        "headers",
        "interim",
        "loop",
        "parser",
        "paused",
        "pool",
        "reusable",
        "transport",
    )

    def __init__(self, pool: UpstreamPool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        # Kept: asyncio.get_running_loop() costs a getpid() system call on every use.
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.body = _Body()
        self.head: asyncio.Future[UpstreamResponse] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.closed = False
        self.paused = False
        self.reusable = False
        self.got_bytes = False
        self.interim = False  # parsing a 1xx interim response, which precedes the real one

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCPTransport does not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

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
        status = self.parser.get_status_code()
        if status < 200 and status != 101:
            # An interim response (100 Continue, 103 Early Hints): not the answer; the final one follows
            # (RFC 9110 §15.2). 101 is final: it ends HTTP on this connection.
            self.interim = True
            self.headers = []
            return
        head = self.head
        if head is not None and not head.done():
            head.set_result(UpstreamResponse(status, self.headers, self, self.body))

    def on_body(self, body: bytes) -> None:
        state = self.body
        state.chunks.append(body)
        state.wake()
        if len(state.chunks) >= _HIGH_WATER and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.reusable = bool(self.parser.should_keep_alive())
        self.body.done = True
        self.body.wake()
        # A complete exchange; from here the connection may serve the next request.
        self.pool.release(self)

    # own
    def _fail(self, error: UpstreamError) -> None:
        head = self.head
        if head is not None and not head.done():
            head.set_exception(error)
        elif head is not None and not self.body.done:
            self.body.error = error
            self.body.wake()

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
        self.body = _Body()
        self.got_bytes = False
        self.interim = False
        self.reusable = False
        self.head = head = self.loop.create_future()
        assert self.transport is not None
        self.transport.write(request)
        return head


class UpstreamPool:
    """Keep-alive connections to one instance."""

    def __init__(self, host: str, port: int, max_idle: int = 256) -> None:
        self.host = host
        self.port = port
        self._idle: deque[_Connection] = deque()
        self._max_idle = max_idle
        self._closed = False
        self.unreachable = False
        self.watchdog = Watchdog()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Connection(self, loop), self.host, self.port)
        except ConnectionRefusedError as exc:
            self.unreachable = True
            raise UpstreamUnreachable(f"nothing listens at {self.host}:{self.port}", sent=False) from exc
        except OSError as exc:
            raise UpstreamError(f"cannot connect to instance at {self.host}:{self.port}: {exc}", sent=False) from exc
        return conn

    def release(self, conn: _Connection) -> None:
        if conn.reusable and not conn.closed and not self._closed and len(self._idle) < self._max_idle:
            self._idle.append(conn)
        elif not conn.closed:
            conn.abort()

    async def request(self, request: bytes, start_timeout: float | None) -> UpstreamResponse:
        """Send one request (head and body as bytes); return once the response head arrives."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            try:
                return await self._exchange(conn, request, start_timeout)
            except UpstreamError as exc:
                # A reused connection the instance had already closed: safe to try a fresh one.
                if exc.sent or isinstance(exc, UpstreamTimeout):
                    raise
        conn = await self._connect()
        return await self._exchange(conn, request, start_timeout)

    async def _exchange(self, conn: _Connection, request: bytes, start_timeout: float | None) -> UpstreamResponse:
        try:
            return await self.watchdog.wait(conn.start(request), start_timeout)
        except TimeoutError:
            conn.abort()
            raise UpstreamTimeout("instance did not start its response in time", sent=False) from None

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().abort()


HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"content-length", b"proxy-connection",
    }
)


def build_request_head(method: str, target: bytes, headers: list[tuple[bytes, bytes]], body_length: int) -> bytes:
    """The request line and headers sent to an instance: hop-by-hop headers dropped, length fixed."""
    parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        if name.lower() not in HOP_BY_HOP:
            parts += [name, b": ", value, b"\r\n"]
    parts.append(b"content-length: %d\r\n\r\n" % body_length)
    return b"".join(parts)
