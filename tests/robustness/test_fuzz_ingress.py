"""Property-based fuzzing of the ingress's request parsing (issue 8): never a 500, never a hang.

Two levels:
- the ASGI app itself, with generated scopes (odd methods, Host values, the `/.wisp/route/{host}/...` form,
  percent-encodings, traceparent values, any header, bodies in pieces) in front of a real instance server;
- raw bytes over a socket to a running daemon with a function Service (uvicorn's parsing and the head limits
  included): heads with odd methods, targets and headers, bodies with Content-Length or chunked.

Every exchange is bounded in time: a hang fails the example instead of blocking the run.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Message, Scope

from tests.robustness.raw_http import exchange
from tests.serving.harness import Harness, running_daemon, service, write_function
from wisp.http_client.pool import HOP_BY_HOP, UpstreamPool
from wisp.serving.ingress import ROUTE_PREFIX, Ingress, Timeouts
from wisp.serving.routing import RevisionKey, RouteEntry, RoutingTable, Target
from wisp.serving.throttler import Slot, Throttler

FUZZ = settings(
    max_examples=300,
    deadline=None,  # a shared 2-core machine; hangs are caught by the exchanges' own timeouts
    database=None,
    derandomize=True,  # the same examples in CI as here
    # The instance (or daemon) is set up once per test and shared by its examples on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOST = "echo.default.localhost"
BODY_LIMIT = 4096
EXCHANGE_TIMEOUT = 10.0

# -- strategies shared by both levels ---------------------------------------------------------------

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
methods = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "M-SEARCH", "PURGE", "REPORT"]),
    st.text(TOKEN_CHARS, min_size=1, max_size=12),
)
_PATH_CHARS = "abcXYZ019-._~!$&'()*+,;=:@/%"
_ESCAPES = st.sampled_from(["%2F", "%2f", "%00", "%E2%98%83", "%ZZ", "%", "%25", "%0D%0A", "%20", "%FF", "%C0%AF"])
path_segments = st.lists(st.one_of(st.text(_PATH_CHARS, max_size=12), _ESCAPES), max_size=6).map("".join)
route_hosts = st.one_of(
    st.just(HOST), st.just(HOST.upper()), st.just(f"{HOST}:8080"), st.just("echo.default.svc.cluster.local"),
    st.just(""), path_segments, _ESCAPES,
)
raw_targets = st.one_of(
    path_segments.map(lambda p: "/" + p),
    st.tuples(route_hosts, st.sampled_from(["", "/"]), path_segments).map(lambda t: ROUTE_PREFIX + "".join(t)),
    st.just(ROUTE_PREFIX), st.just("/.wisp/route"), st.just("*"),
)
queries = st.one_of(st.just(""), st.text(_PATH_CHARS + "?=", max_size=20))
host_values = st.one_of(
    st.just(HOST), st.just(HOST.upper()), st.just(f"{HOST}:8080"), st.just(f"{HOST}:"), st.just("[::1]:8080"),
    st.just("[::1"), st.just(""), st.just("nothing.localhost"), st.text(TOKEN_CHARS + ":[].", max_size=30),
)
# Header values as a server would accept them: no control characters but HTAB; obs-text allowed.
_VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F)) + "\t" + "".join(chr(c) for c in range(0x80, 0x100))
header_values = st.text(_VALUE_CHARS, max_size=40).map(lambda v: v.strip(" \t"))
traceparents = st.one_of(
    st.from_regex(r"\A00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]\Z"),
    st.from_regex(r"\A[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[a-z]*)?\Z"),
    st.just("00-" + "0" * 32 + "-" + "0" * 16 + "-01"),
    header_values,
)
_NAMES = ["host", "traceparent", "tracestate", "expect", "connection", "keep-alive", "te", "trailer", "upgrade",
          "proxy-authorization", "proxy-connection", "x-forwarded-for", "x-forwarded-proto", "forwarded",
          "content-type", "accept", "cookie", "x-request-id"]
header_names = st.one_of(st.sampled_from(_NAMES), st.text(TOKEN_CHARS, min_size=1, max_size=16).map(str.lower))
header_pairs = st.lists(
    st.one_of(
        st.tuples(header_names, header_values),
        st.tuples(st.just("traceparent"), traceparents),
        st.tuples(st.just("host"), host_values),
        st.tuples(st.just("expect"), st.sampled_from(["100-continue", "100-Continue", "nothing"])),
    ),
    max_size=8,
)
bodies = st.lists(st.binary(max_size=1500), max_size=4)


# -- level 1: the ASGI app ------------------------------------------------------------------------------


async def echo_instance(scope: Scope, receive: Any, send: Any) -> None:
    """An instance that answers with what it received, so the test can check what the ingress passed on."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    reply = json.dumps({
        "method": scope["method"], "raw_path": scope["raw_path"].decode("latin-1"),
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]], "body": body.hex(),
    }).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(reply))]})
    await send({"type": "http.response.body", "body": reply})


