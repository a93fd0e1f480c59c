"""The HomePage's ASGI app: the page, `POST /api/send`, `GET /api/stats`, `GET /api/results`.

Nothing connects at import or construction: a function-class revision imports this module in a
template process and forks instances from it, and a fork must not inherit threads or sockets. The
producer, table and tracer provider start on first use (and are stopped by the ASGI lifespan).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import barrage_tracing
from barrage_table import ResultTable, open_table
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from homepage.sender import Clock, Invalid, Producer, SendRun, validate
from homepage.settings import HomeSettings

PAGE_FILE = Path(__file__).resolve().parent / "page.html"
PROGRESS_INTERVAL_S = 0.25
KEEP_RUNS = 64
MAX_RESULTS = 1000


class Resources:
    """Lazily started clients of one instance, stopped together."""

    def __init__(
        self,
        settings: HomeSettings,
        env: Mapping[str, str],
        producer_factory: Callable[[HomeSettings], Awaitable[Any]] | None = None,
        table_factory: Callable[[HomeSettings], ResultTable] | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._settings = settings
        self._env = env
        self._producer_factory = producer_factory or start_kafka_producer
        self._table_factory = table_factory or (lambda s: open_table(s.table_url, s.table_name, env))
        self._provider = tracer_provider
        self._own_provider = tracer_provider is None
        self._producer: Any = None
        self._table: ResultTable | None = None
        self._lock = asyncio.Lock()

    def tracer(self) -> trace.Tracer:
        if self._provider is None:
            self._provider = barrage_tracing.make_tracer_provider(self._env, "demo-barrage")
        return self._provider.get_tracer("barrage.homepage")

    async def producer(self) -> Producer:
        async with self._lock:
            if self._producer is None:
                self._producer = await self._producer_factory(self._settings)
            return self._producer  # type: ignore[no-any-return]

    async def table(self) -> ResultTable:
        async with self._lock:
            if self._table is None:
                table = self._table_factory(self._settings)
                await table.start()
                self._table = table
            return self._table

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None
            if self._table is not None:
                await self._table.stop()
                self._table = None
            if self._provider is not None and self._own_provider:
                self._provider.shutdown()
                self._provider = None


async def start_kafka_producer(settings: HomeSettings) -> Any:
    from aiokafka import AIOKafkaProducer

    options: dict[str, Any] = {}
    if settings.kafka_user:
        options = {
            "security_protocol": settings.kafka_security_protocol,
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": settings.kafka_user,
            "sasl_plain_password": settings.kafka_password,
        }
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_server,
        client_id="demo-barrage",
        acks=1,
        linger_ms=settings.linger_ms,  # a short wait fills batches: one request carries hundreds of records
        max_batch_size=256 * 1024,
        **options,
    )
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer") from None


def create_app(
    settings: HomeSettings,
    env: Mapping[str, str] | None = None,
    *,
    clock: Clock = time.time,
    producer_factory: Callable[[HomeSettings], Awaitable[Any]] | None = None,
    table_factory: Callable[[HomeSettings], ResultTable] | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    resources = Resources(settings, env or {}, producer_factory, table_factory, tracer_provider)
    runs: OrderedDict[str, SendRun] = OrderedDict()  # this instance's recent Sends, for /api/stats
    page = PAGE_FILE.read_text(encoding="utf-8").replace("__LANES__", str(settings.lanes))

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def send(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        try:
            send_request = validate(body, settings.send_rate)
        except Invalid as invalid:
            return JSONResponse({"error": str(invalid)}, status_code=400)
        try:
            producer = await resources.producer()
        except Exception as exc:
            return JSONResponse({"error": f"Kafka is unavailable: {exc}"}, status_code=503)
        context = barrage_tracing.extract({k.lower(): v for k, v in request.headers.items()})
        run = SendRun(
            send_request,
            producer,
            settings.kafka_topic,
            resources.tracer(),
            parent_span=settings.parent_span,
            sender_span=settings.sender_span,
            clock=clock,
            context=context,
        )
        runs[run.id] = run
        while len(runs) > KEEP_RUNS:
            runs.popitem(last=False)
        run.start()

        async def progress() -> AsyncIterator[bytes]:
            # The response lasts as long as the Send: the instance counts as busy to the autoscaler
            # and is not scaled away mid-barrage; a client that leaves cancels the Send.
            try:
                yield (
                    json.dumps(
                        run.progress() | {"concurrency": send_request.concurrency, "duration": send_request.duration}
                    )
                    + "\n"
                ).encode()
                while not run.finished.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(run.finished.wait(), PROGRESS_INTERVAL_S)
                    yield (json.dumps(run.progress()) + "\n").encode()
            finally:
                if not run.finished.is_set():
                    run.cancel()
                    await run.wait()

        return StreamingResponse(progress(), media_type="application/x-ndjson")

    async def stats(request: Request) -> Response:
        run_id = request.query_params.get("run")
        table = await resources.table()
        if run_id:
            known = runs.get(run_id)
            result: dict[str, Any] = {"run": run_id, "processed": await table.count(run_id)}
            if known is not None:  # another instance's Send: its stream has the sent count
                result |= {"sent": known.sent, "failed": known.failed, "done": known.finished.is_set()}
            return JSONResponse(result)
        return JSONResponse({"processed": await table.count(), "cursor": await table.last_cursor()})

    async def results(request: Request) -> Response:
        try:
            after = _int_param(request, "after", None)
            limit = min(MAX_RESULTS, max(1, _int_param(request, "limit", 200) or 200))
        except Invalid as invalid:
            return JSONResponse({"error": str(invalid)}, status_code=400)
        table = await resources.table()
        if after is None:  # a new reader starts at the end: the stage shows what happens from now on
            return JSONResponse({"rows": [], "next": await table.last_cursor()})
        rows = await table.read_after(after, limit)
        return JSONResponse({"rows": [r.to_json() for r in rows], "next": rows[-1].seq if rows else after})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for run in runs.values():
                run.cancel()
            await asyncio.gather(*(run.wait() for run in runs.values()))
            await resources.stop()

    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/index.html", index, methods=["GET"]),
            Route("/api/send", send, methods=["POST"]),
            Route("/api/stats", stats, methods=["GET"]),
            Route("/api/results", results, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
