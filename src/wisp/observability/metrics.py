"""Prometheus metrics for `GET /metrics`, on a registry the daemon owns.

The request path only increments a counter and observes a histogram, through label children cached per
revision. Everything else (instances, in-flight, queue, event-source counters and lag, the span store) is
read when Prometheus scrapes, by a collector that calls the daemon's callbacks; values pushed with
`set_scale` / `set_source_counters` are reported the same way for components that prefer to push.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from wisp.observability.spans import SpanStore

log = logging.getLogger("wisp.observability")

T = TypeVar("T")

# Request latency buckets (seconds): from a fast proxied hop to Knative's default 300 s request timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0)
_CODE_CLASS = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")


@dataclass(frozen=True, slots=True)
class RevisionState:
    namespace: str
    revision: str
    desired: int
    actual: int  # ready instances
    in_flight: int = 0
    queued: int = 0


@dataclass(frozen=True, slots=True)
class SourceState:
    """Cumulative counters of one event source or trigger (kind: KafkaSource, Trigger, PingSource, ...)."""

    kind: str
    namespace: str
    name: str
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    lag: int | None = None  # consumer lag in records; None where it does not apply


RevisionKey = tuple[str, str]
RevisionStates = Callable[[], Iterable[RevisionState]]
SourceStates = Callable[[], Iterable[SourceState]]


def code_class(status: int) -> str:
    """Knative's `response_code_class`: 2xx, 4xx, ...; anything outside 100-599 counts as 5xx."""
    index = status // 100
    return _CODE_CLASS[index] if 0 < index < len(_CODE_CLASS) else "5xx"


class Metrics:
    """All of wisp's metrics on one registry. `request_done` matches the ingress's RequestObserver."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        revisions: RevisionStates | None = None,
        sources: SourceStates | None = None,
        spans: SpanStore | None = None,
    ) -> None:
        self.registry = registry
        self._requests = Counter(
            "wisp_requests", "Requests proxied by the ingress, by revision and response code class.",
            ["namespace", "revision", "response_code_class"], registry=registry)
        self._latency = Histogram(
            "wisp_request_duration_seconds", "Time from the ingress receiving a request to the end of its response.",
            ["namespace", "revision"], buckets=LATENCY_BUCKETS, registry=registry)
        # Label children cached per key: prometheus_client's labels() validates and locks on every call.
        self._request_children: dict[tuple[str, str, str], Counter] = {}
        self._latency_children: dict[RevisionKey, Histogram] = {}
        self._state = _StateCollector(revisions, sources, spans)
        registry.register(self._state)

    # -- hot path ------------------------------------------------------------------------------------------
    def request_done(self, key: RevisionKey, status: int, seconds: float) -> None:
        klass = code_class(status)
        counter = self._request_children.get((key[0], key[1], klass))
        if counter is None:
            counter = self._request_children[(key[0], key[1], klass)] = self._requests.labels(key[0], key[1], klass)
        counter.inc()
        histogram = self._latency_children.get(key)
        if histogram is None:
            histogram = self._latency_children[key] = self._latency.labels(key[0], key[1])
        histogram.observe(seconds)

    # -- pushed state (for components without a callback) --------------------------------------------------
    def set_scale(self, namespace: str, revision: str, desired: int, actual: int, in_flight: int = 0,
                  queued: int = 0) -> None:
        self._state.pushed_revisions[(namespace, revision)] = RevisionState(
            namespace, revision, desired, actual, in_flight, queued)

    def set_source_counters(self, kind: str, namespace: str, name: str, *, delivered: int = 0, retried: int = 0,
                            dead_lettered: int = 0, dropped: int = 0, lag: int | None = None) -> None:
        """Cumulative totals (not increments) of one source, as its dispatcher counts them."""
        self._state.pushed_sources[(kind, namespace, name)] = SourceState(
            kind, namespace, name, delivered, retried, dead_lettered, dropped, lag)

    def forget_revision(self, namespace: str, revision: str) -> None:
        """Drop a deleted revision's series so /metrics does not grow forever."""
        self._state.pushed_revisions.pop((namespace, revision), None)
        for key in [k for k in self._request_children if k[:2] == (namespace, revision)]:
            del self._request_children[key]
            self._requests.remove(*key)
        if self._latency_children.pop((namespace, revision), None) is not None:
            self._latency.remove(namespace, revision)

    def forget_source(self, kind: str, namespace: str, name: str) -> None:
        self._state.pushed_sources.pop((kind, namespace, name), None)

    # -- exposition ----------------------------------------------------------------------------------------
    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of the registry and its content type, for `GET /metrics`."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_Family = GaugeMetricFamily | CounterMetricFamily


