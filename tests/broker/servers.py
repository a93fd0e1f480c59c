"""Real HTTP servers for broker tests: an ASGI app under uvicorn, and scriptable subscribers (aiohttp)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from aiohttp import web

from wisp.eventing.cloudevents import CloudEvent, encode, parse_event
from wisp.eventing.delivery import Destination


class AppServer:
    """An ASGI app served by uvicorn on a port bound (and listening) before the server task starts."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)  # connections queue here until uvicorn accepts: no readiness polling needed
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()


Handler = Callable[[CloudEvent], Awaitable[CloudEvent | int | None]]


class Subscriber:
    """Receives CloudEvents; `handler` returns a reply event, None (202), or an HTTP status."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler
        self.events: list[CloudEvent] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def destination(self) -> Destination:
        return Destination(f"http://127.0.0.1:{self.port}/")

    async def _handle(self, request: web.Request) -> web.Response:
        event = parse_event(dict(request.headers), await request.read())
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        answer = await self.handler(event) if self.handler else None
        if isinstance(answer, int):
            return web.Response(status=answer)
        if answer is None:
            return web.Response(status=202)
        headers, body = encode(answer)
        return web.Response(status=200, headers=headers, body=body)

    async def wait_for(self, count: int, timeout: float = 30.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.events) >= count), timeout)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
