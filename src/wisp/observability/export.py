"""The daemon's own spans (`Tracer`) and forwarding of stored spans to an external OTLP collector (`OtlpExporter`).

The exporter listens to the SpanStore: `add` only appends to a bounded queue, and a background task posts
batches, so neither the request path nor the OTLP receiver ever waits on the collector. When the queue is
full the oldest spans are dropped (and counted) rather than growing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from wisp.observability.otlp_codec import encode_protobuf
from wisp.observability.spans import Span, SpanStore

log = logging.getLogger("wisp.observability")

DAEMON_SERVICE = "wisp"
_RETRYABLE = frozenset({429, 502, 503, 504})


class Tracer:
    """Records the daemon's own hops (ingress, kafka-source, delivery) as finished spans in the store.

    One call per hop, after it finished; ids come from `wisp.observability.traceparent`.
    """

    def __init__(self, store: SpanStore, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.now_ns = now_ns  # wall-clock ns for start/end timestamps (OTLP uses Unix epoch ns)

    def record_span(
        self,
        trace_id: str,
        span_id: str,
        parent_id: str | None,
        name: str,
        service: str,
        start_ns: int,
        end_ns: int,
        attributes: dict[str, Any] | None = None,
        *,
        kind: str = "SERVER",
        error: str | None = None,
    ) -> None:
        """`error` set marks the span's status ERROR with that message (e.g. a 5xx, a dead-lettered event)."""
        # Positional, and one span straight into the store: this runs for every sampled request.
        self.store.add_one(Span(
            trace_id, span_id, parent_id, name, service, start_ns, end_ns, kind,
            attributes if attributes is not None else {},
            "UNSET" if error is None else "ERROR", error or "", "wisp",
        ))

    def record_request(self, trace_id: str, span_id: str, parent_id: str | None, start_ns: int, end_ns: int,
                       namespace: str, revision: str, host: str, status: int, method: str) -> None:
        """The ingress's span for one request (`ingress`, SERVER, ERROR for a 5xx), made only when the store is
        read or exported: on the request path it costs one tuple (architecture.md, Tracing)."""
        self.store.add_deferred(_request_span, (trace_id, span_id, parent_id, start_ns, end_ns, namespace, revision,
                                                host, status, method))


def _request_span(trace_id: str, span_id: str, parent_id: str | None, start_ns: int, end_ns: int, namespace: str,
                  revision: str, host: str, status: int, method: str) -> Span:
    return Span(trace_id, span_id, parent_id, "ingress", DAEMON_SERVICE, start_ns, end_ns, "SERVER",
                {"wisp.namespace": namespace, "wisp.revision": revision, "http.host": host,
                 "http.status_code": status, "http.method": method},
                "ERROR" if status >= 500 else "UNSET", f"HTTP {status}" if status >= 500 else "", "wisp")


class OtlpExporter:
    """Posts every span added to `store` to an OTLP/HTTP collector as protobuf, in batches, in the background.

    `url` is the full traces URL (`http://collector:4318/v1/traces`). `start()` subscribes and launches the
    sender; `stop()` unsubscribes, sends what is queued (bounded by `stop_timeout`) and closes the client.
    `encode` and `content_type` make it post another format (Zipkin v2 JSON for config-tracing's zipkin).
    """

    def __init__(
        self,
        store: SpanStore,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        batch_size: int = 512,
        interval: float = 1.0,
        max_queue: int = 20_000,
        timeout: float = 10.0,
        retries: int = 2,
        stop_timeout: float = 5.0,
        encode: Callable[[list[Span]], bytes] = encode_protobuf,
        content_type: str = "application/x-protobuf",
    ) -> None:
        self.store = store
        self.url = url
        self.encode = encode
        self.headers = {"content-type": content_type, **(headers or {})}
        self.batch_size = batch_size
        self.interval = interval
        self.timeout = timeout
        self.retries = retries
        self.stop_timeout = stop_timeout
        self._queue: deque[Span] = deque()
        self._max_queue = max_queue
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._client: httpx.AsyncClient | None = None
        self.exported = 0
        self.dropped = 0  # queue overflow or the collector refused them for good
        self.failed_requests = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _on_spans(self, spans: Sequence[Span]) -> None:
        self._queue.extend(spans)
        overflow = len(self._queue) - self._max_queue
        for _ in range(max(0, overflow)):
            self._queue.popleft()
        if overflow > 0:
            self.dropped += overflow
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping = False
        self._client = httpx.AsyncClient(timeout=self.timeout)
        self.store.add_listener(self._on_spans)
        self._task = asyncio.create_task(self._run(), name="otlp-exporter")

    async def stop(self) -> None:
        if self._task is None:
            return
        self.store.remove_listener(self._on_spans)
        self._stopping = True
        self._wake.set()
        try:  # the sender sends what is queued, then ends
            await asyncio.wait_for(asyncio.shield(self._task), self.stop_timeout)
        except TimeoutError:
            log.warning("otlp export: %d spans not sent before shutdown", len(self._queue))
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def flush(self) -> None:
        """Send everything queued now; returns when the collector answered (or the batch was given up)."""
        async with self._send_lock:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
                await self._send(batch)

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self._flush_logged()
        await self._flush_logged()  # stop() was called: send what is left

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception:  # never let one bad batch end exporting
            log.exception("otlp export failed")

    async def _send(self, batch: list[Span]) -> None:
        assert self._client is not None, "OtlpExporter.start() was not called"
        payload = self.encode(batch)
        for attempt in range(self.retries + 1):
            try:
                response = await self._client.post(self.url, content=payload, headers=self.headers)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    self.exported += len(batch)
                    return
                reason = f"HTTP {response.status_code}"
                if response.status_code not in _RETRYABLE:
                    break
            self.failed_requests += 1
            if attempt < self.retries:
                await asyncio.sleep(0.5 * 2**attempt)  # backoff between tries, not synchronisation
        self.dropped += len(batch)
        log.warning("otlp export to %s: %d spans dropped (%s)", self.url, len(batch), reason)


def _parse_headers(raw: str) -> dict[str, str]:
    # OTEL_EXPORTER_OTLP_HEADERS: "k1=v1,k2=v2", values percent-encoded.
    out: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            out[key.strip().lower()] = unquote(value.strip())
    return out


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = "127.0.0.1" if host == "localhost" else host
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, host, port


def exporter_from_env(
    store: SpanStore, environ: Mapping[str, str], self_urls: Iterable[str] = ()
) -> OtlpExporter | None:
    """An exporter per the standard OTEL_* variables, or None when export is not configured.

    Honours OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) or OTEL_EXPORTER_OTLP_ENDPOINT (+ "/v1/traces"),
    the matching *_HEADERS, OTEL_TRACES_EXPORTER=none and OTEL_SDK_DISABLED. An endpoint that is the daemon's
    own control API (`self_urls`) is skipped: its spans are in the store already, and exporting would loop.
    """
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true" or environ.get("OTEL_TRACES_EXPORTER") == "none":
        return None
    url = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if not url:
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        if not base:
            return None
        url = base.rstrip("/") + "/v1/traces"
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol != "http/protobuf":
        log.warning("OTLP protocol %r is not supported; wisp exports traces over http/protobuf to %s", protocol, url)
    if any(_origin(url) == _origin(own) for own in self_urls):
        log.info("OTEL_EXPORTER_OTLP_ENDPOINT is wisp's own control API; spans stay in its store")
        return None
    headers = _parse_headers(environ.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
    headers.update(_parse_headers(environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "")))
    return OtlpExporter(store, url, headers)