def _families() -> dict[str, _Family]:
    rev, src = ["namespace", "revision"], ["source_kind", "namespace", "name"]
    families: list[_Family] = [
        GaugeMetricFamily("wisp_revision_desired_instances", "Instances the autoscaler wants.", labels=rev),
        GaugeMetricFamily("wisp_revision_actual_instances", "Ready instances.", labels=rev),
        GaugeMetricFamily("wisp_revision_requests_in_flight", "Requests being served (the concurrency).",
                          labels=rev),
        GaugeMetricFamily("wisp_revision_requests_queued", "Requests waiting in the throttler.", labels=rev),
        CounterMetricFamily("wisp_events_delivered", "Events delivered to their sink (2xx).", labels=src),
        CounterMetricFamily("wisp_events_retried", "Delivery retries.", labels=src),
        CounterMetricFamily("wisp_events_dead_lettered", "Events handed to the dead-letter sink.", labels=src),
        CounterMetricFamily("wisp_events_dropped", "Events dropped after the retry budget without a dead-letter sink.",
                            labels=src),
        GaugeMetricFamily("wisp_source_consumer_lag", "Records not yet committed behind the partitions' high water.",
                          labels=src),
        GaugeMetricFamily("wisp_spans_stored", "Spans held in the span store."),
        CounterMetricFamily("wisp_spans_added", "Spans added to the span store."),
        CounterMetricFamily("wisp_spans_evicted", "Spans evicted from the full span store."),
    ]
    return {f.name: f for f in families}


class _StateCollector(Collector):
    def __init__(self, revisions: RevisionStates | None, sources: SourceStates | None, spans: SpanStore | None) -> None:
        self._revisions = revisions
        self._sources = sources
        self._spans = spans
        self.pushed_revisions: dict[RevisionKey, RevisionState] = {}
        self.pushed_sources: dict[tuple[str, str, str], SourceState] = {}

    def describe(self) -> Iterable[Metric]:
        # Names only, so registering does not call the daemon's callbacks before it is ready.
        return list(_families().values())

    def collect(self) -> Iterator[Metric]:
        f = _families()
        revisions = dict(self.pushed_revisions)
        for state in _call(self._revisions):
            revisions[(state.namespace, state.revision)] = state
        for state in revisions.values():
            labels = [state.namespace, state.revision]
            f["wisp_revision_desired_instances"].add_metric(labels, state.desired)
            f["wisp_revision_actual_instances"].add_metric(labels, state.actual)
            f["wisp_revision_requests_in_flight"].add_metric(labels, state.in_flight)
            f["wisp_revision_requests_queued"].add_metric(labels, state.queued)
        sources = dict(self.pushed_sources)
        for source in _call(self._sources):
            sources[(source.kind, source.namespace, source.name)] = source
        for source in sources.values():
            labels = [source.kind, source.namespace, source.name]
            f["wisp_events_delivered"].add_metric(labels, source.delivered)
            f["wisp_events_retried"].add_metric(labels, source.retried)
            f["wisp_events_dead_lettered"].add_metric(labels, source.dead_lettered)
            f["wisp_events_dropped"].add_metric(labels, source.dropped)
            if source.lag is not None:
                f["wisp_source_consumer_lag"].add_metric(labels, source.lag)
        if self._spans is not None:
            f["wisp_spans_stored"].add_metric([], len(self._spans))
            f["wisp_spans_added"].add_metric([], self._spans.added)
            f["wisp_spans_evicted"].add_metric([], self._spans.evicted)
        yield from f.values()


def _call(callback: Callable[[], Iterable[T]] | None) -> list[T]:
    if callback is None:
        return []
    try:
        return list(callback())
    except Exception:  # a failing callback must not take /metrics down with it
        log.exception("metrics callback failed")
        return []
