"""The ingress: one ASGI app that routes by Host, splits traffic, and proxies through each revision's throttler.

It is a raw ASGI callable rather than a framework app because it sits on every request's path: the request
head for the instance is built in one pass over the client's headers, a free instance is taken without an
await, and a response that has fully arrived goes out in one body message.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from random import getrandbits
from typing import Protocol
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from wisp.http_client.h2_pool import request_headers
from wisp.http_client.pool import HOP_BY_HOP, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from wisp.observability.recorder import SpanRecorder
from wisp.observability.traceparent import SAMPLED, new_span_id, parse_traceparent
from wisp.observability.tracing_config import Sampler, sampled
from wisp.serving import websocket_proxy
from wisp.serving.routing import RevisionKey, RoutingTable
from wisp.serving.throttler import NoCapacity, QueueFull, Slot, Throttler, Unavailable


@dataclass(frozen=True)
class Timeouts:
    """A revision's request timeouts in seconds (Knative's timeoutSeconds and friends); None = no limit."""

    total: float
    response_start: float | None = None
    idle: float | None = None


class Backends(Protocol):
    """Where the ingress finds a revision's throttler (None while the revision does not run)."""

    def backend(self, key: RevisionKey) -> tuple[Throttler, Timeouts] | None: ...


class RequestObserver(Protocol):
    """Told about each proxied request (metrics, tracing)."""

    def request_done(self, key: RevisionKey, status: int, seconds: float) -> None: ...


class _NullObserver:
    def request_done(self, key: RevisionKey, status: int, seconds: float) -> None:
        return None



class BodyTooLarge(Exception):
    pass


class BadRequest(Exception):
    """The request cannot be routed as sent; answered 400 with the message."""


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client went away")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body is larger than the limit of {limit} bytes")
        if not message.get("more_body", False):
            if not chunks:
                return chunk  # the common case: the whole body in one message
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


async def respond(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = (text + "\n").encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body)),
                    *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


def _bare_host(value: bytes) -> str:
    host = value.decode("latin-1").lower()
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


# Request headers not passed on as they came: hop-by-hop ones, and the forwarding ones the ingress rewrites.
_X_FORWARDED_FOR = b"x-forwarded-for"
_FORWARDED = b"forwarded"
_TRACEPARENT = b"traceparent"
_TRACEPARENT_00 = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE, _ZERO_SPAN = b"0" * 32, b"0" * 16  # all-zero ids are invalid (W3C Trace Context)
_CONTENT_LENGTH = b"content-length"
# `Expect: 100-continue` is answered here (uvicorn sends the 100 when the body is first read) and the instance
# gets the whole body at once: passed on, it would make the instance send a 100 of its own (RFC 9110 §10.1.1).
_NOT_COPIED = HOP_BY_HOP | {_X_FORWARDED_FOR, b"x-forwarded-proto", _FORWARDED, _TRACEPARENT, b"expect"}
# `http://127.0.0.1:8080/.wisp/route/{host}/path` reaches {host} without a Host header: K_SINK uses it, since
# Python clients cannot resolve `*.localhost` or `*.svc.cluster.local` names.
ROUTE_PREFIX = "/.wisp/route/"
_ROUTE_PREFIX_BYTES = ROUTE_PREFIX.encode()
_RESPONSE_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding"})


@dataclass(slots=True)
class _Trace:
    """A traced request's ids (lowercase hex), its parent span (None: this hop starts the trace) and start."""

    trace_id: str
    span_id: str
    parent: str | None
    sampled: bool
    start_ns: int


@dataclass(slots=True)
class _Head:
    """The client's request as the instance will see it, all but the body length (known after reading)."""

    host: str
    parts: list[bytes]
    traceparent: bytes | None
    content_length: bytes | None  # as the client declared it (the server has checked it is a number)
    scope: Scope
    trace_header: bytes | None = None  # the traceparent this hop passes on, when traced


