"""HTTP/2 without TLS (h2c) at the ingress: prior knowledge and the HTTP/1.1 `Upgrade: h2c`, served to ASGI.

uvicorn speaks HTTP/1.1 only. `H2cOrHttp1Protocol` is its httptools protocol (with wisp's head limits) that
looks at a connection's first bytes: the HTTP/2 connection preface hands the connection to `H2Connection`,
anything else stays HTTP/1.1 as before (one attribute test per read, so the HTTP/1.1 path keeps its speed).
An HTTP/1.1 request without a body that asks `Upgrade: h2c` (RFC 7540 §3.2) is answered 101 and served as
stream 1 of the new HTTP/2 connection; one with a body is served as HTTP/1.1, the upgrade ignored (allowed).

`H2Connection` runs the ASGI app once per stream (the `h2` library does the framing, HPACK and the state
machine): `http_version` "2", `:authority` as `host`, request bodies with HTTP/2 flow control (a stream's
window is reopened only as the app reads), and ASGI's `http.response.trailers` extension, so gRPC's
`grpc-status` trailers reach the client. Limits: 128 concurrent streams, a 64 KiB header list, 64 KiB frames;
a client that resets streams faster than it could use them (the "rapid reset" attack) is sent GOAWAY.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections import deque
from typing import Any, cast
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from uvicorn.config import Config
from uvicorn.server import ServerState

from wisp.head_limits import MAX_HEAD_BYTES, LimitedHttpToolsProtocol

log = logging.getLogger("wisp.ingress")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_CONCURRENT_STREAMS = 128
MAX_FRAME_SIZE = 64 * 1024
STREAM_WINDOW = 256 * 1024
CONNECTION_WINDOW = 4 * 1024 * 1024
MAX_RESETS = 1000  # streams a client may reset on one connection before it is sent GOAWAY
# Connection-specific header fields are not allowed in HTTP/2 (RFC 9113 §8.2.2); an HTTP/1.1 instance may send them.
_CONNECTION_SPECIFIC = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"})


class H2cOrHttp1Protocol(LimitedHttpToolsProtocol):
    """Pass as `uvicorn.Config(http=H2cOrHttp1Protocol)`: HTTP/1.1 as before, and HTTP/2 over cleartext."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._sniffing = True
        self._sniffed = b""

    def data_received(self, data: bytes) -> None:
        if self._sniffing:
            data = self._sniffed + data
            if len(data) < len(PREFACE) and PREFACE.startswith(data):
                self._sniffed = data  # maybe the preface, not all here yet
                return
            self._sniffing = False
            self._sniffed = b""
            if data.startswith(PREFACE):
                self._become_h2(data, None)
                return
        super().data_received(data)

    def _should_upgrade(self) -> bool:
        if self._get_upgrade() == b"h2c":
            return self._h2c_upgradable()
        return bool(super()._should_upgrade())

    def _h2c_upgradable(self) -> bool:
        connection: list[bytes] = []
        settings = body = False
        for name, value in self.headers:
            if name == b"connection":
                connection += [token.strip().lower() for token in value.split(b",")]
            elif name == b"http2-settings":
                settings = _settings_payload(value)
            elif (name == b"content-length" and value.strip() != b"0") or name == b"transfer-encoding":
                body = True
        return settings and not body and b"http2-settings" in connection

    def handle_websocket_upgrade(self) -> None:
        if self._get_upgrade() != b"h2c":
            super().handle_websocket_upgrade()
            return
        settings = next(value for name, value in self.headers if name == b"http2-settings")
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n")
        self._become_h2(b"", (settings, self.url, self.scope["method"], list(self.headers)))

    def _become_h2(self, data: bytes, upgrade: tuple[bytes, bytes, str, list[tuple[bytes, bytes]]] | None) -> None:
        self._unset_keepalive_if_required()
        self.connections.discard(self)
        protocol = H2Connection(self.config, self.server_state, self.app_state, self.loop)
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        if upgrade is not None:
            protocol.upgraded(*upgrade)
        else:
            protocol.initiate()
        if data:
            protocol.data_received(data)


