"""Everything observability in one object the daemon builds once: span store, tracer, metrics, OTLP export.

Only wiring: each part lives in its own module and can be used on its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry
from starlette.routing import Route

from wisp.observability.export import OtlpExporter, Tracer, exporter_from_env
from wisp.observability.metrics import Metrics, RevisionStates, SourceStates
from wisp.observability.otlp_receiver import otlp_routes
from wisp.observability.spans import DEFAULT_CAPACITY, SpanStore
from wisp.observability.trace_api import trace_routes
from wisp.observability.tracing_config import Sampler, TracingConfig
from wisp.observability.zipkin import encode_zipkin

log = logging.getLogger("wisp.observability")


class Observability:
    """`environ` is the daemon's environment (OTEL_* decides export); `self_urls` its control API URLs, so
    an endpoint pointing back at the daemon is not exported to. `start()`/`stop()` run the exporter."""

    def __init__(
        self,
        environ: Mapping[str, str],
        self_urls: Iterable[str] = (),
        *,
        revisions: RevisionStates | None = None,
        sources: SourceStates | None = None,
        capacity: int = DEFAULT_CAPACITY,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.spans = SpanStore(capacity)
        self.tracer = Tracer(self.spans, now_ns)
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry, revisions=revisions, sources=sources, spans=self.spans)
        self.exporter: OtlpExporter | None = exporter_from_env(self.spans, environ, self_urls)
        # config-tracing: the ingress's sampler for requests without a trace, and its backend's exporter.
        self.sampler = Sampler(0.0)
        self.tracing = TracingConfig(sample_rate=0.0)
        self.tracing_exporter: OtlpExporter | None = None
        self._started = False

    def routes(self) -> list[Route]:
        """`POST /v1/traces`, `GET /traces`, `GET /traces/{trace_id}` for the control API."""
        return [*otlp_routes(self.spans), *trace_routes(self.spans)]

    async def start(self) -> None:
        self._started = True
        for exporter in (self.exporter, self.tracing_exporter):
            if exporter is not None:
                await exporter.start()

    async def stop(self) -> None:
        self._started = False
        for exporter in (self.exporter, self.tracing_exporter):
            if exporter is not None:
                await exporter.stop()

    async def configure_tracing(self, config: TracingConfig | None) -> None:
        """Apply `config-tracing` (None: the ConfigMap is absent, so no trace is started and none exported
        beyond OTEL_*). Requests after this call are sampled at the new rate; the old backend's exporter
        sends what it has queued before the new one starts."""
        config = config if config is not None else TracingConfig(sample_rate=0.0)
        self.sampler.set_rate(config.effective_rate)
        if config == self.tracing:
            return
        old, self.tracing = self.tracing_exporter, config
        self.tracing_exporter = None
        if old is not None:
            await old.stop()
        url = config.export_url
        if url:
            if config.backend == "zipkin":
                self.tracing_exporter = OtlpExporter(self.spans, url, encode=encode_zipkin,
                                                     content_type="application/json")
            else:
                self.tracing_exporter = OtlpExporter(self.spans, url)
            if self._started:
                await self.tracing_exporter.start()
        log.info("tracing: backend %s, sample rate %g%s", config.backend, config.effective_rate,
                 f", exporting to {url}" if url else "")