def _parse_head(scope: Scope) -> _Head:
    """One pass over the client's headers: the Host, and the request head for the instance with the
    hop-by-hop headers dropped and X-Forwarded-For / X-Forwarded-Proto / Forwarded set (architecture.md:
    runtime contract).
    ASGI servers give header names in lower case, so no lower() per header."""
    target = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string")
    if query:
        target += b"?" + query
    parts = [scope["method"].encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    host: bytes | None = None
    prior_xff: bytes | None = None
    prior_fwd: bytes | None = None
    traceparent: bytes | None = None
    content_length: bytes | None = None
    for name, value in scope["headers"]:
        if name in _NOT_COPIED:
            if name == _X_FORWARDED_FOR:
                prior_xff = value if prior_xff is None else prior_xff + b", " + value
            elif name == _FORWARDED:
                prior_fwd = value if prior_fwd is None else prior_fwd + b", " + value
            elif name == _TRACEPARENT:
                traceparent = value
            elif name == _CONTENT_LENGTH:
                content_length = value
            continue
        if name == b"host":
            if host is not None:
                # RFC 9112 §3.2: answered 400. Routed by one and served under the other, it would be a way
                # past whatever the instance decides by its Host.
                raise BadRequest("more than one Host header")
            host = value
        parts += (name, b": ", value, b"\r\n")
    bare = _bare_host(host) if host else ""
    client = scope.get("client")
    client_ip = (client[0] if client else "unknown").encode()
    proto = scope.get("scheme", "http").encode()
    node = client_ip if b":" not in client_ip else _node(client_ip)  # inline: this runs for every request
    forwarded = b"for=%s;host=%s;proto=%s" % (node, bare.encode("latin-1"), proto)
    parts += (
        b"x-forwarded-for: ", prior_xff + b", " + client_ip if prior_xff else client_ip,
        b"\r\nx-forwarded-proto: ", proto,
        b"\r\nforwarded: ", prior_fwd + b", " + forwarded if prior_fwd else forwarded, b"\r\n",
    )
    return _Head(bare, parts, traceparent, content_length, scope)


def _node(ip: bytes) -> bytes:
    """A `Forwarded` node (RFC 7239 §6): an IPv6 address is quoted and bracketed, `for="[::1]"`."""
    return b'"[%s]"' % ip if b":" in ip else ip


def _route_form(scope: Scope) -> Scope | None:
    """The scope of `/.wisp/route/{host}/rest` as if `rest` had been asked of {host}; None if malformed.

    Taken apart in the raw path, as sent: an escaped `/` stays inside its segment, and the path the instance
    gets is the rest of what the client sent. The host must be printable ASCII (a header value)."""
    raw = scope.get("raw_path") or scope["path"].encode()
    if not raw.startswith(_ROUTE_PREFIX_BYTES):
        return None  # the prefix itself escaped
    raw_host, slash, raw_rest = raw[len(_ROUTE_PREFIX_BYTES):].partition(b"/")
    host = unquote(raw_host.decode("latin-1"))
    if not host or not host.isascii() or not host.isprintable() or " " in host:
        return None
    rest = slash + raw_rest
    headers = [(n, v) for n, v in scope["headers"] if n != b"host"]
    headers.append((b"host", host.encode("ascii")))
    return {**scope, "path": unquote(rest.decode("latin-1")) or "/", "raw_path": rest or b"/", "headers": headers}


class Ingress:
    def __init__(
        self,
        routing: RoutingTable,
        backends: Backends,
        body_limit: int,
        host_apps: dict[str, ASGIApp] | None = None,
        observer: RequestObserver | None = None,
        tracer: SpanRecorder | None = None,
        sampler: Sampler | None = None,
    ) -> None:
        self.routing = routing
        self.backends = backends
        self.body_limit = body_limit
        self.host_apps = host_apps if host_apps is not None else {}
        self.observer: RequestObserver = observer or _NullObserver()
        self.tracer = tracer
        # config-tracing's sample rate for requests that bring no trace (shared, changed in place).
        self.sampler = sampler if sampler is not None else Sampler(0.0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # The daemon runs the ingress with lifespan off.
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            return
        if scope["path"].startswith(ROUTE_PREFIX):
            routed = _route_form(scope)
            if routed is None:
                await respond(send, 400, f"expected {ROUTE_PREFIX}{{host}}/path")
                return
            scope = routed
        try:
            head = _parse_head(scope)
        except BadRequest as exc:
            await respond(send, 400, str(exc))
            return
        host = head.host
        app = self.host_apps.get(host)
        if app is not None:
            await app(scope, receive, send)
            return
        key = self.routing.route(host)
        if key is None:
            reason = self.routing.unavailable_reason(host)
            if reason is not None:
                await respond(send, 503, f"{host} is not ready: {reason}")
                return
            known = ", ".join(self.routing.public_hosts()) or "none yet"
            await respond(send, 404, f"no service answers to host {host!r}; hosts: {known}")
            return
        backend = self.backends.backend(key)
        if backend is None:
            await respond(send, 503, f"revision {key[1]} is not running")
            return
        started = time.monotonic()
        tracer = self.tracer
        traceparent = head.traceparent
        if traceparent is None and (tracer is None or not self.sampler.threshold):
            # No trace to continue and none to start (config-tracing's backend none, or sample-rate 0): the
            # hot path. Stamping a traceparent on every request cost ~10 % of peak (bench/dataplane.py).
            status = await self._proxy(receive, send, head, key, *backend)
        else:
            trace = self._trace(traceparent, tracer)
            if trace is None:  # a new trace that the sampler left out: as untraced
                status = await self._proxy(receive, send, head, key, *backend)
            else:
                # The instance sees this hop as its parent.
                head.trace_header = b"".join((b"00-", trace.trace_id.encode(), b"-", trace.span_id.encode(),
                                              b"-01" if trace.sampled else b"-00"))
                head.parts += (b"traceparent: ", head.trace_header, b"\r\n")
                status = await self._proxy(receive, send, head, key, *backend, trace)
                if trace.sampled and tracer is not None:
                    tracer.record_request(trace.trace_id, trace.span_id, trace.parent, trace.start_ns,
                                          tracer.now_ns(), key[0], key[1], host, status, scope["method"])
        self.observer.request_done(key, status, time.monotonic() - started)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An upgrade to WebSocket: routed like a request, then relayed (serving/websocket_proxy.py)."""
        if scope["path"].startswith(ROUTE_PREFIX):
            routed = _route_form(scope)
            if routed is None:
                await websocket_proxy.deny(scope, send, 400, f"expected {ROUTE_PREFIX}{{host}}/path")
                return
            scope = routed
        hosts = [value for name, value in scope["headers"] if name == b"host"]
        if len(hosts) > 1:
            await websocket_proxy.deny(scope, send, 400, "more than one Host header")
            return
        host = _bare_host(hosts[0]) if hosts else ""
        app = self.host_apps.get(host)
        if app is not None:
            await app(scope, receive, send)
            return
        key = self.routing.route(host)
        if key is None:
            reason = self.routing.unavailable_reason(host)
            status, text = (503, f"{host} is not ready: {reason}") if reason is not None else \
                (404, f"no service answers to host {host!r}")
            await websocket_proxy.deny(scope, send, status, text)
            return
        backend = self.backends.backend(key)
        if backend is None:
            await websocket_proxy.deny(scope, send, 503, f"revision {key[1]} is not running")
            return
        throttler, timeouts = backend
        started = time.monotonic()
        limits = [t for t in (timeouts.total, timeouts.response_start, timeouts.idle) if t]
        status = await websocket_proxy.relay(scope, receive, send, host, key[1], throttler,
                                             min(limits) if limits else None)
        self.observer.request_done(key, status, time.monotonic() - started)

    def _trace(self, traceparent: bytes | None, tracer: SpanRecorder | None) -> _Trace | None:
        """This hop's place in the trace the request brings, or in a new one the sampler takes (None if not).

        A new trace costs one random draw to decide (the trace id is the draw); ids are formatted only for
        the sampled ones."""
        if traceparent is not None:
            # The common form (version 00, exactly 55 bytes) by one regex; any other through the full parser.
            match = _TRACEPARENT_00.fullmatch(traceparent)
            if match is not None and match[1] != _ZERO_TRACE and match[2] != _ZERO_SPAN:
                return _Trace(match[1].decode(), new_span_id(), match[2].decode(),
                              bool(int(match[3], 16) & SAMPLED), tracer.now_ns() if tracer is not None else 0)
            parent = parse_traceparent(traceparent)
            if parent is not None:
                return _Trace(parent.trace_id, new_span_id(), parent.span_id, parent.sampled,
                              tracer.now_ns() if tracer is not None else 0)
            # Not a valid traceparent: as if there were none (the sampler decides).
        bits = getrandbits(128)
        if not sampled(bits, self.sampler.threshold):
            return None
        return _Trace(f"{bits or 1:032x}", new_span_id(), None, True,
                      tracer.now_ns() if tracer is not None else 0)

    async def _proxy(
        self, receive: Receive, send: Send, head: _Head, key: RevisionKey, throttler: Throttler,
        timeouts: Timeouts, trace: _Trace | None = None,
    ) -> int:
        declared = head.content_length
        # 20 digits are more than any limit (and int() refuses strings of thousands of digits).
        if declared is not None and declared.isdigit() and (len(declared) > 19 or int(declared) > self.body_limit):
            # Refused before reading: a client that sent `Expect: 100-continue` is spared the upload. The
            # connection ends with the answer: such a client never sends the body, and the server would
            # otherwise read its next request as that body.
            await respond(send, 413, f"request body is larger than the limit of {self.body_limit} bytes",
                          [(b"connection", b"close")])
            return 413
        if throttler.h2c:
            return await self._proxy_h2(receive, send, head, key, throttler, timeouts, trace)
        try:
            body = await read_body(receive, self.body_limit)
        except BodyTooLarge as exc:
            await respond(send, 413, str(exc))
            return 413
        except ConnectionResetError:
            return 499
        # time.monotonic(), not loop.time(): asyncio.get_running_loop() costs a getpid() system call.
        deadline = time.monotonic() + timeouts.total if timeouts.total else None
        slot: Slot | int | None = throttler.try_acquire()
        if slot is None:
            slot = await self._acquire_traced(send, key, throttler, deadline, trace)
        while not isinstance(slot, int):
            try:
                return await self._exchange(send, head, body, key, slot, timeouts, deadline)
            except UpstreamUnreachable:
                # Its instance has just died (the request was queued behind one that crashed) and the request
                # was not sent: it waits for another instance like any queued request.
                pass
            finally:
                throttler.release(slot)
            slot = await self._acquire_traced(send, key, throttler, deadline, trace)
        return slot

    async def _acquire_traced(
        self, send: Send, key: RevisionKey, throttler: Throttler, deadline: float | None, trace: _Trace | None,
    ) -> Slot | int:
        """`_acquire`, recorded as a span of the request's trace when it is sampled: the activator's wait
        (Knative names it `throttler_try`): queued behind busy instances, or held while one starts."""
        tracer = self.tracer
        if trace is None or not trace.sampled or tracer is None:
            return await self._acquire(send, key, throttler, deadline)
        start_ns = tracer.now_ns()
        cold, queued = throttler.ready_count == 0, throttler.queued
        slot = await self._acquire(send, key, throttler, deadline)
        status = slot if isinstance(slot, int) else 0
        tracer.record_span(trace.trace_id, new_span_id(), trace.span_id, "throttler_try", "wisp",
                           start_ns, tracer.now_ns(),
                           {"wisp.revision": key[1], "wisp.cold_start": cold, "wisp.queued_behind": queued,
                            **({"http.status_code": status} if status else {})},
                           kind="INTERNAL", error=f"HTTP {status}" if status else None)
        return slot

    async def _proxy_h2(
        self, receive: Receive, send: Send, head: _Head, key: RevisionKey, throttler: Throttler,
        timeouts: Timeouts, trace: _Trace | None,
    ) -> int:
        """`_proxy` to instances that speak h2c: the request body streamed as it arrives (gRPC's client and
        bidirectional streams), the response's trailers passed on to a client that takes them (HTTP/2)."""
        # The first body message tells whether the whole body is here (most requests): then it is sent with the
        # head, and may be sent again to another instance; otherwise the rest is streamed as it comes.
        first = await receive()
        if first["type"] == "http.disconnect":
            return 499
        chunk: bytes = first.get("body", b"")
        body: bytes | _StreamedBody = chunk
        if first.get("more_body", False):
            body = _StreamedBody(receive, self.body_limit, chunk)
        elif len(chunk) > self.body_limit:
            await respond(send, 413, f"request body is larger than the limit of {self.body_limit} bytes")
            return 413
        deadline = time.monotonic() + timeouts.total if timeouts.total else None
        headers = _h2_request_headers(head)
        slot: Slot | int | None = throttler.try_acquire()
        if slot is None:
            slot = await self._acquire_traced(send, key, throttler, deadline, trace)
        while not isinstance(slot, int):
            try:
                return await self._exchange_h2(send, head.scope, headers, body, key, slot, timeouts, deadline)
            except UpstreamUnreachable:
                if slot.h2 is not None and slot.h2.unreachable:
                    slot.pool.unreachable = True  # what the throttler looks at: the instance is gone
                if isinstance(body, _StreamedBody) and body.started:  # part of it went to that instance
                    await respond(send, 502, f"instance of revision {key[1]} went away during the request")
                    return 502
            finally:
                throttler.release(slot)
            slot = await self._acquire_traced(send, key, throttler, deadline, trace)
        return slot

    @staticmethod
    async def _exchange_h2(
        send: Send, scope: Scope, headers: list[tuple[bytes, bytes]], body: bytes | _StreamedBody, key: RevisionKey,
        slot: Slot, timeouts: Timeouts, deadline: float | None,
    ) -> int:
        assert slot.h2 is not None, "an h2c revision's slots have an h2c pool"
        start_limit = _remaining(deadline)
        if timeouts.response_start:
            start_limit = min(start_limit or timeouts.response_start, timeouts.response_start)
        try:
            response = await slot.h2.request(headers, body, start_limit)
        except UpstreamUnreachable:
            raise
        except UpstreamTimeout:
            await respond(send, 504, f"revision {key[1]} did not answer within the timeout")
            return 504
        except UpstreamError as exc:
            if isinstance(body, _StreamedBody) and body.too_large:
                await respond(send, 413, f"request body is larger than the limit of {body.limit} bytes")
                return 413
            if isinstance(body, _StreamedBody) and body.gone:
                return 499
            await respond(send, 502, f"instance of revision {key[1]} failed: {exc}")
            return 502
        trailers = "http.response.trailers" in (scope.get("extensions") or {})
        await send({"type": "http.response.start", "status": response.status, "trailers": trailers,
                    "headers": [(n, v) for n, v in response.headers if n not in _RESPONSE_HOP_BY_HOP]})
        try:
            async for chunk in response.body(_chunk_limit(timeouts, _remaining(deadline))):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError:
            raise ConnectionAbortedError(f"response from revision {key[1]} was cut short") from None
        except BaseException:
            response.cancel()  # the client went away: the instance stops too
            raise
        await send({"type": "http.response.body", "body": b""})
        if trailers:
            await send({"type": "http.response.trailers", "headers": response.trailers, "more_trailers": False})
        return response.status

    @staticmethod
    async def _acquire(send: Send, key: RevisionKey, throttler: Throttler, deadline: float | None) -> Slot | int:
        """A slot, after waiting in the queue; or the status code of the answer sent instead."""
        try:
            return await throttler.acquire(_remaining(deadline))
        except QueueFull as exc:
            await respond(send, 503, f"revision {key[1]} is overloaded: {exc}")
            return 503
        except Unavailable as exc:
            await respond(send, 503, f"revision {key[1]} is unavailable: {exc}")
            return 503
        except NoCapacity:
            await respond(send, 504, f"no instance of revision {key[1]} became available within the timeout")
            return 504

    @staticmethod
    async def _exchange(
        send: Send, head: _Head, body: bytes, key: RevisionKey, slot: Slot, timeouts: Timeouts,
        deadline: float | None,
    ) -> int:
        # Not appended to head.parts: a request sent to an unreachable instance is sent again to another one.
        request = b"".join((*head.parts, b"content-length: %d\r\n\r\n" % len(body), body))
        start_limit = _remaining(deadline)
        if timeouts.response_start:
            start_limit = min(start_limit or timeouts.response_start, timeouts.response_start)
        try:
            response = await slot.pool.request(request, start_limit)
        except UpstreamUnreachable:
            raise
        except UpstreamTimeout:
            await respond(send, 504, f"revision {key[1]} did not answer within the timeout")
            return 504
        except UpstreamError as exc:
            await respond(send, 502, f"instance of revision {key[1]} failed: {exc}")
            return 502
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(n, v) for n, v in response.headers if n.lower() not in _RESPONSE_HOP_BY_HOP]})
        if response.complete:
            await send({"type": "http.response.body", "body": response.take_complete()})
            return response.status
        try:
            async for chunk in response.body(_chunk_limit(timeouts, _remaining(deadline))):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError:
            # Headers are out; all that is left is to cut the response short.
            raise ConnectionAbortedError(f"response from revision {key[1]} was cut short") from None
        await send({"type": "http.response.body", "body": b""})
        return response.status