def _settings_payload(value: bytes) -> bool:
    """Whether an `HTTP2-Settings` value is a SETTINGS payload: base64url, whole 6-byte settings (RFC 7540
    §3.2.1). Checked before answering 101, so a bad one is served as HTTP/1.1 rather than a broken upgrade."""
    text = value.strip()
    if len(text) > 1024:
        return False
    try:
        payload = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return False
    return len(payload) % 6 == 0


class _Stream:
    __slots__ = ("body", "closed", "ended", "id", "scope", "task", "wake", "window")

    def __init__(self, stream_id: int, scope: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self.id = stream_id
        self.scope = scope
        self.body: deque[tuple[bytes, int]] = deque()  # (data, flow-controlled length) not read yet
        self.ended = False  # the client ended its side
        self.closed = False  # reset, answered, or the connection is gone: receive() says disconnect
        self.wake = asyncio.Event()  # body data, end, or close
        self.window = asyncio.Event()  # the send window may have opened
        self.task: asyncio.Task[None] | None = None


class H2Connection(asyncio.Protocol):
    """One HTTP/2 connection from a client, each stream an ASGI `http` call."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.app = config.loaded_app
        self.server_state = server_state
        self.app_state = app_state
        self.loop = loop
        # What clients send is validated; what goes out is wisp's own making (names lowercased and
        # connection-specific fields dropped in `_Responder.send`), so it is not checked again.
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=True,
            validate_outbound_headers=False, normalize_outbound_headers=False,
        ))
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEAD_BYTES,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: MAX_FRAME_SIZE,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
        })
        # Read from the settings only when the object is made: set to what we announce.
        self.h2.max_inbound_frame_size = MAX_FRAME_SIZE
        self.h2.decoder.max_header_list_size = MAX_HEAD_BYTES
        self.streams: dict[int, _Stream] = {}
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.resets = 0
        self.closing = False
        self._idle: asyncio.TimerHandle | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._flush_soon = False

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        self.server = (str(local[0]), int(local[1])) if isinstance(local, tuple) else None
        self.server_state.connections.add(cast(Any, self))

    def upgraded(self, settings: bytes, target: bytes, method: str, headers: list[tuple[bytes, bytes]]) -> None:
        """Continue an HTTP/1.1 request that asked `Upgrade: h2c` as stream 1, already complete."""
        try:
            self.h2.initiate_upgrade_connection(settings)
        except (h2.exceptions.ProtocolError, ValueError):
            self._abort()
            return
        self.h2.increment_flow_control_window(CONNECTION_WINDOW)
        fields = [(n, v) for n, v in headers if n not in _CONNECTION_SPECIFIC and n not in (b"http2-settings",)]
        stream = self._start(1, method.encode(), target, fields)
        if stream is not None:
            stream.ended = True
        self._flush()

    def initiate(self) -> None:
        """A connection that began with the preface: our SETTINGS go first."""
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW)
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            log.debug("HTTP/2 protocol error from %s: %s", self.client, exc)
            self._abort()
            return
        for event in events:
            self._event(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(cast(Any, self))
        self._cancel_idle()
        for stream in self.streams.values():
            self._close_stream(stream)
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- uvicorn's server calls these on shutdown ------------------------------------------------------
    def shutdown(self) -> None:
        """Graceful: the open streams finish, new ones are refused (REFUSED_STREAM: a client may send them again
        elsewhere), then GOAWAY and the connection closes. (h2 sends nothing on a stream after its GOAWAY, so
        the GOAWAY waits for the last stream.)"""
        self.closing = True
        if not self.streams:
            self._goodbye()

    def _goodbye(self) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.h2.close_connection()
        self._abort()

    # -- events ------------------------------------------------------------------------------------
    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._request(event)
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None or stream.closed:
                # Reset or answered already: the data is dropped, but the connection's window is given back.
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            else:
                stream.body.append((event.data, event.flow_controlled_length))
                stream.wake.set()
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.ended = True
                stream.wake.set()
        elif isinstance(event, h2.events.StreamReset):
            self.resets += 1
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                self._close_stream(stream)
                if stream.task is not None:
                    stream.task.cancel()
                self._maybe_idle()
            if self.resets > MAX_RESETS:
                self.h2.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
                self._abort()
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            for stream in self.streams.values():
                stream.window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closing = True
            for stream in self.streams.values():
                if event.last_stream_id is not None and stream.id > event.last_stream_id:
                    self._close_stream(stream)
            if not self.streams:
                self._abort()

    def _request(self, event: h2.events.RequestReceived) -> None:
        if self.closing:
            self.h2.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        method = path = b""
        authority: bytes | None = None
        fields: list[tuple[bytes, bytes]] = []
        for name, value in cast(list[tuple[bytes, bytes]], event.headers or []):
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            elif not name.startswith(b":"):
                if name == b"host" and authority is not None:
                    continue
                fields.append((name, value))
        if authority is not None:
            # ASGI: `:authority` becomes the `host` header, in place of any sent.
            fields = [(b"host", authority), *[(n, v) for n, v in fields if n != b"host"]]
        if method == b"CONNECT" or not path:
            self.h2.reset_stream(event.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        self._start(event.stream_id, method, path, fields)

    def _start(self, stream_id: int, method: bytes, target: bytes, fields: list[tuple[bytes, bytes]]) -> _Stream | None:
        raw_path, _, query = target.partition(b"?")
        try:
            path = unquote(raw_path.decode("ascii"))
        except UnicodeDecodeError:
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return None
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "2",
            "method": method.decode("ascii", "replace"), "scheme": "http", "path": path, "raw_path": raw_path,
            "query_string": query, "root_path": "", "headers": fields, "client": self.client,
            "server": self.server, "extensions": {"http.response.trailers": {}}, "state": self.app_state.copy(),
        }
        stream = _Stream(stream_id, scope, self.loop)
        self.streams[stream_id] = stream
        self._cancel_idle()
        task = self.loop.create_task(self._run(stream))
        stream.task = task
        self.server_state.tasks.add(task)
        task.add_done_callback(self.server_state.tasks.discard)
        return stream

    # -- one stream's ASGI call ---------------------------------------------------------------------
    async def _run(self, stream: _Stream) -> None:
        responder = _Responder(self, stream)
        try:
            await self.app(stream.scope, responder.receive, responder.send)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("exception in the ingress app (HTTP/2 stream %d)", stream.id)
            if not responder.started and not stream.closed:
                await responder.send({"type": "http.response.start", "status": 500,
                                      "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
                await responder.send({"type": "http.response.body", "body": b"Internal Server Error\n"})
        finally:
            if not responder.finished and not stream.closed:
                with contextlib.suppress(h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                    self.h2.reset_stream(stream.id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                self._flush()
            self._close_stream(stream)
            if self.streams.get(stream.id) is stream:
                del self.streams[stream.id]
            self._maybe_idle()

    # -- plumbing -----------------------------------------------------------------------------------
    def _close_stream(self, stream: _Stream) -> None:
        if not stream.closed:
            stream.closed = True
            for data, length in stream.body:  # unread: give the connection's window back
                with contextlib.suppress(h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                    self.h2.acknowledge_received_data(length, stream.id)
                del data
            stream.body.clear()
        stream.wake.set()
        stream.window.set()

    def _flush(self) -> None:
        """Write what h2 has queued once per turn of the loop: one system call for every stream's frames."""
        if not self._flush_soon:
            self._flush_soon = True
            self.loop.call_soon(self._write)

    def _write(self) -> None:
        self._flush_soon = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _abort(self) -> None:
        """Close the connection, after writing what h2 has queued (a GOAWAY, the last stream's end)."""
        self._write()
        if self.transport is not None:
            self.transport.close()

    def _maybe_idle(self) -> None:
        if self.streams or self.transport is None:
            return
        if self.closing:
            self._goodbye()
            return
        self._cancel_idle()
        self._idle = self.loop.call_later(self.config.timeout_keep_alive, self._idle_timeout)

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _idle_timeout(self) -> None:
        if not self.streams:
            self.shutdown()


class _Responder:
    """One stream's ASGI receive and send."""

    __slots__ = ("body_done", "conn", "finished", "headers", "started", "status", "stream", "trailer_fields",
                 "trailers")

    def __init__(self, conn: H2Connection, stream: _Stream) -> None:
        self.conn = conn
        self.stream = stream
        self.started = False
        self.finished = False
        self.body_done = False
        self.trailers = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.trailer_fields: list[tuple[bytes, bytes]] = []  # from `more_trailers` messages, sent with the last

    async def receive(self) -> dict[str, Any]:
        stream, conn = self.stream, self.conn
        while True:
            if stream.closed:
                return {"type": "http.disconnect"}
            if stream.body:
                data, length = stream.body.popleft()
                # Read by the app: the client may send as much again (flow control is the backpressure).
                with contextlib.suppress(h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                    conn.h2.acknowledge_received_data(length, stream.id)
                    conn._flush()
                return {"type": "http.request", "body": data, "more_body": bool(stream.body) or not stream.ended}
            if stream.ended and not self.body_done:
                self.body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            stream.wake.clear()
            await stream.wake.wait()

    async def send(self, message: dict[str, Any]) -> None:
        stream, conn = self.stream, self.conn
        if stream.closed:
            return  # reset by the client or the connection is gone: what the app sends goes nowhere
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
            self.status = int(message["status"])
            self.trailers = bool(message.get("trailers", False))
            self.headers = [(b":status", b"%d" % self.status)] + [
                (bytes(n).lower(), bytes(v)) for n, v in message.get("headers", [])
                if bytes(n).lower() not in _CONNECTION_SPECIFIC]
            # Held until the body (or trailers) in this turn of the loop, so that a small or trailers-only answer
            # is one HEADERS frame; a body that comes later (a stream, a slow app) finds the head sent.
            conn.loop.call_soon(self._head_now)
        elif kind == "http.response.body":
            body: bytes = message.get("body", b"")
            more = bool(message.get("more_body", False))
            end = not more and not self.trailers
            if not body and not end:
                return  # nothing to send yet; the head waits (a trailers-only answer is one HEADERS frame)
            if self.headers:  # deferred until the first body: a small response goes out in one write
                headers, self.headers = self.headers, []
                conn.h2.send_headers(stream.id, headers, end_stream=end and not body)
                if end and not body:
                    self._finish()
                    return
            await self._data(body, end)
        elif kind == "http.response.trailers":
            self.trailer_fields += [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", [])
                                    if bytes(n).lower() not in _CONNECTION_SPECIFIC]
            more = bool(message.get("more_trailers", False))
            if more:
                return
            fields = self.trailer_fields
            if self.headers:
                headers, self.headers = self.headers, []
                if not fields:
                    # No body and no trailers: the head alone ends the stream (gRPC's "trailers-only" form,
                    # whose grpc-status is in the head; an empty DATA frame after it would be an error there).
                    conn.h2.send_headers(stream.id, headers, end_stream=True)
                    self._finish()
                    return
                conn.h2.send_headers(stream.id, headers)
            if fields:
                conn.h2.send_headers(stream.id, fields, end_stream=True)
            else:
                conn.h2.end_stream(stream.id)
            self._finish()

    def _head_now(self) -> None:
        if self.headers and not self.stream.closed:
            headers, self.headers = self.headers, []
            with contextlib.suppress(h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                self.conn.h2.send_headers(self.stream.id, headers)
                self.conn._flush()

    async def _data(self, body: bytes, end: bool) -> None:
        stream, conn = self.stream, self.conn
        view = memoryview(body)
        while view:
            window = min(conn.h2.local_flow_control_window(stream.id), conn.h2.max_outbound_frame_size)
            if window <= 0:
                conn._flush()
                stream.window.clear()
                await stream.window.wait()
                if stream.closed:
                    return
                continue
            conn.h2.send_data(stream.id, bytes(view[:window]))
            view = view[window:]
            if view:
                conn._flush()
                await conn._writable.wait()  # the client reads slowly: wait, do not buffer
                if stream.closed:
                    return
        if end:
            conn.h2.end_stream(stream.id)
            self._finish()
        else:
            conn._flush()
            await conn._writable.wait()

    def _finish(self) -> None:
        self.finished = True
        self.conn._flush()
