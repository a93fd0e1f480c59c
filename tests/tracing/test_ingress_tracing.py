"""config-tracing in a real daemon: the ingress starts traces at the sample rate, the activator's wait is a span,
and a zipkin backend receives the spans."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.observability.servers import serve
from tests.serving.harness import Harness, running_daemon, service, write_function
from wisp.api import kinds as k
from wisp.types import Resource

TRACE_ECHO = """
def handle(request):
    return {"traceparent": request.headers.get("traceparent")}
"""
HOST = "echo.default.localhost"


def config_tracing(**data: str) -> Resource:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "config-tracing", "namespace": "knative-serving"}, "data": data}


async def apply_tracing(h: Harness, **data: str) -> None:
    h.apply(config_tracing(**data))
    assert h.daemon.tracing_watch is not None
    await h.daemon.tracing_watch.settled()


async def trace(h: Harness, trace_id: str) -> dict[str, Any]:
    reply = await h.client.get(f"{h.api}/traces/{trace_id}")
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def test_sample_rate_1_starts_a_trace_rooted_at_the_ingress(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", TRACE_ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("echo", code))
        await h.ready("echo")
        assert (await h.request(HOST)).json()["traceparent"] is None  # no config-tracing: none started
        await apply_tracing(h, backend="otlp", **{"sample-rate": "1"})
        seen = (await h.request(HOST)).json()["traceparent"]
        version, trace_id, span_id, flags = seen.split("-")
        assert (version, flags) == ("00", "01")
        spans = (await trace(h, trace_id))["spans"]
        [root] = [s for s in spans if s["parentSpanId"] is None]
        assert (root["name"], root["spanId"], root["service"]) == ("ingress", span_id, "wisp")
        assert root["attributes"]["wisp.revision"] == "echo-00001"
        assert root["attributes"]["http.status_code"] == 200
        # An invalid traceparent is no trace to continue: a new one is started, as for none.
        bad = "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"  # uppercase: invalid
        seen = (await h.request(HOST, headers={"traceparent": bad})).json()["traceparent"]
        new_trace = seen.split("-")[1]
        assert new_trace != "0af7651916cd43dd8448eb211c80319c"
        [root] = (await trace(h, new_trace))["spans"]
        assert root["parentSpanId"] is None


async def test_sample_rate_0_and_backend_none_start_no_trace(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", TRACE_ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("echo", code))
        await h.ready("echo")
        for data in ({"backend": "otlp", "sample-rate": "0"}, {"backend": "none", "sample-rate": "1"}):
            await apply_tracing(h, **data)
            stored = len(h.daemon.obs.spans) if h.daemon.obs else -1
            for _ in range(20):
                assert (await h.request(HOST)).json()["traceparent"] is None
            assert h.daemon.obs is not None and len(h.daemon.obs.spans) == stored
        # A trace the request brings is still continued and kept, whatever the sample rate.
        incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        seen = (await h.request(HOST, headers={"traceparent": incoming})).json()["traceparent"]
        assert seen.split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
        [span] = (await trace(h, "0af7651916cd43dd8448eb211c80319c"))["spans"]
        assert span["parentSpanId"] == "b7ad6b7169203331"


async def test_the_activator_wait_is_a_span_of_the_trace(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", TRACE_ECHO)
    autoscaler = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
                  "data": {"allow-zero-initial-scale": "true"}}
    async with running_daemon(tmp_path / "state") as h:
        h.apply(autoscaler, service("echo", code, annotations={"autoscaling.knative.dev/initial-scale": "0"}))
        await h.ready("echo")
        await apply_tracing(h, backend="otlp", **{"sample-rate": "1"})
        seen = (await h.request(HOST)).json()["traceparent"]
        _, trace_id, span_id, _ = seen.split("-")
        spans = {s["name"]: s for s in (await trace(h, trace_id))["spans"]}
        wait = spans["throttler_try"]
        assert wait["parentSpanId"] == span_id == spans["ingress"]["spanId"]
        assert wait["attributes"]["wisp.cold_start"] is True
        assert wait["durationMs"] > 0


async def test_zipkin_backend_receives_the_ingress_spans(tmp_path: Path) -> None:
    received: list[list[dict[str, Any]]] = []
    arrived = asyncio.Event()

    async def spans(request: Request) -> Response:
        received.append(json.loads(await request.body()))
        arrived.set()
        return Response(status_code=202)

    code = write_function(tmp_path / "fn", TRACE_ECHO)
    async with serve(Starlette(routes=[Route("/api/v2/spans", spans, methods=["POST"])])) as zipkin, \
            running_daemon(tmp_path / "state") as h:
        h.apply(service("echo", code))
        await h.ready("echo")
        await apply_tracing(h, backend="zipkin", **{"zipkin-endpoint": f"{zipkin}/api/v2/spans", "sample-rate": "1"})
        trace_id = (await h.request(HOST)).json()["traceparent"].split("-")[1]
        await asyncio.wait_for(arrived.wait(), 10)  # the exporter posts within its 1 s interval
        [span] = [s for batch in received for s in batch if s["traceId"] == trace_id]
        assert span["name"] == "ingress" and span["kind"] == "SERVER" and "parentId" not in span
        assert span["localEndpoint"] == {"serviceName": "wisp"}
        assert span["tags"]["http.status_code"] == "200"


async def test_config_observability_tracing_keys_start_traces_too(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", TRACE_ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("echo", code))
        await h.ready("echo")
        h.apply({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "config-observability", "namespace": "knative-serving"},
                 "data": {"tracing-protocol": "stdout", "tracing-sampling-rate": "1"}})
        assert h.daemon.tracing_watch is not None
        await h.daemon.tracing_watch.settled()
        trace_id = (await h.request(HOST)).json()["traceparent"].split("-")[1]
        [root] = (await trace(h, trace_id))["spans"]
        assert root["name"] == "ingress" and root["parentSpanId"] is None
        # config-observability wins over config-tracing; deleted, config-tracing decides again.
        await apply_tracing(h, backend="none")
        assert (await h.request(HOST)).json()["traceparent"] is not None
        h.daemon.store.delete(k.CONFIG_MAP, "knative-serving", "config-observability")
        await h.daemon.tracing_watch.settled()
        assert (await h.request(HOST)).json()["traceparent"] is None
