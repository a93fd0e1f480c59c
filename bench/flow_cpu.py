"""The daemon's own CPU per event on the flows' paths, in-process: what wisp's Python work costs, without sockets.

    .venv/bin/python bench/flow_cpu.py [--events 20000] [--repeats 7] [--baseline-src DIR]

The shapes of `bench/events.py --flows-only` (part 4), driven the way the ingress drives a channel (its ASGI
app, called with the headers a sender's binary CloudEvent arrives with):
  * single hop: an InMemoryChannel with one Subscription to the sink;
  * sequence x3: a 3-step Sequence's channels (each step's reply handed to the next channel in-process, as the
    Subscription reconciler wires them), each step an echo replying with the event in binary mode, the last
    reply to the sink.
Deliveries go through wisp's own HTTP client (`HttpPoster` and its pools) down to a stand-in transport that
answers each request with a canned response at once (an echo's reply, or the sink's empty 200): wisp's code
from the channel's ASGI app on runs (parse, encode, request head, response and reply parsing, the delivery's
bookkeeping); the ingress and uvicorn in front of it, the system calls and the other processes do not. Also
the codec alone: encoding an event in binary mode, and parsing the binary request a channel receives.
Best of --repeats rounds of --events each (CPU time, `time.process_time`), in µs per event. With
--baseline-src, the same cases run on that wisp source tree too (e.g. `git archive <commit> src | tar -x -C
DIR`, then pass DIR/src), each in its own process, for an A/B the machine's load moves far less than the end-to-end
`events.py`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from cpu_ab import ab_main

CASES = ("encode", "parse", "single hop", "sequence x3")
BODY = b'{"message": "hello, wisp"}'
SENT = b"1700000000.123456"
# What the ingress hands a channel for one of events.py's sends (aiohttp's own headers included).
REQUEST_HEADERS = [
    (b"host", b"bench-1-kn-channel.default.svc.cluster.local"),
    (b"ce-specversion", b"1.0"),
    (b"ce-id", b"0123456789abcdef0123456789abcdef"),
    (b"ce-source", b"/bench"),
    (b"ce-type", b"bench"),
    (b"ce-benchsent", SENT),
    (b"content-type", b"application/json"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"user-agent", b"Python/3.11 aiohttp/3.11.0"),
    (b"content-length", b"26"),
]
_AIOHTTP_TAIL = b"Date: Thu, 30 Nov 2023 12:00:00 GMT\r\nServer: Python/3.11 aiohttp/3.11.0\r\n"
# bench/events.py's echo: the request's ce- headers and Content-Type back, with the body.
ECHO_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nce-specversion: 1.0\r\nce-id: 0123456789abcdef0123456789abcdef\r\n"
    b"ce-source: /bench\r\nce-type: bench\r\nce-benchsent: " + SENT + b"\r\n"
    b"Content-Type: application/json\r\nContent-Length: 26\r\n" + _AIOHTTP_TAIL + b"\r\n" + BODY
)
SINK_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 0\r\n" + _AIOHTTP_TAIL + b"\r\n"
)


class _AnsweringTransport:
    """Stands in for a keep-alive socket: each request written is answered, on the next loop turn, with `answer`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: Any, answer: bytes) -> None:
        self._loop = loop
        self._protocol = protocol
        self._answer = answer
        self.requests = 0

    def write(self, data: bytes) -> None:
        self.requests += 1
        self._loop.call_soon(self._protocol.data_received, self._answer)

    def abort(self) -> None:
        raise AssertionError("the stand-in connection was aborted: a response did not parse")

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None


def _answering_pool(loop: asyncio.AbstractEventLoop, port: int, answer: bytes) -> tuple[Any, _AnsweringTransport]:
    """A pool of wisp's HTTP client holding one idle keep-alive connection on a stand-in transport."""
    from wisp.http_client.pool import UpstreamPool, _Connection

    pool = UpstreamPool("127.0.0.1", port, max_idle=1024)
    conn = _Connection(pool, loop)
    transport = _AnsweringTransport(loop, conn, answer)
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.reusable = True
    pool.release(conn)
    return pool, transport


