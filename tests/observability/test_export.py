"""Forwarding stored spans to an external OTLP collector (here: a second wisp receiver over real HTTP)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.observability.servers import collector_app, serve
from wisp.observability.export import OtlpExporter, Tracer, exporter_from_env
from wisp.observability.spans import Span, SpanStore

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _spans_arrived(store: SpanStore, count: int) -> asyncio.Event:
    arrived = asyncio.Event()

    def check(_: Sequence[Span]) -> None:
        if len(store) >= count:
            arrived.set()

    store.add_listener(check)
    return arrived


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1/traces"


async def test_daemon_spans_reach_the_collector_intact() -> None:
    local, collector = SpanStore(), SpanStore()
    tracer = Tracer(local, now_ns=lambda: 5_000)
    async with serve(collector_app(collector)) as url:
        exporter = OtlpExporter(local, f"{url}/v1/traces", interval=3600)
        await exporter.start()
        start = tracer.now_ns()
        tracer.record_span(TRACE, "00f067aa0ba902b7", None, "ingress", "wisp", start, start + 1_500,
                           {"wisp.revision": "hello-00001", "http.status_code": 503, "ratio": 0.5},
                           error="503 Service Unavailable")
        tracer.record_span(TRACE, "1111111111111111", "00f067aa0ba902b7", "delivery", "wisp", 6_000, 7_000,
                           {"attempts": 2}, kind="CLIENT")
        await exporter.flush()
        await exporter.stop()
    assert exporter.exported == 2 and exporter.dropped == 0
    remote, here = collector.trace(TRACE), local.trace(TRACE)
    assert remote is not None and here is not None
    assert [s.to_json() for s in remote.spans] == [s.to_json() for s in here.spans]
    ingress = remote.spans[0]
    assert (ingress.status_code, ingress.status_message, ingress.kind) == ("ERROR", "503 Service Unavailable", "SERVER")
    assert ingress.attributes == {"wisp.revision": "hello-00001", "http.status_code": 503, "ratio": 0.5}


async def test_a_full_batch_is_sent_without_waiting_for_the_interval() -> None:
    local, collector = SpanStore(), SpanStore()
    arrived = _spans_arrived(collector, 3)
    async with serve(collector_app(collector)) as url:
        exporter = OtlpExporter(local, f"{url}/v1/traces", batch_size=3, interval=3600)
        await exporter.start()
        local.add([Span(TRACE, f"{i:016x}", None, f"s{i}", "svc", i, i + 1) for i in range(1, 4)])
        await asyncio.wait_for(arrived.wait(), 30)
        await exporter.stop()
    assert {s.name for s in collector.trace(TRACE).spans} == {"s1", "s2", "s3"}  # type: ignore[union-attr]


async def test_stop_sends_what_is_queued_and_unsubscribes() -> None:
    local, collector = SpanStore(), SpanStore()
    async with serve(collector_app(collector)) as url:
        exporter = OtlpExporter(local, f"{url}/v1/traces", interval=3600)
        await exporter.start()
        local.add([Span(TRACE, "00f067aa0ba902b7", None, "last", "svc", 1, 2)])
        await exporter.stop()
        local.add([Span(TRACE, "1111111111111111", None, "after-stop", "svc", 3, 4)])
    assert len(collector) == 1 and exporter.queued == 0


async def test_unreachable_collector_drops_after_retries_and_full_queue_drops_oldest() -> None:
    local = SpanStore()
    exporter = OtlpExporter(local, _closed_port_url(), interval=3600, max_queue=3, retries=0, timeout=5)
    await exporter.start()
    local.add([Span(TRACE, f"{i:016x}", None, f"s{i}", "svc", i, i + 1) for i in range(1, 6)])
    assert exporter.queued == 3 and exporter.dropped == 2
    await exporter.flush()
    assert exporter.exported == 0 and exporter.dropped == 5 and exporter.failed_requests == 1
    await exporter.stop()


async def test_a_rejecting_collector_is_not_retried() -> None:
    hits: list[str] = []

    async def refuse(request: Request) -> Response:
        hits.append(request.headers.get("authorization", ""))
        return Response(b"", 400)

    local = SpanStore()
    async with serve(Starlette(routes=[Route("/v1/traces", refuse, methods=["POST"])])) as url:
        exporter = OtlpExporter(local, f"{url}/v1/traces", {"authorization": "Bearer t"}, interval=3600)
        await exporter.start()
        local.add([Span(TRACE, "00f067aa0ba902b7", None, "x", "svc", 1, 2)])
        await exporter.flush()
        await exporter.stop()
    assert hits == ["Bearer t"] and exporter.dropped == 1


def test_exporter_from_env() -> None:
    store = SpanStore()
    assert exporter_from_env(store, {}) is None
    plain = exporter_from_env(store, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318/",
                                      "OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b, X-Tenant = t1"})
    assert plain is not None and plain.url == "http://jaeger:4318/v1/traces"
    assert plain.headers["api-key"] == "a b" and plain.headers["x-tenant"] == "t1"
    exact = exporter_from_env(store, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318",
                                      "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://tempo/otlp/traces"})
    assert exact is not None and exact.url == "https://tempo/otlp/traces"
    assert exporter_from_env(store, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318",
                                     "OTEL_TRACES_EXPORTER": "none"}) is None
    assert exporter_from_env(store, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318",
                                     "OTEL_SDK_DISABLED": "true"}) is None
    # Pointing the daemon at itself would loop its own spans back into its store.
    assert exporter_from_env(store, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:8001"},
                             self_urls=["http://127.0.0.1:8001"]) is None
    assert exporter_from_env(store, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
                             self_urls=["http://127.0.0.1:8001"]) is not None
