"""Everything observability in one object the daemon builds once: span store, tracer, metrics, OTLP export.

Only wiring: each part lives in its own module and can be used on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry
from starlette.routing import Route

from wisp.observability.export import OtlpExporter, Tracer, exporter_from_env
from wisp.observability.metrics import Metrics, RevisionStates, SourceStates
from wisp.observability.otlp_receiver import otlp_routes
from wisp.observability.spans import DEFAULT_CAPACITY, SpanStore
from wisp.observability.trace_api import trace_routes


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

    def routes(self) -> list[Route]:
        """`POST /v1/traces`, `GET /traces`, `GET /traces/{trace_id}` for the control API."""
        return [*otlp_routes(self.spans), *trace_routes(self.spans)]

    async def start(self) -> None:
        if self.exporter is not None:
            await self.exporter.start()

    async def stop(self) -> None:
        if self.exporter is not None:
            await self.exporter.stop()
