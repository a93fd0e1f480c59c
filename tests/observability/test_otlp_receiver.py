"""The OTLP/HTTP receiver against the real opentelemetry-sdk exporter, over real HTTP."""

from __future__ import annotations

import asyncio
import gzip
import json

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.observability.servers import collector_app, serve
from wisp.observability.export import Tracer
from wisp.observability.otlp_receiver import rpc_status
from wisp.observability.spans import SpanStore
from wisp.observability.traceparent import start_or_continue

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _emit_with_sdk(exporter: OTLPSpanExporter, service: str, traceparent: str | None) -> None:
    """What an instrumented app does: spans end, the SDK's exporter posts them (synchronously, in a thread)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("barrage.test")
    carrier = {"traceparent": traceparent} if traceparent else {}
    context = TraceContextTextMapPropagator().extract(carrier)
    with (tracer.start_as_current_span("GET /", context=context, kind=SpanKind.SERVER,
                                       attributes={"http.status_code": 200, "retries": [1, 2], "ok": True}),
          tracer.start_as_current_span("send-barrage", kind=SpanKind.PRODUCER) as child):
        child.set_status(Status(StatusCode.ERROR, "kafka down"))
    provider.shutdown()


async def test_sdk_exporter_spans_group_into_one_trace_with_the_ingress_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    store = SpanStore()
    async with serve(collector_app(store)) as url:
        # The barrage apps' configuration: the control API's base URL, the exporter appends /v1/traces.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        exporter = OTLPSpanExporter()
        # The ingress continues the caller's trace and hands the instance its own hop's traceparent.
        ingress_ctx, parent = start_or_continue(f"00-{TRACE}-00f067aa0ba902b7-01")
        Tracer(store).record_span(ingress_ctx.trace_id, ingress_ctx.span_id, parent, "ingress", "wisp",
                                  1, 2, {"wisp.revision": "homepage-00001", "http.status_code": 200})
        await asyncio.to_thread(_emit_with_sdk, exporter, "homepage", ingress_ctx.header())

        async with httpx.AsyncClient(base_url=url) as client:
            listed = (await client.get("/traces", params={"service": "homepage"})).json()
            one = (await client.get(f"/traces/{TRACE}")).json()
            missing = await client.get(f"/traces/{'1' * 32}")

    [trace] = listed["items"]
    assert trace["traceId"] == TRACE and one["traceId"] == TRACE
    assert trace["services"] == ["homepage", "wisp"] and trace["spanCount"] == 3
    assert trace["rootName"] == "ingress" and trace["errorCount"] == 1
    by_name = {s["name"]: s for s in one["spans"]}
    assert by_name["GET /"]["parentSpanId"] == ingress_ctx.span_id
    assert by_name["GET /"]["kind"] == "SERVER" and by_name["GET /"]["scope"] == "barrage.test"
    assert by_name["GET /"]["attributes"] == {"http.status_code": 200, "retries": [1, 2], "ok": True}
    assert by_name["send-barrage"]["parentSpanId"] == by_name["GET /"]["spanId"]
    assert by_name["send-barrage"]["kind"] == "PRODUCER"
    assert by_name["send-barrage"]["status"] == {"code": "ERROR", "message": "kafka down"}
    assert by_name["GET /"]["startTimeUnixNano"] <= by_name["send-barrage"]["startTimeUnixNano"]
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"


async def test_sdk_exporter_with_gzip_and_a_new_trace() -> None:
    store = SpanStore()
    async with serve(collector_app(store)) as url:
        from opentelemetry.exporter.otlp.proto.http import Compression

        exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=Compression.Gzip)
        await asyncio.to_thread(_emit_with_sdk, exporter, "processor", None)
    [trace] = store.traces("processor")
    assert len(trace.spans) == 2
    assert trace.root.name == "GET /" and trace.root.parent_span_id is None


def _json_request(spans: list[dict[str, object]]) -> dict[str, object]:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-app"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": spans}],
    }]}


async def test_otlp_json_with_partial_success() -> None:
    store = SpanStore()
    good = {
        "traceId": TRACE.upper(), "spanId": "00F067AA0BA902B7", "name": "handle", "kind": 2,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000500000000",
        "attributes": [{"key": "n", "value": {"intValue": "42"}}, {"key": "d", "value": {"doubleValue": 0.5}},
                       {"key": "kv", "value": {"kvlistValue": {"values": [
                           {"key": "x", "value": {"boolValue": True}}]}}}],
        "status": {"code": "STATUS_CODE_OK"},
    }
    child = {"traceId": TRACE, "spanId": "1111111111111111", "parentSpanId": "00f067aa0ba902b7",
             "name": "child", "kind": "SPAN_KIND_CLIENT", "startTimeUnixNano": 1700000000100000000,
             "endTimeUnixNano": 1700000000200000000}
    bad = {"traceId": "abc", "spanId": "1111111111111111", "name": "broken"}
    async with serve(collector_app(store)) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/v1/traces", json=_json_request([good, child, bad]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "broken" in partial["errorMessage"]
    trace = store.trace(TRACE)
    assert trace is not None
    root, kid = trace.spans
    assert (root.span_id, root.kind, root.status_code, root.service, root.scope) == (
        "00f067aa0ba902b7", "SERVER", "OK", "js-app", "manual")
    assert root.attributes == {"n": 42, "d": 0.5, "kv": {"x": True}}
    assert root.duration_ns == 500_000_000
    assert (kid.parent_span_id, kid.kind) == ("00f067aa0ba902b7", "CLIENT")


async def test_protobuf_success_body_and_errors() -> None:
    store = SpanStore()
    async with serve(collector_app(store)) as url, httpx.AsyncClient(base_url=url) as client:
        empty = await client.post("/v1/traces", content=b"", headers={"content-type": "application/x-protobuf"})
        garbage = await client.post("/v1/traces", content=b"\xff\xff\xff",
                                    headers={"content-type": "application/x-protobuf"})
        text = await client.post("/v1/traces", content=b"hi", headers={"content-type": "text/plain"})
        bad_json = await client.post("/v1/traces", content=b"{", headers={"content-type": "application/json"})
        wrong_shape = await client.post("/v1/traces", json={"resourceSpans": [1]})
        gz = await client.post("/v1/traces", content=gzip.compress(json.dumps(_json_request([])).encode()),
                               headers={"content-type": "application/json", "content-encoding": "gzip"})
        get = await client.get("/v1/traces")
        bad_limit = await client.get("/traces", params={"limit": "many"})
    assert empty.status_code == 200 and empty.headers["content-type"] == "application/x-protobuf"
    parsed = ExportTraceServiceResponse()
    parsed.ParseFromString(empty.content)
    assert not parsed.HasField("partial_success")
    assert garbage.status_code == 400 and garbage.headers["content-type"] == "application/x-protobuf"
    assert text.status_code == 415
    assert bad_json.status_code == 400 and wrong_shape.status_code == 400
    assert gz.status_code == 200 and gz.json() == {}
    assert get.status_code == 405
    assert bad_limit.status_code == 400
    assert len(store) == 0


def test_rpc_status_encoding_is_protobuf() -> None:
    from google.rpc.status_pb2 import Status as RpcStatus

    parsed = RpcStatus()
    parsed.ParseFromString(rpc_status(3, "é" * 100))  # a message longer than one varint byte
    assert (parsed.code, parsed.message) == (3, "é" * 100)
