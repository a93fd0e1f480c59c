"""HTTP/2 over cleartext (h2c, prior knowledge) to instances that declare `ports: [{name: h2c}]` (Knative's
rule for gRPC and other HTTP/2 servers): streams multiplexed over few connections, request bodies streamed,
response trailers (gRPC's `grpc-status`) kept.

The same shape as the HTTP/1.1 pool (`pool.py`): `request` returns once the response head arrives, the body
is an async iterator with an idle timeout, deadlines are swept by one `Watchdog` per pool, and a refused
connection marks the pool `unreachable`. Flow control is the backpressure both ways: a response's window is
reopened only as its body is read, and a request body waits for the instance's window.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from typing import cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from wisp.http_client.pool import UpstreamError, UpstreamTimeout, UpstreamUnreachable, Watchdog

Headers = list[tuple[bytes, bytes]]
MAX_FRAME_SIZE = 64 * 1024
STREAM_WINDOW = 1024 * 1024
CONNECTION_WINDOW = 8 * 1024 * 1024


class _Stream:
    __slots__ = ("chunks", "done", "error", "head", "id", "trailers", "waiter", "window")

    def __init__(self, stream_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self.id = stream_id
        self.head: asyncio.Future[H2Response] = loop.create_future()
        self.chunks: deque[tuple[bytes, int]] = deque()
        self.done = False
        self.error: UpstreamError | None = None
        self.trailers: Headers = []
        self.waiter: asyncio.Future[None] | None = None
        self.window = asyncio.Event()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: UpstreamError) -> None:
        if not self.head.done():
            self.head.set_exception(error)
        elif not self.done:
            self.error = error
        self.window.set()
        self.wake()


class H2Response:
    __slots__ = ("_conn", "_stream", "headers", "status")

    def __init__(self, status: int, headers: Headers, conn: _Connection, stream: _Stream) -> None:
        self.status = status
        self.headers = headers
        self._conn = conn
        self._stream = stream

    @property
    def trailers(self) -> Headers:
        """The response's trailers (empty until the body has been read to its end, or if it had none)."""
        return self._stream.trailers

    async def body(self, idle_timeout: float | None = None) -> AsyncIterator[bytes]:
        stream, conn = self._stream, self._conn
        while True:
            while stream.chunks:
                data, length = stream.chunks.popleft()
                conn.consumed(stream.id, length)
                yield data
            if stream.error is not None:
                raise stream.error
            if stream.done:
                return
            stream.waiter = conn.loop.create_future()
            try:
                await conn.pool.watchdog.wait(stream.waiter, idle_timeout)
            except TimeoutError:
                conn.reset(stream.id)
                raise UpstreamTimeout("instance sent no data within the idle timeout", sent=True) from None
            finally:
                stream.waiter = None

    def cancel(self) -> None:
        """Stop the exchange (the client went away): the instance gets RST_STREAM."""
        if not self._stream.done:
            self._conn.reset(self._stream.id)


class _Connection(asyncio.Protocol):
    def __init__(self, pool: H2Pool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        # No header validation or normalisation: what goes out was parsed from a client's request already (and
        # lowercased), what comes back is the instance's; validating both costs ~30 % of the exchange.
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_inbound_headers=False,
            validate_outbound_headers=False, normalize_outbound_headers=False, normalize_inbound_headers=False,
        ))
        self.h2.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: MAX_FRAME_SIZE,
        })
        self.h2.max_inbound_frame_size = MAX_FRAME_SIZE
        self.streams: dict[int, _Stream] = {}
        self.closed = False
        self.draining = False  # GOAWAY received: no new streams
        self.writable = asyncio.Event()
        self.writable.set()
        self._flush_soon = False

    @property
    def usable(self) -> bool:
        # len(streams), not h2's open_outbound_streams, which walks every stream it still holds.
        return not self.closed and not self.draining and \
            len(self.streams) < self.h2.remote_settings.max_concurrent_streams

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW)
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail_all(UpstreamError(f"invalid HTTP/2 from instance: {exc}", sent=True))
            self.abort()
            return
        for event in events:
            self._event(event)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_all(UpstreamError("instance closed the connection", sent=True))
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    # own
    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None and not stream.head.done():
                status = 0
                fields: Headers = []
                for name, value in cast(Headers, event.headers or []):
                    if name == b":status":
                        status = int(value)
                    elif not name.startswith(b":"):
                        fields.append((name, value))
                stream.head.set_result(H2Response(status, fields, self, stream))
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            else:
                stream.chunks.append((event.data, event.flow_controlled_length))
                stream.wake()
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.trailers = [(n, v) for n, v in cast(Headers, event.headers or [])]
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                if not stream.head.done():
                    stream.head.set_exception(UpstreamError("instance ended the stream without a response",
                                                            sent=True))
                stream.done = True
                stream.wake()
                if self.draining and not self.streams:
                    self.abort()
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                # REFUSED_STREAM: the instance did not process it (RFC 9113 §8.7), so another may take it.
                refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                error = UpstreamUnreachable if refused and not stream.head.done() else UpstreamError
                stream.fail(error(f"instance reset the stream ({event.error_code!r})", sent=not refused))
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            for stream in self.streams.values():
                stream.window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.draining = True
            last = event.last_stream_id if event.last_stream_id is not None else 0
            for stream_id in [s for s in self.streams if s > last]:
                # Never processed: safe to send again.
                self.streams.pop(stream_id).fail(UpstreamUnreachable("instance is going away", sent=False))
            if not self.streams:
                self.abort()

    def _fail_all(self, error: UpstreamError) -> None:
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.fail(error)

    def flush(self) -> None:
        """Write what h2 has queued, once per turn of the loop: the frames of every stream that did something
        in this turn go out in one system call (a write per frame cost more than the HTTP/2 work itself)."""
        if not self._flush_soon:
            self._flush_soon = True
            self.loop.call_soon(self._write)

    def _write(self) -> None:
        self._flush_soon = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def consumed(self, stream_id: int, length: int) -> None:
        if length and not self.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                self.h2.acknowledge_received_data(length, stream_id)
                self.flush()

    def reset(self, stream_id: int) -> None:
        self.streams.pop(stream_id, None)
        if not self.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                self.flush()

    def open(self, headers: Headers, end_stream: bool) -> _Stream:
        stream_id = self.h2.get_next_available_stream_id()
        stream = _Stream(stream_id, self.loop)
        self.streams[stream_id] = stream
        self.h2.send_headers(stream_id, headers, end_stream=end_stream)
        self.flush()
        return stream

    async def send_data(self, stream: _Stream, data: bytes, end: bool) -> None:
        view = memoryview(data)
        while view:
            if stream.error is not None or stream.done or self.closed:
                return  # the instance answered (or failed) already: the rest of the body is not needed
            try:
                window = min(self.h2.local_flow_control_window(stream.id), self.h2.max_outbound_frame_size)
            except h2.exceptions.StreamClosedError:
                return
            if window <= 0:
                stream.window.clear()
                await stream.window.wait()
                continue
            self.h2.send_data(stream.id, bytes(view[:window]))
            view = view[window:]
            self.flush()
            await self.writable.wait()
        if end and not self.closed:
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self.h2.end_stream(stream.id)
                self.flush()


