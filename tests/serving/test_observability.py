"""Metrics and traces as the daemon exposes them."""

from __future__ import annotations

from pathlib import Path

from tests.serving.harness import running_daemon, service, write_function

HELLO = """
def handle(request):
    return "hi"
"""


async def test_metrics_count_requests_per_revision(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", HELLO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("counted", code))
        await h.ready("counted")
        for _ in range(3):
            assert (await h.request("counted.default.localhost")).status_code == 200
        text = (await h.client.get(f"{h.api}/metrics")).text
        assert 'wisp_requests_total{namespace="default",response_code_class="2xx",revision="counted-00001"} 3.0' \
            in text, text
        assert 'wisp_revision_actual_instances{namespace="default",revision="counted-00001"} 1.0' in text


async def test_instances_are_told_where_to_send_spans(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", """
import os
def handle(request):
    return os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] + " " + os.environ["OTEL_SERVICE_NAME"]
""")
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("traced", code))
        await h.ready("traced")
        endpoint, name = (await h.request("traced.default.localhost")).text.split()
        assert endpoint == h.api
        assert name == "traced"


TRACE_ECHO = """
def handle(request):
    return {"traceparent": request.headers.get("traceparent"), "path": request.url.path,
            "host": request.headers.get("host")}
"""


async def test_ingress_continues_the_trace_and_records_its_hop(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", TRACE_ECHO)
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("hop", code))
        await h.ready("hop")
        seen = (await h.request("hop.default.localhost", headers={"traceparent": incoming})).json()
        version, trace_id, span_id, flags = seen["traceparent"].split("-")
        assert (version, trace_id, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "01")
        assert span_id != "b7ad6b7169203331"  # the instance's parent is the ingress hop
        trace = (await h.client.get(f"{h.api}/traces/{trace_id}")).json()
        [span] = [s for s in trace["spans"] if s["name"] == "ingress"]
        assert span["spanId"] == span_id and span["parentSpanId"] == "b7ad6b7169203331"
        # A request without a traceparent is passed on without one: the instance's SDK starts the trace.
        assert (await h.request("hop.default.localhost")).json()["traceparent"] is None


async def test_route_path_form_reaches_a_host_without_a_host_header(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", TRACE_ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("routed", code))
        await h.ready("routed")
        reply = await h.client.get(f"{h.ingress}/.wisp/route/routed.default.svc.cluster.local/a/b?x=1")
        assert reply.status_code == 200
        assert reply.json()["path"] == "/a/b"
        assert reply.json()["host"] == "routed.default.svc.cluster.local"