class _StreamedBody:
    """The client's request body as an async iterator, at most `limit` bytes, for the h2c pool to stream."""

    def __init__(self, receive: Receive, limit: int, first: bytes) -> None:
        self.receive = receive
        self.limit = limit
        self.first = first  # the first message's body, already received
        self.started = False
        self.too_large = False
        self.gone = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        size = len(self.first)
        if size > self.limit:
            self.too_large = True
            raise BodyTooLarge(f"request body is larger than the limit of {self.limit} bytes")
        yield self.first
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                raise ConnectionResetError("client went away")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                self.too_large = True
                raise BodyTooLarge(f"request body is larger than the limit of {self.limit} bytes")
            yield chunk
            if not message.get("more_body", False):
                return


# Request headers an h2c instance is not given as the client sent them (`te: trailers` is kept: gRPC needs it).
_H2_NOT_COPIED = (_NOT_COPIED - {b"te"}) | {b"host", b"http2-settings"}


def _h2_request_headers(head: _Head) -> list[tuple[bytes, bytes]]:
    """The request for an h2c instance: pseudo-headers, the client's fields less the hop-by-hop ones, and the
    forwarding headers as `_parse_head` sets them for HTTP/1.1 (computed again: this is not the hot path)."""
    scope = head.scope
    target = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    authority = b""
    fields: list[tuple[bytes, bytes]] = []
    prior_xff: list[bytes] = []
    prior_fwd: list[bytes] = []
    for name, value in scope["headers"]:
        if name == b"host":
            authority = value
        elif name == b"te":
            if value.strip().lower() == b"trailers":
                fields.append((name, b"trailers"))
        elif name == _X_FORWARDED_FOR:
            prior_xff.append(value)
        elif name == _FORWARDED:
            prior_fwd.append(value)
        elif name not in _H2_NOT_COPIED:
            fields.append((name, value))
    client = scope.get("client")
    client_ip = (client[0] if client else "unknown").encode()
    proto = scope.get("scheme", "http").encode()
    forwarded = b"for=%s;host=%s;proto=%s" % (_node(client_ip), head.host.encode("latin-1"), proto)
    fields += [(b"x-forwarded-for", b", ".join([*prior_xff, client_ip])), (b"x-forwarded-proto", proto),
               (b"forwarded", b", ".join([*prior_fwd, forwarded]))]
    if head.trace_header is not None:
        fields.append((b"traceparent", head.trace_header))
    return request_headers(scope["method"].encode("ascii"), authority, target, fields)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _chunk_limit(timeouts: Timeouts, remaining: float | None) -> float | None:
    limits = [t for t in (timeouts.idle, remaining) if t]
    return min(limits) if limits else None

