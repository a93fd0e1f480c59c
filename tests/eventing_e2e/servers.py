"""A real CloudEvents receiver for the end-to-end tests: an aiohttp server on a free port.

Every request is parsed as a CloudEvent and kept with its headers; `answer(event, attempt)` picks the HTTP
status (or a reply event) per request, `attempt` being how many times this event id has arrived so far.
Tests wait on `wait_until(predicate)`, woken by each arrival: no polling.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from wisp.eventing.cloudevents import CloudEvent, encode, parse_request

# (event, attempt number of this id, 1-based) → HTTP status, or a reply event (sent with 200)
Answer = Callable[[CloudEvent, int], Awaitable[int | CloudEvent]]


async def accept(event: CloudEvent, attempt: int) -> int:
    return 202


@dataclass(frozen=True)
class Arrival:
    event: CloudEvent
    headers: dict[str, str]
    status: int
    at: float  # time.monotonic() on arrival


class EventReceiver:
    def __init__(self, answer: Answer = accept) -> None:
        self.answer = answer
        self.arrivals: list[Arrival] = []
        self.attempts: Counter[str] = Counter()
        self.delivered: set[str] = set()  # ids answered with 2xx at least once
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def events(self) -> list[CloudEvent]:
        return [a.event for a in self.arrivals]

    def of_id(self, event_id: str) -> list[Arrival]:
        return [a for a in self.arrivals if a.event["id"] == event_id]

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        headers = {k.lower(): v for k, v in request.headers.items()}
        event = parse_request(headers, await request.read())[0]
        self.attempts[event["id"]] += 1
        answer = await self.answer(event, self.attempts[event["id"]])
        status = 200 if isinstance(answer, CloudEvent) else answer
        async with self._changed:
            self.arrivals.append(Arrival(event, headers, status, at))
            if 200 <= status < 300:
                self.delivered.add(event["id"])
            self._changed.notify_all()
        if isinstance(answer, CloudEvent):
            reply_headers, body = encode(answer)
            return web.Response(status=200, headers=reply_headers, body=body)
        return web.Response(status=answer, text="" if status < 300 else f"sink says {status}")

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what or predicate}; got {len(self.arrivals)} "
                                 f"request(s)") from None

    async def wait_for(self, count: int, timeout: float = 60.0) -> None:
        await self.wait_until(lambda: len(self.arrivals) >= count, timeout, f"{count} request(s)")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
