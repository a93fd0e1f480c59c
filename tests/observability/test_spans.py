from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from wisp.observability.spans import Span, SpanStore


def span(trace: int, sid: int, start: int, service: str = "svc", parent: int | None = None, **kw: object) -> Span:
    return Span(trace_id=f"{trace:032x}", span_id=f"{sid:016x}",
                parent_span_id=None if parent is None else f"{parent:016x}",
                name=f"op{sid}", service=service, start_ns=start, end_ns=start + 1_000_000, **kw)  # type: ignore[arg-type]


def test_groups_spans_into_traces_ordered_by_start() -> None:
    store = SpanStore()
    store.add([span(1, 12, 300, parent=11), span(2, 21, 200), span(1, 11, 100)])
    trace = store.trace(f"{1:032x}")
    assert trace is not None
    assert [s.span_id for s in trace.spans] == [f"{11:016x}", f"{12:016x}"]
    assert trace.root.span_id == f"{11:016x}"
    assert trace.start_ns == 100 and trace.end_ns == 300 + 1_000_000
    assert store.trace(f"{3:032x}") is None
    assert store.trace(f"{1:032X}") is not None  # ids are matched case-insensitively


def test_traces_newest_first_with_limit_and_service_filter() -> None:
    store = SpanStore()
    store.add([span(1, 1, 100, "a"), span(2, 2, 300, "b"), span(3, 3, 200, "a")])
    store.add([span(2, 4, 310, "a", parent=2)])  # trace 2 touches both services
    assert [t.trace_id[-1] for t in store.traces()] == ["2", "3", "1"]
    assert [t.trace_id[-1] for t in store.traces(limit=2)] == ["2", "3"]
    assert [t.trace_id[-1] for t in store.traces("a")] == ["2", "3", "1"]
    assert [t.trace_id[-1] for t in store.traces("b")] == ["2"]
    assert store.traces("nobody") == []
    assert store.traces(limit=0) == []
    assert store.services() == ["a", "b"]


def test_bounded_ring_evicts_oldest_spans_and_empty_traces() -> None:
    store = SpanStore(capacity=3)
    store.add([span(1, 1, 100, "a"), span(2, 2, 200, "b"), span(1, 3, 50, "c", parent=1)])
    store.add([span(3, 4, 400, "a")])  # evicts span 1: trace 1 keeps span 3, its start moves to 50 still
    assert len(store) == 3 and store.evicted == 1 and store.added == 4
    t1 = store.trace(f"{1:032x}")
    assert t1 is not None and [s.span_id[-1] for s in t1.spans] == ["3"]
    assert store.traces("a")[0].trace_id[-1] == "3"
    assert [t.trace_id[-1] for t in store.traces("a")] == ["3"]  # trace 1 no longer has a span of "a"
    store.add([span(4, 5, 500), span(4, 6, 600)])  # evicts span 2 (trace 2 vanishes) and span 3
    assert store.trace(f"{2:032x}") is None and store.trace(f"{1:032x}") is None
    assert [t.trace_id[-1] for t in store.traces()] == ["4", "3"]
    assert store.services() == ["a", "svc"]


def test_eviction_recomputes_trace_start() -> None:
    store = SpanStore(capacity=2)
    store.add([span(1, 1, 100), span(1, 2, 900, parent=1)])
    store.add([span(2, 3, 500)])
    assert [t.trace_id[-1] for t in store.traces()] == ["1", "2"]  # trace 1 now starts at 900


def test_listeners_see_each_batch() -> None:
    store = SpanStore()
    seen: list[Sequence[Span]] = []
    store.add_listener(seen.append)
    store.add(s for s in [span(1, 1, 1)])
    store.remove_listener(seen.append)
    store.add([span(1, 2, 2)])
    assert [len(b) for b in seen] == [1]


def test_json_output_is_serialisable() -> None:
    store = SpanStore()
    store.add([span(1, 1, 1_000_000, attributes={"http.status_code": 200, "list": [1, "x"]}, kind="SERVER"),
               span(1, 2, 2_000_000, "db", parent=1, status_code="ERROR", status_message="boom")])
    [trace] = store.traces()
    out = json.loads(json.dumps(trace.to_json()))
    assert out["traceId"] == f"{1:032x}"
    assert out["rootName"] == "op1" and out["rootService"] == "svc"
    assert out["services"] == ["db", "svc"] and out["spanCount"] == 2 and out["errorCount"] == 1
    assert out["durationMs"] == 2.0
    first, second = out["spans"]
    assert first["attributes"] == {"http.status_code": 200, "list": [1, "x"]}
    assert first["parentSpanId"] is None and second["parentSpanId"] == f"{1:016x}"
    assert second["status"] == {"code": "ERROR", "message": "boom"}
    assert "spans" not in trace.to_json(include_spans=False)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SpanStore(capacity=0)
