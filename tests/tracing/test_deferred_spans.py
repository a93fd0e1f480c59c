"""Spans recorded on the request path are made only when the store is read: same results, counted alike."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from wisp.observability.export import Tracer
from wisp.observability.spans import Span, SpanStore


def record(tracer: Tracer, i: int, status: int = 200) -> None:
    tracer.record_request(f"{i + 1:032x}", f"{i + 1:016x}", None, 1_000 * i, 1_000 * i + 10, "default",
                          "r-00001", "r.default.localhost", status, "GET")


def test_deferred_spans_read_like_any_other() -> None:
    store = SpanStore(capacity=3)
    tracer = Tracer(store)
    for i in range(5):
        record(tracer, i, status=502 if i == 4 else 200)
    assert len(store) == 3 and store.added == 5 and store.evicted == 2  # the two oldest, as with add()
    assert store.trace(f"{1:032x}") is None
    trace = store.trace(f"{5:032x}")
    assert trace is not None
    [span] = trace.spans
    assert (span.name, span.service, span.kind, span.parent_span_id) == ("ingress", "wisp", "SERVER", None)
    assert span.attributes == {"wisp.namespace": "default", "wisp.revision": "r-00001",
                               "http.host": "r.default.localhost", "http.status_code": 502, "http.method": "GET"}
    assert (span.status_code, span.status_message) == ("ERROR", "HTTP 502")
    assert [t.trace_id for t in store.traces()] == [f"{i:032x}" for i in (5, 4, 3)]
    assert store.services() == ["wisp"]


def test_more_pending_than_capacity_keeps_the_newest() -> None:
    store = SpanStore(capacity=4)
    tracer = Tracer(store)
    record(tracer, 0)
    assert len(store) == 1  # made on read
    for i in range(1, 11):
        record(tracer, i)
    assert len(store) == 4 and store.added == 11 and store.evicted == 7
    assert [t.trace_id for t in store.traces(limit=10)] == [f"{i:032x}" for i in (11, 10, 9, 8)]


def test_a_listener_gets_each_span_as_it_comes() -> None:
    store = SpanStore()
    tracer = Tracer(store)
    record(tracer, 0)  # before anyone listens: not the listener's
    seen: list[Span] = []

    def listener(batch: Sequence[Span]) -> None:
        seen.extend(batch)

    store.add_listener(listener)
    record(tracer, 1)
    assert [s.trace_id for s in seen] == [f"{2:032x}"]
    assert len(store) == 2


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 6), steps=st.lists(st.sampled_from(["deferred", "now", "read"]), max_size=40))
def test_counts_read_without_making_the_pending_spans(capacity: int, steps: list[str]) -> None:
    # A metrics scrape reads added/evicted; it must see what a drain would give without draining.
    store = SpanStore(capacity=capacity)
    tracer = Tracer(store)
    for i, step in enumerate(steps):
        if step == "deferred":
            record(tracer, i)
        elif step == "now":
            store.add([Span(f"{i + 1:032x}", f"{i + 1:016x}", None, "hop", "svc", i, i + 1)])
        else:
            assert len(store) <= capacity  # drains
    counted = (store.added, store.evicted)
    len(store)  # drain
    assert (store.added, store.evicted) == counted
