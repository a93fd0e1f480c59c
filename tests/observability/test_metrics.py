from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from wisp.observability.metrics import Metrics, RevisionState, SourceState, code_class
from wisp.observability.spans import Span, SpanStore


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    payload, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(payload.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def rev(name: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"namespace": "default", "revision": name, **extra}.items()))


def src(kind: str, name: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"source_kind": kind, "namespace": "default", "name": name}.items()))


def test_request_counters_and_latency_histogram() -> None:
    metrics = Metrics(CollectorRegistry())
    key = ("default", "hello-00001")
    for status, seconds in [(200, 0.004), (201, 0.02), (503, 0.3), (404, 0.001), (499, 2.0)]:
        metrics.request_done(key, status, seconds)
    got = samples(metrics)
    assert got[("wisp_requests_total", rev("hello-00001", response_code_class="2xx"))] == 2
    assert got[("wisp_requests_total", rev("hello-00001", response_code_class="4xx"))] == 2
    assert got[("wisp_requests_total", rev("hello-00001", response_code_class="5xx"))] == 1
    assert got[("wisp_request_duration_seconds_count", rev("hello-00001"))] == 5
    assert got[("wisp_request_duration_seconds_bucket", rev("hello-00001", le="0.005"))] == 2
    assert got[("wisp_request_duration_seconds_bucket", rev("hello-00001", le="+Inf"))] == 5
    assert abs(got[("wisp_request_duration_seconds_sum", rev("hello-00001"))] - 2.325) < 1e-9


def test_state_is_read_through_callbacks_at_scrape_time() -> None:
    revisions = [RevisionState("default", "hello-00001", desired=3, actual=2, in_flight=7, queued=1)]
    sources = [SourceState("KafkaSource", "default", "barrage", delivered=10, retried=4, dead_lettered=1,
                           dropped=2, lag=42),
               SourceState("Trigger", "default", "on-order", delivered=5)]
    store = SpanStore(capacity=1)
    metrics = Metrics(CollectorRegistry(), revisions=lambda: revisions, sources=lambda: sources, spans=store)
    store.add([Span("1" * 32, "1" * 16, None, "a", "s", 1, 2), Span("1" * 32, "2" * 16, None, "b", "s", 1, 2)])
    got = samples(metrics)
    assert got[("wisp_revision_desired_instances", rev("hello-00001"))] == 3
    assert got[("wisp_revision_actual_instances", rev("hello-00001"))] == 2
    assert got[("wisp_revision_requests_in_flight", rev("hello-00001"))] == 7
    assert got[("wisp_revision_requests_queued", rev("hello-00001"))] == 1
    assert got[("wisp_events_delivered_total", src("KafkaSource", "barrage"))] == 10
    assert got[("wisp_events_retried_total", src("KafkaSource", "barrage"))] == 4
    assert got[("wisp_events_dead_lettered_total", src("KafkaSource", "barrage"))] == 1
    assert got[("wisp_events_dropped_total", src("KafkaSource", "barrage"))] == 2
    assert got[("wisp_source_consumer_lag", src("KafkaSource", "barrage"))] == 42
    assert got[("wisp_events_delivered_total", src("Trigger", "on-order"))] == 5
    assert ("wisp_source_consumer_lag", src("Trigger", "on-order")) not in got  # no lag for a trigger
    assert got[("wisp_spans_stored", ())] == 1
    assert got[("wisp_spans_added_total", ())] == 2 and got[("wisp_spans_evicted_total", ())] == 1
    revisions[0] = RevisionState("default", "hello-00001", desired=0, actual=0)  # scaled to zero
    assert samples(metrics)[("wisp_revision_desired_instances", rev("hello-00001"))] == 0


def test_pushed_state_and_forgetting() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.set_scale("default", "a-00001", desired=2, actual=1)
    metrics.set_source_counters("PingSource", "default", "tick", delivered=3, retried=1)
    metrics.request_done(("default", "a-00001"), 200, 0.01)
    got = samples(metrics)
    assert got[("wisp_revision_desired_instances", rev("a-00001"))] == 2
    assert got[("wisp_events_delivered_total", src("PingSource", "tick"))] == 3
    metrics.forget_revision("default", "a-00001")
    metrics.forget_source("PingSource", "default", "tick")
    gone = samples(metrics)
    assert not any(labels and dict(labels).get("revision") == "a-00001" for _, labels in gone)
    assert ("wisp_events_delivered_total", src("PingSource", "tick")) not in gone
    metrics.request_done(("default", "a-00001"), 200, 0.01)  # a revision that comes back counts afresh
    assert samples(metrics)[("wisp_requests_total", rev("a-00001", response_code_class="2xx"))] == 1


def test_a_failing_callback_does_not_break_the_scrape() -> None:
    def broken() -> list[RevisionState]:
        raise RuntimeError("dataplane is stopping")

    metrics = Metrics(CollectorRegistry(), revisions=broken)
    metrics.request_done(("default", "x-00001"), 200, 0.01)
    assert samples(metrics)[("wisp_requests_total", rev("x-00001", response_code_class="2xx"))] == 1


def test_registering_does_not_call_callbacks_and_registries_are_separate() -> None:
    calls: list[str] = []
    Metrics(CollectorRegistry(), revisions=lambda: calls.append("x") or [])  # type: ignore[func-returns-value]
    assert calls == []
    Metrics(CollectorRegistry())  # a second instance on its own registry does not clash


def test_code_class() -> None:
    assert [code_class(s) for s in (100, 200, 204, 302, 404, 499, 500, 599, 0, 600)] == [
        "1xx", "2xx", "2xx", "3xx", "4xx", "4xx", "5xx", "5xx", "5xx", "5xx"]
