"""The ingress: one ASGI app that routes by Host, splits traffic, and proxies through each revision's throttler.

It is a raw ASGI callable rather than a framework app because it sits on every request's path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from wisp.serving.routing import RevisionKey, RoutingTable
from wisp.serving.throttler import NoCapacity, QueueFull, Throttler
from wisp.serving.upstream import UpstreamError, UpstreamTimeout, build_request_head

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = (text + "\n").encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body)),
                    *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


def _host_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"host":
            host: str = value.decode("latin-1").lower()
            return host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return ""


def _forwarded_headers(scope: Scope, host: str) -> list[tuple[bytes, bytes]]:
    client = scope.get("client")
    client_ip = client[0] if client else "unknown"
    proto = scope.get("scheme", "http")
    prior_xff = b", ".join(v for n, v in scope["headers"] if n == b"x-forwarded-for")
    xff = (prior_xff + b", " if prior_xff else b"") + client_ip.encode()
    forwarded = f"for={client_ip};host={host};proto={proto}".encode()
    prior_fwd = b", ".join(v for n, v in scope["headers"] if n == b"forwarded")
    headers = [(b"x-forwarded-for", xff), (b"x-forwarded-proto", proto.encode()),
               (b"forwarded", (prior_fwd + b", " if prior_fwd else b"") + forwarded)]
    return headers


_REPLACED = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"forwarded"})


class Ingress:
    def __init__(
        self,
        routing: RoutingTable,
        backends: Backends,
        body_limit: int,
        host_apps: dict[str, ASGIApp] | None = None,
        observer: RequestObserver | None = None,
    ) -> None:
        self.routing = routing
        self.backends = backends
        self.body_limit = body_limit
        self.host_apps = host_apps if host_apps is not None else {}
        self.observer: RequestObserver = observer or _NullObserver()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        host = _host_of(scope)
        app = self.host_apps.get(host)
        if app is not None:
            await app(scope, receive, send)
            return
        key = self.routing.route(host)
        if key is None:
            known = ", ".join(self.routing.public_hosts()) or "none yet"
            await respond(send, 404, f"no service answers to host {host!r}; hosts: {known}")
            return
        backend = self.backends.backend(key)
        if backend is None:
            await respond(send, 503, f"revision {key[1]} is not running")
            return
        started = time.monotonic()
        status = await self._proxy(scope, receive, send, host, key, *backend)
        self.observer.request_done(key, status, time.monotonic() - started)

    async def _proxy(
        self, scope: Scope, receive: Receive, send: Send, host: str, key: RevisionKey,
        throttler: Throttler, timeouts: Timeouts,
    ) -> int:
        try:
            body = await read_body(receive, self.body_limit)
        except BodyTooLarge as exc:
            await respond(send, 413, str(exc))
            return 413
        except ConnectionResetError:
            return 499
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.total if timeouts.total else None

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        try:
            slot = await throttler.acquire(remaining())
        except QueueFull as exc:
            await respond(send, 503, f"revision {key[1]} is overloaded: {exc}")
            return 503
        except NoCapacity:
            await respond(send, 504, f"no instance of revision {key[1]} became available within the timeout")
            return 504
        try:
            target = scope.get("raw_path") or scope["path"].encode()
            if scope.get("query_string"):
                target += b"?" + scope["query_string"]
            headers = [(n, v) for n, v in scope["headers"] if n not in _REPLACED]
            head = build_request_head(scope["method"], target, headers, len(body), _forwarded_headers(scope, host))
            start_limit = remaining()
            if timeouts.response_start:
                start_limit = min(start_limit or timeouts.response_start, timeouts.response_start)
            try:
                response = await slot.pool.request(head, body, start_limit)
            except UpstreamTimeout:
                await respond(send, 504, f"revision {key[1]} did not answer within the timeout")
                return 504
            except UpstreamError as exc:
                await respond(send, 502, f"instance of revision {key[1]} failed: {exc}")
                return 502
            await send({"type": "http.response.start", "status": response.status,
                        "headers": [(n, v) for n, v in response.headers
                                    if n.lower() not in (b"connection", b"keep-alive", b"transfer-encoding")]})
            try:
                async for chunk in response.body(self._chunk_limit(timeouts, remaining())):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError:
                # Headers are out; all that is left is to cut the response short.
                raise ConnectionAbortedError(f"response from revision {key[1]} was cut short") from None
            await send({"type": "http.response.body", "body": b""})
            return response.status
        finally:
            throttler.release(slot)

    @staticmethod
    def _chunk_limit(timeouts: Timeouts, remaining: float | None) -> float | None:
        limits = [t for t in (timeouts.idle, remaining) if t]
        return min(limits) if limits else None


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
