"""The ingress app's own CPU per request, in-process: what its Python work costs, without sockets or other processes.

    .venv/bin/python bench/ingress_cpu.py [--requests 50000] [--repeats 7] [--baseline-src DIR]

`Ingress.__call__` for `GET /` with three headers, routed to a revision whose one instance is a stand-in pool
that answers at once (so the figure is the ingress's work: head parsing, routing, the throttler, tracing, the
response messages). Cases: tracing off; config-tracing sampling new traces at 0.1 and at 1; continuing a
`traceparent` the client sent. Best of --repeats rounds of --requests each (CPU time, `time.process_time`).
With --baseline-src, the same cases run on that wisp source tree too (e.g. `git archive <commit> src | tar -x -C
DIR`), each in its own process, alternating, for an A/B that the machine's load moves far less than the
end-to-end `dataplane.py`. A tree too old for a case (no sampler before config-tracing) reports it as n/a.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import MutableMapping
from typing import Any, ClassVar

from cpu_ab import ab_main

CASES = ("off", "rate 0.1", "rate 1", "continue")
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class _Answer:
    status = 200
    headers: ClassVar[list[tuple[bytes, bytes]]] = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    complete = True

    def take_complete(self) -> bytes:
        return b"ok"


class _AnsweringPool:
    """Stands in for the instance's connection pool: the response is there at once."""

    unreachable = False
    host, port = "127.0.0.1", 1

    async def request(self, request: bytes, timeout: float | None) -> _Answer:
        return _Answer()

    def close(self) -> None:
        return None


def measure(case: str, requests: int, repeats: int) -> float | None:
    from wisp.observability.export import Tracer
    from wisp.observability.spans import SpanStore
    from wisp.serving.ingress import Ingress, Timeouts
    from wisp.serving.routing import RouteEntry, RoutingTable, Target
    from wisp.serving.throttler import Slot, Throttler

    routing = RoutingTable()
    routing.set_hosts(("default", "Route", "x"),
                      {"x.default.localhost": RouteEntry((Target(("default", "x-00001"), 100),))})
    throttler = Throttler(0, 100)
    slot = Slot("x-00001-a", _AnsweringPool(), 0)  # type: ignore[arg-type]
    throttler.add(slot)
    throttler.mark_ready(slot)

    class Backends:
        def backend(self, key: Any) -> Any:
            return throttler, Timeouts(300.0)

    kwargs: dict[str, Any] = {"tracer": Tracer(SpanStore())}
    if case.startswith("rate"):
        try:
            from wisp.observability.tracing_config import Sampler
        except ImportError:
            return None  # a tree from before config-tracing
        kwargs["sampler"] = Sampler(float(case.split()[1]))
    app = Ingress(routing, Backends(), 10_000_000, **kwargs)
    headers = [(b"host", b"x.default.localhost"), (b"user-agent", b"bench"), (b"accept", b"*/*")]
    if case == "continue":
        headers.append((b"traceparent", TRACEPARENT))
    scope = {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http", "path": "/",
             "raw_path": b"/", "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8080), "headers": headers}
    message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    async def send(_: MutableMapping[str, Any]) -> None:
        return None

    async def rounds() -> float:
        for _ in range(requests // 2):  # warm up
            await app(scope, receive, send)
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            for _ in range(requests):
                await app(scope, receive, send)
            best = min(best, (time.process_time() - start) / requests * 1e6)
        return best

    return asyncio.run(rounds())


def main(argv: list[str] | None = None) -> int:
    return ab_main(argv, script=__file__, description="the ingress app's CPU per request, in-process",
                   cases=CASES, measure=measure, unit="request", default_count=50_000)


if __name__ == "__main__":
    sys.exit(main())
