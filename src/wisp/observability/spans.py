"""The span store: finished OpenTelemetry-shaped spans in memory, bounded, grouped into traces for the console."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CAPACITY = 50_000
UNKNOWN_SERVICE = "unknown_service"

KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")  # OTLP enum order
STATUS_CODES = ("UNSET", "OK", "ERROR")  # OTLP enum order

SpanListener = Callable[[Sequence["Span"]], None]
SpanMaker = Callable[..., "Span"]


@dataclass(slots=True)
class Span:
    """A finished span. Ids are lowercase hex; attribute values are JSON-safe (str, int, float, bool, lists, dicts)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    start_ns: int
    end_ns: int
    kind: str = "INTERNAL"
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: str = "UNSET"
    status_message: str = ""
    scope: str = ""

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    def to_json(self) -> dict[str, Any]:
        return {
            "traceId": self.trace_id, "spanId": self.span_id, "parentSpanId": self.parent_span_id,
            "name": self.name, "service": self.service, "kind": self.kind, "scope": self.scope,
            "startTimeUnixNano": self.start_ns, "endTimeUnixNano": self.end_ns,
            "durationMs": round(self.duration_ns / 1e6, 3),
            "attributes": self.attributes,
            "status": {"code": self.status_code, "message": self.status_message},
        }


@dataclass(frozen=True)
class Trace:
    """The spans of one trace that the store still holds, ordered by start time."""

    trace_id: str
    spans: tuple[Span, ...]

    @property
    def start_ns(self) -> int:
        return min(s.start_ns for s in self.spans)

    @property
    def end_ns(self) -> int:
        return max(s.end_ns for s in self.spans)

    @property
    def services(self) -> list[str]:
        return sorted({s.service for s in self.spans})

    @property
    def root(self) -> Span:
        """The span without a parent in this trace, or the earliest one while the root has not arrived."""
        ids = {s.span_id for s in self.spans}
        roots = [s for s in self.spans if s.parent_span_id is None or s.parent_span_id not in ids]
        return roots[0] if roots else self.spans[0]

    def to_json(self, include_spans: bool = True) -> dict[str, Any]:
        root = self.root
        out: dict[str, Any] = {
            "traceId": self.trace_id, "rootName": root.name, "rootService": root.service,
            "services": self.services, "spanCount": len(self.spans),
            "errorCount": sum(1 for s in self.spans if s.status_code == "ERROR"),
            "startTimeUnixNano": self.start_ns, "durationMs": round((self.end_ns - self.start_ns) / 1e6, 3),
        }
        if include_spans:
            out["spans"] = [s.to_json() for s in self.spans]
        return out


class _Entry:
    __slots__ = ("_first_start_ns", "services", "spans", "stale")

    def __init__(self, first: Span) -> None:
        self.spans: deque[Span] = deque()
        self._first_start_ns = first.start_ns
        self.stale = False  # the earliest span was evicted: recompute on the next read, not on the hot path
        self.services: dict[str, int] = {}  # service -> span count, so eviction keeps it exact

    @property
    def first_start_ns(self) -> int:
        if self.stale:
            self._first_start_ns = min(s.start_ns for s in self.spans)
            self.stale = False
        return self._first_start_ns

    def added(self, span: Span) -> None:
        self.spans.append(span)
        if span.start_ns < self._first_start_ns:
            self._first_start_ns = span.start_ns
        self.services[span.service] = self.services.get(span.service, 0) + 1


