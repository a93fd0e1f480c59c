"""A real HTTP sink for delivery tests: an aiohttp server on a free port that records every request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Sink:
    """Answers each request with the next scripted `Reply` (the last repeats); `delay` slows each answer."""

    def __init__(self, replies: list[Reply] | None = None, delay: float = 0.0) -> None:
        self.replies = list(replies or [Reply()])
        self.delay = delay
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._waiters: list[tuple[int, asyncio.Event]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Hooks called when a request arrives and just before its answer is sent.
        self.on_request: Callable[[Received], None] | None = None
        self.on_answer: Callable[[Received], None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            got = Received({k.lower(): v for k, v in request.headers.items()}, await request.read(), request.path)
            index = len(self.received)
            self.received.append(got)
            if self.on_request is not None:
                self.on_request(got)
            if self.delay:
                await asyncio.sleep(self.delay)
            reply = self.replies[min(index, len(self.replies) - 1)]
            if self.on_answer is not None:
                self.on_answer(got)
            return web.Response(status=reply.status, headers=reply.headers, body=reply.body)
        finally:
            self.in_flight -= 1
            for count, event in self._waiters:
                if len(self.received) >= count:
                    event.set()

    async def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Until `count` requests have been answered."""
        if len(self.received) >= count and self.in_flight == 0:
            return
        event = asyncio.Event()
        self._waiters.append((count, event))
        await asyncio.wait_for(event.wait(), timeout)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
