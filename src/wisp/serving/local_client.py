"""Calling an ASGI app in-process, as an HTTP client would over the network.

The daemon's own event dispatchers reach Services and brokers through the ingress app this way: the same
routing, throttling and timeouts as a request from outside, without a loopback HTTP hop of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message


@dataclass
class LocalResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class _Exchange:
    body: bytes
    sent: bool = False
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def receive(self) -> Message:
        if not self.sent:
            self.sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.done.wait()  # the "client" stays connected until the response is complete
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            for name, value in message.get("headers", []):
                self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.done.set()


class LocalClient:
    """POSTs to an ASGI app (wisp's ingress) without a socket. `port` is only reported in the scope."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self._app = app
        self._port = port

    async def post(self, url: str, host: str, headers: Mapping[str, str], body: bytes) -> LocalResponse:
        parts = urlsplit(url)
        path = parts.path or "/"
        raw_headers = [(b"host", host.encode("latin-1"))]
        raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
                        if k.lower() != "host"]
        raw_headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode("latin-1"),
            "query_string": parts.query.encode("latin-1"), "root_path": "", "headers": raw_headers,
            "client": ("127.0.0.1", 0), "server": ("127.0.0.1", self._port),
        }
        exchange = _Exchange(body)
        try:
            await self._app(scope, exchange.receive, exchange.send)
        finally:
            exchange.done.set()
        if not exchange.status:
            raise ConnectionError("the ingress gave no response")
        return LocalResponse(exchange.status, exchange.headers, b"".join(exchange.chunks))
