"""WebSocket upgrades through the ingress: the client's session relayed message by message to an instance.

uvicorn speaks WebSocket to the client (ASGI `websocket` scope); a `websockets` client speaks it to the instance,
with the client's path, query, headers (Host included) and subprotocols. The instance's handshake answer decides:
101 accepts the client with the instance's subprotocol; anything else is relayed to the client as that HTTP
response. Each side negotiates its own extensions (compression) and answers its own pings.

The session holds one throttler slot from the handshake to the close, so a WebSocket counts as one in-flight
request for its whole life (Knative's activator and queue-proxy count it so) and `containerConcurrency` bounds
open sessions per instance. With no ready instance the upgrade waits in the throttler like any request (scale
from zero). The Revision's timeouts bound the whole session, as Knative's queue-proxy does (its timeout handler
sees no write on an upgraded connection, so `timeoutSeconds`, `responseStartTimeoutSeconds` and
`idleTimeoutSeconds` each end it that long after the upgrade began): the client then gets close code 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import Any, cast

from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.http11 import Request

from wisp.http_client.pool import HOP_BY_HOP
from wisp.serving.throttler import NoCapacity, QueueFull, Slot, Throttler, Unavailable

# The largest message relayed either way: uvicorn's own default for client messages.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Handshake headers the client library writes itself, and the forwarding headers set here.
_NOT_FORWARDED = HOP_BY_HOP | {
    b"host", b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions", b"sec-websocket-protocol",
    b"x-forwarded-for", b"x-forwarded-proto", b"forwarded",
}
_NOT_RELAYED_BACK = HOP_BY_HOP | {b"sec-websocket-accept", b"sec-websocket-extensions", b"sec-websocket-protocol",
                                  b"date", b"server"}
# Close codes that must never be sent in a close frame (RFC 6455 §7.4.1): reported as a normal close instead.
_UNSENDABLE = {1005, 1006, 1015}


class _HostKeepingConnection(ClientConnection):
    """The `websockets` client connection, with the client's Host in the handshake instead of the instance's
    address: an instance sees the Host it was asked for, as with a plain request."""

    def __init__(self, *args: Any, host_header: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._host_header = host_header

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        build = self.protocol.connect
        host = self._host_header

        def connect_with_host() -> Request:
            request = build()
            del request.headers["Host"]
            request.headers["Host"] = host
            return request

        self.protocol.connect = connect_with_host  # type: ignore[method-assign]
        await super().handshake(*args, **kwargs)


async def deny(scope: Scope, send: Send, status: int, text: str,
               headers: list[tuple[bytes, bytes]] | None = None, body: bytes | None = None) -> None:
    """Refuse the upgrade with an HTTP response (ASGI's websocket denial extension), else a plain 403."""
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008, "reason": text[:120]})
        return
    content = body if body is not None else (text + "\n").encode()
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": headers if headers is not None else [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "websocket.http.response.body", "body": content})


