from __future__ import annotations

import httpx
from starlette.applications import Starlette

from tests.observability.servers import serve
from wisp.observability.hub import Observability
from wisp.observability.metrics import RevisionState
from wisp.observability.traceparent import start_or_continue, traceparent_of


async def test_hub_wires_store_tracer_metrics_and_export() -> None:
    collector = Observability({})
    assert collector.exporter is None  # no OTEL_* set: spans stay local
    async with serve(Starlette(routes=collector.routes())) as collector_url:
        daemon = Observability({"OTEL_EXPORTER_OTLP_ENDPOINT": collector_url}, ["http://127.0.0.1:8001"],
                               revisions=lambda: [RevisionState("default", "hello-00001", 1, 1)],
                               now_ns=lambda: 1_000)
        await daemon.start()
        headers = [(b"host", b"hello.default.localhost"),
                   (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
        ctx, parent = start_or_continue(traceparent_of(headers))
        daemon.tracer.record_span(ctx.trace_id, ctx.span_id, parent, "ingress", "wisp", daemon.tracer.now_ns(),
                                  daemon.tracer.now_ns() + 10, {"wisp.revision": "hello-00001"})
        daemon.metrics.request_done(("default", "hello-00001"), 200, 0.01)
        await daemon.stop()
        async with httpx.AsyncClient(base_url=collector_url) as client:
            trace = (await client.get(f"/traces/{ctx.trace_id}")).json()
    assert [s["name"] for s in trace["spans"]] == ["ingress"]
    assert trace["spans"][0]["parentSpanId"] == "00f067aa0ba902b7"
    text = daemon.metrics.render()[0].decode()
    assert 'wisp_requests_total{namespace="default",response_code_class="2xx",revision="hello-00001"} 1.0' in text
    assert 'wisp_revision_actual_instances{namespace="default",revision="hello-00001"} 1.0' in text
    assert "wisp_spans_stored 1.0" in text
    assert traceparent_of([(b"host", b"x")]) is None