@dataclass
class _Backends:
    throttler: Throttler

    def backend(self, key: RevisionKey) -> tuple[Throttler, Timeouts] | None:
        return self.throttler, Timeouts(total=EXCHANGE_TIMEOUT / 2)


@pytest.fixture
async def app() -> AsyncIterator[Ingress]:
    """The ingress app routing HOST (and its cluster-local name) to one real instance server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    config = uvicorn.Config(echo_instance, lifespan="off", log_level="warning", http="httptools", loop="none")
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # as serve() would set it (lifespan is off)
    await server.startup(sockets=[sock])
    pool = UpstreamPool("127.0.0.1", port)
    throttler = Throttler(capacity=0, queue_depth=100)
    throttler.add(Slot("echo-00001-deployment-aaaaa", pool, 0, ready=True))
    routing = RoutingTable()
    entry = RouteEntry((Target(("default", "echo-00001"), 100),))
    routing.set_hosts(("Route", "default", "echo"), {HOST: entry, "echo.default.svc.cluster.local": entry})
    try:
        yield Ingress(routing, _Backends(throttler), BODY_LIMIT)
    finally:
        pool.close()
        await server.shutdown(sockets=[sock])


@dataclass
class Call:
    scope: Scope
    chunks: list[bytes]
    disconnect: bool  # the client goes away instead of sending its body


@st.composite
def calls(draw: st.DrawFn) -> Call:
    target = draw(raw_targets)
    raw_path = target.encode("latin-1")
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in draw(header_pairs)]
    if draw(st.booleans()):
        headers.insert(0, (b"host", draw(host_values).encode("latin-1")))
    chunks = draw(bodies)
    declared = draw(st.sampled_from(["none", "true", "huge", "junk"]))
    length = {"none": None, "true": b"%d" % sum(map(len, chunks)), "huge": b"9" * 5000, "junk": b"12a"}[declared]
    if length is not None:
        headers.append((b"content-length", length))
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": draw(methods),
        "scheme": "http", "path": unquote(target), "raw_path": raw_path,
        "query_string": draw(queries).encode("latin-1"), "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
    }
    return Call(scope, chunks, draw(st.integers(0, 9)) == 0)


async def run_app(app: Ingress, call: Call) -> list[Message]:
    sent: list[Message] = []
    answered = asyncio.Event()
    incoming: list[Message] = [{"type": "http.disconnect"}] if call.disconnect else [
        {"type": "http.request", "body": chunk, "more_body": i < len(call.chunks) - 1}
        for i, chunk in enumerate(call.chunks or [b""])
    ]

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered.set()

    async with asyncio.timeout(EXCHANGE_TIMEOUT):
        await app(call.scope, receive, send)
    return sent


@FUZZ
@given(call=calls())
async def test_ingress_app_answers_every_request(app: Ingress, call: Call) -> None:
    sent = await run_app(app, call)
    if call.disconnect and not sent:
        return  # nobody to answer
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1 and sent[0] is starts[0], sent
    status = starts[0]["status"]
    assert 200 <= status < 600 and status != 500, sent
    assert sent[-1]["type"] == "http.response.body" and not sent[-1].get("more_body", False)
    if status != 200:
        return
    # It reached the instance: check what the instance was given.
    body = b"".join(m.get("body", b"") for m in sent[1:])
    seen = json.loads(body)
    names = [name for name, _ in seen["headers"]]
    assert names.count("host") == 1
    assert not {n.encode() for n in names} & (HOP_BY_HOP - {b"content-length"} | {b"expect"})
    assert names.count("content-length") == 1
    assert bytes.fromhex(seen["body"]) == b"".join(call.chunks)
    assert seen["method"] == call.scope["method"]
    forwarded_for = dict(seen["headers"])["x-forwarded-for"]
    assert forwarded_for.endswith("127.0.0.1")
    traceparents = [v for n, v in seen["headers"] if n == "traceparent"]
    assert len(traceparents) <= 1


@FUZZ
@given(host=st.sampled_from([HOST, HOST.upper(), f"{HOST}:8080", "echo.default.svc.cluster.local"]),
       target=path_segments, chunks=bodies, via_route=st.booleans())
async def test_requests_for_the_service_reach_it(app: Ingress, host: str, target: str, chunks: list[bytes],
                                                 via_route: bool) -> None:
    """A request for the service's host, by Host header or by the route form, is served, body intact."""
    raw = (ROUTE_PREFIX + host + "/" + target) if via_route else "/" + target
    headers = [] if via_route else [(b"host", host.encode())]
    call = Call({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": unquote(raw), "raw_path": raw.encode(), "query_string": b"",
                 "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080)},
                chunks, disconnect=False)
    sent = await run_app(app, call)
    size = sum(map(len, chunks))
    assert sent[0]["status"] == (200 if size <= BODY_LIMIT else 413), sent
    if size <= BODY_LIMIT:
        seen = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
        assert bytes.fromhex(seen["body"]) == b"".join(chunks)
        assert dict(seen["headers"])["host"] == host
        assert seen["raw_path"] == "/" + target if via_route else raw


# -- level 2: raw bytes to a running daemon ---------------------------------------------------------------

FUNCTION = """
async def handle(request):
    body = await request.body()
    return {"method": request.method, "length": len(body)}
"""


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_daemon(tmp_path / "state", body_limit=BODY_LIMIT) as h:
        h.apply(service("echo", write_function(tmp_path / "fn", FUNCTION), annotations={
            "autoscaling.knative.dev/min-scale": "1"}))
        await h.ready("echo")
        yield h


@dataclass
class RawRequest:
    data: bytes
    method: str
    well_formed: bool  # a valid HTTP/1.1 request for the service, which must be served
    body: bytes


def _chunked(body: bytes, sizes: list[int], extension: bool, trailer: bool) -> bytes:
    out, rest = b"", body
    for size in [*sizes, len(body)]:
        piece, rest = rest[:max(size, 1)], rest[max(size, 1):]
        if piece:
            out += b"%x%s\r\n%s\r\n" % (len(piece), b";ext=1" if extension else b"", piece)
        if not rest:
            break
    return out + b"0\r\n" + (b"x-trailer: yes\r\n" if trailer else b"") + b"\r\n"


_ODD_PARTS = ["method", "target", "version", "header", "host", "framing"]
_BAD_LINES = [b"bad header", b"x:\x00y", b" folded: line", b"x y: z", b"x:\ry", b"connection: close",
              b"upgrade: h2c\r\nconnection: upgrade", b"upgrade: websocket\r\nconnection: upgrade",
              b"content-length: 1\r\ncontent-length: 2", b"host: a\r\nhost: b"]


@st.composite
def raw_requests(draw: st.DrawFn) -> RawRequest:
    """A request for the service, with none, one or a few of its parts made odd (so that each odd part is
    met on its own, not always behind an odd method that the parser refuses first)."""
    odd = draw(st.sets(st.sampled_from(_ODD_PARTS), max_size=2))
    method = draw(methods) if "method" in odd else draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
    if "target" in odd:
        target = draw(raw_targets) + (("?" + q) if (q := draw(queries)) else "")
    else:  # escapes kept literal, so that the path stays valid
        target = draw(st.one_of(path_segments.map(lambda p: "/" + p.replace("%", "%25")),
                                path_segments.map(lambda p: f"{ROUTE_PREFIX}{HOST}/" + p.replace("%", "%25"))))
    version = draw(st.sampled_from(["HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "HTP/1", "HTTP/1.11"])) \
        if "version" in odd else "HTTP/1.1"
    lines = [f"{method} {target} {version}".encode("latin-1")]
    pairs = [(n, v) for n, v in draw(header_pairs) if n not in ("host", "connection", "upgrade")]
    lines += [f"{n}: {v}".encode("latin-1") for n, v in pairs]
    if "host" not in odd:
        lines.append(b"host: " + HOST.encode())
    elif draw(st.booleans()):
        lines.append(b"host: " + draw(host_values).encode("latin-1"))
    if "header" in odd:
        lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(_BAD_LINES)))
    body = b"".join(draw(bodies)) if method in ("POST", "PUT", "PATCH") else b""
    framing = "both" if "framing" in odd else draw(st.sampled_from(["length", "chunked"]))
    if framing == "length" or not body:
        lines.append(b"content-length: %d" % len(body))
        payload = body
    else:
        sizes = draw(st.lists(st.integers(1, 600), max_size=4))
        payload = _chunked(body, sizes, draw(st.booleans()), draw(st.booleans()))
        lines.append(b"transfer-encoding: chunked")
        if framing == "both":
            lines.append(b"content-length: %d" % len(payload))
    data = b"\r\n".join(lines) + b"\r\n\r\n" + payload
    return RawRequest(data, method, not odd, body)


@FUZZ
@given(req=raw_requests(), pieces=st.integers(1, 4))
async def test_daemon_answers_raw_requests(daemon: Harness, req: RawRequest, pieces: int) -> None:
    port = daemon.daemon.network.port
    step = -(-len(req.data) // pieces)
    chunks = [req.data[i:i + step] for i in range(0, len(req.data), step)]
    done = await exchange(port, chunks, head_only=req.method == "HEAD", timeout=EXCHANGE_TIMEOUT)
    assert not done.invalid
    assert done.responses, f"no answer to {req.data[:300]!r}"
    status = done.responses[0].status
    assert status != 500 and 200 <= status < 600, (status, req.data[:300])
    if req.well_formed:
        size = len(req.body)
        assert status == (200 if size <= BODY_LIMIT else 413), (status, done.responses[0].body, req.data[:300])
        if status == 200:
            assert json.loads(done.responses[0].body) == {"method": req.method, "length": size}
