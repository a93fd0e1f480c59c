"""Tracing for the barrage apps: an OpenTelemetry provider and W3C `traceparent` helpers.

Spans always get real ids, so `traceparent` flows through Kafka and CloudEvents and the platform's own
spans join the same trace. They are exported (OTLP/HTTP) only when an endpoint is configured:
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, else the
seed's `TRACING` when it is an http(s) URL. Otherwise recording costs a little and nothing leaves.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def otlp_traces_endpoint(env: Mapping[str, str]) -> str | None:
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    tracing = env.get("TRACING", "")
    if tracing.startswith(("http://", "https://")):
        return tracing
    return None


def make_tracer_provider(env: Mapping[str, str], default_service: str) -> TracerProvider:
    """A provider for one app; the caller shuts it down (that flushes the exporter)."""
    service = env.get("OTEL_SERVICE_NAME") or env.get("K_SERVICE") or default_service
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    endpoint = otlp_traces_endpoint(env)
    if endpoint:
        # Imported only when used: the exporter pulls in protobuf and requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def extract(carrier: Mapping[str, str]) -> Context:
    """The context named by a `traceparent` (and `tracestate`) in `carrier`; empty if none or invalid."""
    return _PROPAGATOR.extract(dict(carrier))


def traceparent(span: trace.Span) -> str | None:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
