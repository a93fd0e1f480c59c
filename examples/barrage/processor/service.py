"""The processing service's ASGI app: CloudEvent in, validated and styled row committed, then 200."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import barrage_tracing
from barrage_table import ResultTable
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from processor.processing import Rejected, banned_pattern, parse_http_event, parse_message, to_row
from processor.writer import BatchWriter

Clock = Callable[[], float]


@dataclass(frozen=True)
class ProcessorSettings:
    table_url: str = ""
    table_name: str = "barrage"
    banned_words: tuple[str, ...] = ()
    lanes: int = 8
    write_batch: int = 500
    receiver_span: str = "receiver"
    result_span: str = "result"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProcessorSettings:
        return cls(
            table_url=env.get("TABLE_URL", ""),
            table_name=env.get("TABLE_NAME") or "barrage",
            banned_words=tuple(w for w in env.get("BANNED_WORDS", "").split(",") if w.strip()),
            lanes=max(1, int(env.get("LANES") or 8)),
            write_batch=max(1, int(env.get("WRITE_BATCH") or 500)),
            receiver_span=env.get("TRACE_NAME2") or "receiver",
            result_span=env.get("TRACE_NAME3") or "result",
        )


def _incoming_traceparent(headers: Mapping[str, str]) -> dict[str, str]:
    """The nearest parent: the HTTP hop's `traceparent`, else the CloudEvent's distributed-tracing
    extension, else the Kafka record header the KafkaSource turned into an extension."""
    for name in ("traceparent", "ce-traceparent", "ce-kafkaheadertraceparent"):
        if headers.get(name):
            carrier = {"traceparent": headers[name]}
            state = headers.get(name.replace("traceparent", "tracestate"))
            if state:
                carrier["tracestate"] = state
            return carrier
    return {}


def create_app(
    settings: ProcessorSettings,
    table: ResultTable,
    tracer: trace.Tracer,
    clock: Clock = time.time,
    on_shutdown: Callable[[], None] | None = None,
) -> Starlette:
    """The ASGI app; it starts and stops `table` with its lifespan."""
    pattern = banned_pattern(settings.banned_words)
    writer = BatchWriter(table, settings.write_batch)

    async def receive_event(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        context = barrage_tracing.extract(_incoming_traceparent(headers))
        with tracer.start_as_current_span(settings.receiver_span, context=context, kind=trace.SpanKind.SERVER) as span:
            try:
                event = parse_http_event(headers, await request.body())
                message = parse_message(event)
            except Rejected as rejected:
                span.set_attribute("barrage.rejected", rejected.reason)
                return JSONResponse({"error": rejected.reason}, status_code=rejected.status)
            span.set_attribute("messaging.message.id", message.id)
            row = to_row(message, pattern, settings.lanes, clock())
            with tracer.start_as_current_span(settings.result_span) as result_span:
                result_span.set_attribute("db.sql.table", settings.table_name)
                try:
                    await writer.write(row)
                except Exception as exc:  # 5xx: the source retries, the id keeps it idempotent
                    result_span.record_exception(exc)
                    return JSONResponse({"error": f"table write failed: {exc}"}, status_code=503)
            return JSONResponse({"id": row.id, "lane": row.lane, "color": row.color, "speed": row.speed})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await table.start()
        await writer.start()
        try:
            yield
        finally:
            await writer.stop()
            await table.stop()
            if on_shutdown is not None:
                on_shutdown()

    app = Starlette(
        routes=[Route("/", receive_event, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )
    app.state.writer = writer
    return app