def _upstream_headers(scope: Scope, host: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The headers for the instance's handshake (forwarding headers set as for a request) and the subprotocols."""
    headers: list[tuple[str, str]] = []
    subprotocols: list[str] = []
    prior_xff: list[str] = []
    prior_fwd: list[str] = []
    for name, value in scope["headers"]:
        if name == b"sec-websocket-protocol":
            subprotocols += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
        elif name == b"x-forwarded-for":
            prior_xff.append(value.decode("latin-1"))
        elif name == b"forwarded":
            prior_fwd.append(value.decode("latin-1"))
        elif name not in _NOT_FORWARDED:
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
    client = scope.get("client")
    client_ip = client[0] if client else "unknown"
    proto = "https" if scope.get("scheme") == "wss" else "http"
    headers += [
        ("x-forwarded-for", ", ".join([*prior_xff, client_ip])),
        ("x-forwarded-proto", proto),
        ("forwarded", ", ".join([*prior_fwd, f"for={client_ip};host={host};proto={proto}"])),
    ]
    return headers, subprotocols


async def _acquire(scope: Scope, send: Send, revision: str, throttler: Throttler,
                   deadline: float | None) -> Slot | int:
    slot = throttler.try_acquire()
    if slot is not None:
        return slot
    try:
        return await throttler.acquire(None if deadline is None else max(0.0, deadline - time.monotonic()))
    except QueueFull as exc:
        await deny(scope, send, 503, f"revision {revision} is overloaded: {exc}")
        return 503
    except Unavailable as exc:
        await deny(scope, send, 503, f"revision {revision} is unavailable: {exc}")
        return 503
    except NoCapacity:
        await deny(scope, send, 504, f"no instance of revision {revision} became available within the timeout")
        return 504


async def relay(scope: Scope, receive: Receive, send: Send, host: str, revision: str, throttler: Throttler,
                limit: float | None) -> int:
    """Serve one WebSocket upgrade through `throttler`'s instances; the status it ended with (101 if accepted).
    `limit` (seconds, None for none) bounds everything from now: the wait for an instance, its handshake and
    the session."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return 499  # the client left before the handshake
    deadline = time.monotonic() + limit if limit else None
    headers, subprotocols = _upstream_headers(scope, host)
    target = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    while True:
        slot = await _acquire(scope, send, revision, throttler, deadline)
        if isinstance(slot, int):
            return slot
        try:
            pool = slot.pool
            uri = f"ws://{pool.host}:{pool.port}{target.decode('latin-1')}"
            factory = functools.partial(_HostKeepingConnection, host_header=host)
            try:
                upstream = await connect(
                    uri, additional_headers=headers, subprotocols=cast(Any, subprotocols) or None,
                    open_timeout=None if deadline is None else max(0.001, deadline - time.monotonic()),
                    max_size=MAX_MESSAGE_BYTES, ping_interval=None, user_agent_header=None,
                    create_connection=cast(Any, factory), compression="deflate",
                )
            except ConnectionRefusedError:
                pool.unreachable = True  # it died: like a request, the upgrade waits for another instance
                continue
            except InvalidStatus as exc:
                response = exc.response
                relayed = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.raw_items()
                           if k.lower().encode("latin-1") not in _NOT_RELAYED_BACK]
                await deny(scope, send, response.status_code, "", relayed, bytes(response.body or b""))
                return response.status_code
            except TimeoutError:
                await deny(scope, send, 504, f"revision {revision} did not answer the upgrade within the timeout")
                return 504
            except (OSError, InvalidHandshake) as exc:
                await deny(scope, send, 502, f"instance of revision {revision} failed the upgrade: {exc}")
                return 502
            await _session(scope, receive, send, upstream, deadline)
            return 101
        finally:
            throttler.release(slot)


async def _session(scope: Scope, receive: Receive, send: Send, upstream: ClientConnection,
                   deadline: float | None) -> None:
    response_headers: Headers = upstream.response.headers if upstream.response is not None else Headers()
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers.raw_items()
             if k.lower().encode("latin-1") not in _NOT_RELAYED_BACK]
    await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol, "headers": extra})
    to_instance = asyncio.ensure_future(_client_to_instance(receive, upstream))
    to_client = asyncio.ensure_future(_instance_to_client(send, upstream))
    try:
        _, pending = await asyncio.wait((to_instance, to_client), return_when=asyncio.FIRST_COMPLETED,
                                        timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        if len(pending) == 2:  # the Revision's timeout: both sides are told
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": 1011, "reason": "revision timeout reached"})
            with contextlib.suppress(ConnectionClosed):
                await upstream.close(1001, "revision timeout reached")
    finally:
        for task in (to_instance, to_client):
            task.cancel()
        await asyncio.gather(to_instance, to_client, return_exceptions=True)
        await upstream.close()


async def _client_to_instance(receive: Receive, upstream: ClientConnection) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            data = message.get("bytes")
            try:
                await upstream.send(data if data is not None else message.get("text") or "")
            except ConnectionClosed:
                return  # the instance closed: the other direction tells the client
        elif kind == "websocket.disconnect":
            code = int(message.get("code") or 1000)
            with contextlib.suppress(ConnectionClosed):
                await upstream.close(1000 if code in _UNSENDABLE else code, str(message.get("reason") or ""))
            return


async def _instance_to_client(send: Send, upstream: ClientConnection) -> None:
    try:
        async for data in upstream:
            if isinstance(data, str):
                await send({"type": "websocket.send", "text": data})
            else:
                await send({"type": "websocket.send", "bytes": data})
    except ConnectionClosed:
        pass
    code = upstream.close_code or 1000
    with contextlib.suppress(Exception):  # the client may be gone already
        await send({"type": "websocket.close", "code": 1000 if code in _UNSENDABLE else code,
                    "reason": upstream.close_reason or ""})