def _flow(kind: str, loop: asyncio.AbstractEventLoop) -> tuple[Any, _AnsweringTransport]:
    """The channel the ingress would call for `kind`, wired to stand-in echoes and sink; the sink's transport."""
    from wisp.eventing.channel import ChannelSubscriber, InMemoryChannel, channel_host
    from wisp.eventing.delivery import Deliverer, DeliverySpec, Destination

    deliverer = Deliverer()
    http = deliverer._http
    http._pools[("127.0.0.1", 9001)], _ = _answering_pool(loop, 9001, ECHO_RESPONSE)
    http._pools[("127.0.0.1", 9002)], sink_transport = _answering_pool(loop, 9002, SINK_RESPONSE)
    sink = Destination("http://127.0.0.1:9002/")
    spec = DeliverySpec()
    if kind == "single hop":
        channel = InMemoryChannel("default", "bench-1", deliverer)
        channel.subscribe(ChannelSubscriber("s", 1, sink, None, spec))
        return channel, sink_transport
    channels = [InMemoryChannel("default", f"bench-1-kn-sequence-{i}", deliverer) for i in range(3)]
    for i, channel in enumerate(channels):
        echo = Destination("http://127.0.0.1:9001/echo")
        if i == len(channels) - 1:
            channel.subscribe(ChannelSubscriber(f"s{i}", 1, echo, sink, spec))
            continue
        # The next step's channel: its address through the ingress, and the channel itself for the hand-over.
        following = channels[i + 1]
        reply = Destination("http://127.0.0.1:8080/", channel_host(following.name, following.namespace))
        channel.subscribe(ChannelSubscriber(f"s{i}", 1, echo, reply, spec, reply_channel=following))
    return channels[0], sink_transport


def measure(case: str, events: int, repeats: int) -> float:
    from wisp.eventing.cloudevents import encode, parse_request

    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in REQUEST_HEADERS}
    if case in ("encode", "parse"):
        event = parse_request(headers, BODY)[0]
        work: Callable[[], object] = (
            (lambda: encode(event))
            if case == "encode"
            else (lambda: parse_request({k.decode("latin-1"): v.decode("latin-1") for k, v in REQUEST_HEADERS}, BODY))
        )
        return _best(work, events, repeats)
    loop_factory = asyncio.new_event_loop
    try:  # the daemon's loop (daemon.run), when installed
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_measure_flow(case, events, repeats))


def _best(work: Callable[[], object], events: int, repeats: int) -> float:
    for _ in range(events // 2):  # warm up
        work()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(events):
            work()
        best = min(best, (time.process_time() - start) / events * 1e6)
    return best


async def _measure_flow(kind: str, events: int, repeats: int) -> float:
    channel, sink = _flow(kind, asyncio.get_running_loop())
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
        "headers": REQUEST_HEADERS,
    }
    message = {"type": "http.request", "body": BODY, "more_body": False}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(reply: MutableMapping[str, Any]) -> None:
        if reply["type"] == "http.response.start":
            statuses.append(reply["status"])

    async def rounds(n: int) -> None:
        for _ in range(n):
            await channel(scope, receive, send)

    await rounds(events // 2)  # warm up
    best = float("inf")
    for _ in range(repeats):
        statuses.clear()
        start = time.process_time()
        await rounds(events)
        best = min(best, (time.process_time() - start) / events * 1e6)
        if statuses != [202] * events:
            raise SystemExit(f"flow_cpu: the {kind} flow answered {sorted(set(statuses))}, not 202")
    # Every step delivered every event: the sink got them all.
    if sink.requests != events // 2 + repeats * events:
        raise SystemExit(f"flow_cpu: the {kind} flow's sink got {sink.requests} of {events // 2 + repeats * events}")
    return best


def main(argv: list[str] | None = None) -> int:
    return ab_main(argv, script=__file__, description="the daemon's CPU per event on the flows' paths, in-process",
                   cases=CASES, measure=measure, unit="event", default_count=20_000)


if __name__ == "__main__":
    sys.exit(main())
