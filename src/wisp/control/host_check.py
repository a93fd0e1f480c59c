"""Without a token the control API answers only requests addressed to a loopback name.

A page on any web site can make a browser POST to 127.0.0.1 after pointing its own name there (DNS rebinding):
the request then carries the attacker's name in `Host`. Binding to loopback does not stop that; checking the
name does. With a token set, the token is the guard and any name is served.
"""

from __future__ import annotations

import ipaddress
import json

from starlette.types import ASGIApp, Receive, Scope, Send


def is_loopback_name(host: str) -> bool:
    """`host` is a Host header value (name, IPv4 or [IPv6], optional port)."""
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class LoopbackHostOnly:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
            if host is not None and not is_loopback_name(host):
                await _refuse(scope, send, host)
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send, host: str) -> None:
    message = (f"Host {host!r} is not a loopback name: without WISP_TOKEN the API answers only requests "
               "addressed to localhost or a loopback address")
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "Forbidden",
                       "message": message, "code": 403}).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