class H2Pool:
    """HTTP/2 connections to one instance; a new one when every open one has reached the instance's
    `MAX_CONCURRENT_STREAMS`."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.unreachable = False
        self.watchdog = Watchdog()
        self._conns: list[_Connection] = []
        self._connecting: asyncio.Future[_Connection] | None = None
        self._closed = False

    async def _connection(self) -> _Connection:
        self._conns = [c for c in self._conns if not c.closed and not (c.draining and not c.streams)]
        for conn in self._conns:
            if conn.usable:
                return conn
        if self._connecting is not None:  # one connect at a time; the others share it
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            try:
                _, conn = await loop.create_connection(lambda: _Connection(self, loop), self.host, self.port)
            except ConnectionRefusedError as exc:
                self.unreachable = True
                raise UpstreamUnreachable(f"nothing listens at {self.host}:{self.port}", sent=False) from exc
            except OSError as exc:
                raise UpstreamError(f"cannot connect to instance at {self.host}:{self.port}: {exc}",
                                    sent=False) from exc
        except UpstreamError as exc:
            self._connecting.set_exception(exc)
            self._connecting.exception()  # retrieved: the waiters (if any) get it too
            self._connecting = None
            raise
        self._connecting.set_result(conn)
        self._connecting = None
        self._conns.append(conn)
        return conn

    async def request(self, headers: Headers, body: bytes | AsyncIterable[bytes],
                      start_timeout: float | None) -> H2Response:
        """Send one request (pseudo-headers first) and return once the response head arrives. A streamed
        `body` keeps being sent in the background while the response comes (gRPC's bidirectional calls)."""
        if self._closed:
            raise UpstreamUnreachable("instance is stopping", sent=False)
        conn = await self._connection()
        streamed = not isinstance(body, bytes)
        stream = conn.open(headers, end_stream=not streamed and not body)
        pump: asyncio.Task[None] | None = None
        if isinstance(body, bytes):
            if body:
                await conn.send_data(stream, body, end=True)
        else:
            pump = asyncio.ensure_future(self._pump(conn, stream, body))
        try:
            return await self.watchdog.wait(stream.head, start_timeout)
        except TimeoutError:
            conn.reset(stream.id)
            raise UpstreamTimeout("instance did not start its response in time", sent=False) from None
        except BaseException:
            if pump is not None:
                pump.cancel()
            conn.reset(stream.id)
            raise

    @staticmethod
    async def _pump(conn: _Connection, stream: _Stream, body: AsyncIterable[bytes]) -> None:
        try:
            async for chunk in body:
                if chunk:
                    await conn.send_data(stream, chunk, end=False)
            await conn.send_data(stream, b"", end=True)
        except Exception as exc:  # the client went away or sent too much: the instance's stream is cancelled
            conn.reset(stream.id)
            stream.fail(UpstreamError(f"request body failed: {exc}", sent=True))

    def close(self) -> None:
        """No new requests; each connection ends once its streams have (an instance draining finishes them)."""
        self._closed = True
        for conn in self._conns:
            conn.draining = True
            if not conn.streams:
                conn.abort()


def request_headers(method: bytes, authority: bytes, path: bytes, fields: Headers) -> Headers:
    """The pseudo-headers (in the order RFC 9113 §8.3.1 lists them) then the fields."""
    return [(b":method", method), (b":scheme", b"http"), (b":authority", authority), (b":path", path), *fields]
