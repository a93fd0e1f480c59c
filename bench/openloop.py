"""An open-loop HTTP/1.1 load generator: requests leave on a fixed schedule, whatever the server does.

Run as its own process (so it never shares a core's event loop with the server it measures):
    python bench/openloop.py --port 8080 --host-header svc.default.localhost --path /sleep --rate 500 --duration 8

Why not wrk: wrk is closed-loop (a connection sends its next request only after the last answer), so a
slow server slows the load down and hides its own queueing (coordinated omission); wrk2 fixes that but
is not packaged in Debian. This generator is raw asyncio protocols + httptools on uvloop: at 500 req/s it
costs a few per cent of one core. Latency is measured from each request's *scheduled* send time, so a
request that had to wait for the generator or for a connection counts that wait too.

Prints one JSON object: completed, errors, achieved rate, p50/p95/p99/max latency (ms), the generator's
worst scheduling lag (if that is large, the generator was the bottleneck and the figures are void).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import deque
from typing import Any, cast

import httptools


class _Conn(asyncio.Protocol):
    """One keep-alive connection; at most one request outstanding."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionResetError("server closed the connection"))

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())

    def _fail(self, exc: BaseException) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


async def run(port: int, host_header: str, path: str, rate: float, duration: float, warmup: float,
              connections: int, timeout: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: wisp-openloop\r\n\r\n".encode()
    idle: deque[_Conn] = deque()
    opened = 0

    async def connect() -> _Conn:
        nonlocal opened
        _, conn = await loop.create_connection(_Conn, "127.0.0.1", port)
        opened += 1
        return conn

    # Open the expected concurrency up front so connection set-up is not measured as latency.
    for conn in await asyncio.gather(*(connect() for _ in range(connections))):
        idle.append(conn)

    latencies: list[float] = []
    errors: dict[str, int] = {}
    # uvloop's loop.time() ticks in whole milliseconds: too coarse to measure a 1 ms difference.
    clock = time.perf_counter
    start = clock() + 0.05
    measure_from = start + warmup
    tasks: set[asyncio.Task[None]] = set()

    async def one(scheduled: float) -> None:
        conn = None
        try:
            while idle and idle[-1].closed:
                idle.pop()
            conn = idle.pop() if idle else await connect()
            status = await asyncio.wait_for(conn.send(request), timeout)
            done = clock()
            if conn.closed:
                conn = None
            if status != 200:
                errors[f"status {status}"] = errors.get(f"status {status}", 0) + 1
            elif scheduled >= measure_from:
                latencies.append(done - scheduled)
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if conn is not None and conn.transport is not None:
                conn.transport.abort()
            conn = None
        finally:
            if conn is not None:
                idle.append(conn)

    total = int(rate * (warmup + duration))
    max_lag = 0.0
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            max_lag = max(max_lag, -delay)
        task = asyncio.create_task(one(scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=timeout + 5)
    ended = clock()
    for conn in idle:
        if conn.transport is not None:
            conn.transport.close()
    latencies.sort()
    ms = [v * 1000 for v in latencies]
    return {
        "rate": rate, "duration": duration, "completed": len(ms),
        "achieved_rate": len(ms) / duration if duration else 0.0,
        "errors": errors, "connections": opened, "scheduler_max_lag_ms": max_lag * 1000,
        "p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
        "max": ms[-1] if ms else float("nan"), "wall_s": ended - start,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True, help="127.0.0.1 port to load")
    parser.add_argument("--host-header", default="localhost")
    parser.add_argument("--path", default="/")
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent but not measured")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections opened up front")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request limit in seconds")
    args = parser.parse_args(argv)
    if not 0 < args.rate <= 20000 or not 0 < args.duration <= 120:
        parser.error("rate must be in (0, 20000] and duration in (0, 120] seconds")
    loop_factory = asyncio.new_event_loop
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(run(args.port, args.host_header, args.path, args.rate, args.duration, args.warmup,
                                args.connections, args.timeout))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