class SpanStore:
    """The last `capacity` spans, oldest evicted first, indexed by trace.

    Not thread-safe: call it from the event loop (the OTLP receiver and the daemon's tracer both do).
    Listeners (the OTLP exporter) see every batch added.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._ring: deque[Span] = deque()
        self._traces: dict[str, _Entry] = {}
        self._listeners: list[SpanListener] = []
        self._added = 0  # total ever added, for metrics
        self._evicted = 0
        # Spans recorded with `add_deferred` and not made yet: (maker, its arguments), newest last.
        self._pending: deque[tuple[SpanMaker, tuple[Any, ...]]] = deque(maxlen=capacity)
        self._overrun = 0  # pending ones pushed out by newer ones before they were made (added and evicted)

    def __len__(self) -> int:
        self._drain()
        return len(self._ring)

    # Counted without making the pending spans: a metrics scrape must not undo what add_deferred saves.
    @property
    def added(self) -> int:
        return self._added + self._overrun + len(self._pending)

    @property
    def evicted(self) -> int:
        pushed_out = max(0, len(self._ring) + len(self._pending) - self.capacity)  # what draining would evict
        return self._evicted + self._overrun + pushed_out

    def add_listener(self, listener: SpanListener) -> None:
        self._drain()  # what was recorded before it listened is not its to see
        self._listeners.append(listener)

    def remove_listener(self, listener: SpanListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add(self, spans: Iterable[Span]) -> None:
        batch = spans if isinstance(spans, list | tuple) else list(spans)
        for span in batch:
            self._insert(span)
        for listener in self._listeners:
            listener(batch)

    def add_one(self, span: Span) -> None:
        """`add` for one span, without the batch's list (the daemon's own hops record one at a time)."""
        self._insert(span)
        if self._listeners:
            batch = (span,)
            for listener in self._listeners:
                listener(batch)

    def add_deferred(self, make: SpanMaker, args: tuple[Any, ...]) -> None:
        """Record a span to be made by `make(*args)` only when the store is read (or at once if a listener,
        an exporter, wants every span as it comes). The request path records its spans this way: most are
        evicted unread, and then they cost one tuple instead of a Span and an index entry each."""
        if self._listeners:
            self.add_one(make(*args))
            return
        pending = self._pending
        if len(pending) == self.capacity:
            self._overrun += 1
        pending.append((make, args))

    def _drain(self) -> None:
        pending = self._pending
        if pending:
            spans = [make(*args) for make, args in pending]
            pending.clear()
            self._added += self._overrun
            self._evicted += self._overrun
            self._overrun = 0
            self.add(spans)

    def _insert(self, span: Span) -> None:
        if len(self._ring) >= self.capacity:
            self._evict(self._ring.popleft())
        self._ring.append(span)
        entry = self._traces.get(span.trace_id)
        if entry is None:
            entry = self._traces[span.trace_id] = _Entry(span)
        entry.added(span)
        self._added += 1

    def _evict(self, span: Span) -> None:
        self._evicted += 1
        entry = self._traces[span.trace_id]
        # The ring is in insertion order and so is each trace's deque: the evicted span is its oldest.
        entry.spans.popleft()
        if not entry.spans:
            del self._traces[span.trace_id]
            return
        left = entry.services[span.service] - 1
        if left:
            entry.services[span.service] = left
        else:
            del entry.services[span.service]
        if not entry.stale and span.start_ns <= entry.first_start_ns:
            entry.stale = True

    def trace(self, trace_id: str) -> Trace | None:
        self._drain()
        entry = self._traces.get(trace_id.lower())
        return None if entry is None else _trace(trace_id.lower(), entry)

    def traces(self, service: str | None = None, limit: int = 20) -> list[Trace]:
        """The newest traces first (by their earliest span's start); with `service`, those that touch it."""
        self._drain()
        if limit <= 0:
            return []
        candidates = ((tid, e) for tid, e in self._traces.items() if service is None or service in e.services)
        newest = heapq.nlargest(limit, candidates, key=lambda item: item[1].first_start_ns)
        return [_trace(tid, entry) for tid, entry in newest]

    def services(self) -> list[str]:
        self._drain()
        names: set[str] = set()
        for entry in self._traces.values():
            names.update(entry.services)
        return sorted(names)


def _trace(trace_id: str, entry: _Entry) -> Trace:
    return Trace(trace_id, tuple(sorted(entry.spans, key=lambda s: s.start_ns)))
