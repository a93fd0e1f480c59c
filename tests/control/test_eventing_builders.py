"""The pure eventing builders, table-driven: a KafkaSource's spec → the dispatcher's spec (the seed's comma
strings, Knative's default delivery, bad values refused), which bootstrap servers are this machine's Kafka,
sinks resolved at reconcile time, and the status and conditions each kind reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from wisp.api.errors import ManifestError
from wisp.control.conditions import Condition
from wisp.control.eventing import builders as b
from wisp.eventing.delivery import KAFKA_SOURCE_DEFAULT_DELIVERY, DeliveryCounters, DeliverySpec, Destination
from wisp.eventing.filters import compile_filter
from wisp.eventing.kafka_source import KafkaAuth
from wisp.eventing.trigger_dispatcher import TriggerConfig
from wisp.types import Resource

SINK = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "display"}}
DLS = {"uri": "http://dls.example/"}
SVC = Destination("http://127.0.0.1:8080/", host="display.default.svc.cluster.local")


def resource(kind: str, spec: dict[str, Any], annotations: dict[str, str] | None = None, generation: int = 3,
             ) -> Resource:
    meta: dict[str, Any] = {"name": "src", "namespace": "demo", "generation": generation}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "sources.knative.dev/v1", "kind": kind, "metadata": meta, "spec": spec}


def kafka_source(**spec: Any) -> Resource:
    return resource("KafkaSource", {"bootstrapServers": ["kafka:9092"], "topics": ["t"], "consumerGroup": "g",
                                    "sink": SINK, **spec})


@pytest.mark.parametrize(("value", "expected"), [
    (["a:1", "b:2"], ("a:1", "b:2")),
    ("a:1, b:2,", ("a:1", "b:2")),  # the seed's comma-separated string
    (" t ", ("t",)),
    ("", ()),
    (None, ()),
    ([" x ", ""], ("x",)),
])
def test_split_list(value: Any, expected: tuple[str, ...]) -> None:
    assert b.split_list(value) == expected


def test_kafka_source_spec_defaults() -> None:
    spec = b.kafka_source_spec(kafka_source(), KafkaAuth())
    assert (spec.namespace, spec.name, spec.bootstrap_servers, spec.topics, spec.consumer_group) == (
        "demo", "src", ("kafka:9092",), ("t",), "g")
    assert spec.sink == SINK
    assert (spec.ordering, spec.initial_offset, spec.consumers, dict(spec.ce_overrides)) == (
        "ordered", "latest", 1, {})
    assert spec.delivery == KAFKA_SOURCE_DEFAULT_DELIVERY  # Knative's default when delivery is absent
    assert spec.auth == KafkaAuth()


@pytest.mark.parametrize(("fields", "annotations", "check"), [
    ({"bootstrapServers": "k1:9092,k2:9092", "topics": "a,b"}, None,
     lambda s: s.bootstrap_servers == ("k1:9092", "k2:9092") and s.topics == ("a", "b")),
    ({"ordering": "unordered", "initialOffset": "earliest", "consumers": 3}, None,
     lambda s: (s.ordering, s.initial_offset, s.consumers) == ("unordered", "earliest", 3)),
    ({"consumers": 0}, None, lambda s: s.consumers == 1),  # 0 / null: the default
    ({"ceOverrides": {"extensions": {"team": "a"}}}, None, lambda s: dict(s.ce_overrides) == {"team": "a"}),
    ({"delivery": {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT1S", "deadLetterSink": DLS}}, None,
     lambda s: (s.delivery.retry, s.delivery.backoff_policy, s.delivery.backoff_delay, s.delivery.dead_letter_sink)
     == (2, "linear", 1.0, DLS)),
    ({}, {"k8s.aliyun.com/retry-count": "4", "k8s.aliyun.com/retry-interval": "2"},
     lambda s: (s.delivery.retry, s.delivery.backoff_policy, s.delivery.backoff_delay) == (4, "fixed", 2.0)),
])
def test_kafka_source_spec_fields(fields: dict[str, Any], annotations: dict[str, str] | None, check: Any) -> None:
    source = kafka_source(**fields)
    if annotations is not None:
        source["metadata"]["annotations"] = annotations
    assert check(b.kafka_source_spec(source, KafkaAuth()))


@pytest.mark.parametrize(("fields", "annotations", "error"), [
    ({"consumers": -1}, None, ValueError),
    ({"ceOverrides": {"extensions": {"Not-Valid": "x"}}}, None, ValueError),
    ({"delivery": {"backoffDelay": "soon"}}, None, ManifestError),
    ({}, {"k8s.aliyun.com/retry-count": "1.5"}, ManifestError),
])
def test_kafka_source_spec_refuses(fields: dict[str, Any], annotations: dict[str, str] | None,
                                   error: type[Exception]) -> None:
    source = kafka_source(**fields)
    if annotations is not None:
        source["metadata"]["annotations"] = annotations
    with pytest.raises(error):
        b.kafka_source_spec(source, KafkaAuth())


@pytest.mark.parametrize(("servers", "local"), [
    (("127.0.0.1:9092",), True),
    (("localhost:9092",), True),
    (("localhost",), True),
    (("kafka.example:9092", "127.0.0.1:9093"), True),
    (("kafka.example:9092",), False),
    (("127.0.0.2:9092",), False),
    ((), False),
])
def test_uses_local_kafka(servers: tuple[str, ...], local: bool) -> None:
    assert b.uses_local_kafka(servers) is local


def resolver(known: Mapping[str, Destination]) -> b.Resolve:
    def resolve(ref: Mapping[str, Any]) -> Destination | None:
        name = (ref.get("ref") or {}).get("name") or ref.get("uri")
        return known.get(str(name))

    return resolve


@pytest.mark.parametrize(("delivery", "known", "sink", "dead_letter"), [
    (None, {"display": SVC}, SVC, None),
    (None, {}, None, None),  # the sink does not exist yet
    ({"deadLetterSink": DLS}, {"display": SVC, DLS["uri"]: Destination(DLS["uri"])}, SVC, Destination(DLS["uri"])),
    ({"deadLetterSink": DLS}, {"display": SVC}, SVC, None),
    ({"deadLetterSink": DLS}, {DLS["uri"]: Destination(DLS["uri"])}, None, Destination(DLS["uri"])),
])
def test_sinks_are_resolved_at_reconcile_time(delivery: dict[str, Any] | None, known: dict[str, Destination],
                                              sink: Destination | None, dead_letter: Destination | None) -> None:
    spec = b.kafka_source_spec(kafka_source(**({"delivery": delivery} if delivery else {})), KafkaAuth())
    sinks = b.resolve_sinks(spec, resolver(known))
    assert (sinks.sink, sinks.dead_letter) == (sink, dead_letter)
    # The dispatcher asks the resolution for its spec's sink and dead-letter sink.
    assert sinks(spec.sink) == sink
    if spec.delivery.dead_letter_sink is not None:
        assert sinks(spec.delivery.dead_letter_sink) == dead_letter


def test_a_new_resolution_is_a_new_dispatcher_spec() -> None:
    """A sink that appears (or moves) changes what the dispatcher is built from, so it restarts with it."""
    spec = b.kafka_source_spec(kafka_source(), KafkaAuth())
    missing, found = b.resolve_sinks(spec, resolver({})), b.resolve_sinks(spec, resolver({"display": SVC}))
    assert (spec, missing) != (spec, found)
    assert (spec, found) == (spec, b.resolve_sinks(spec, resolver({"display": SVC})))


COUNTERS = DeliveryCounters(delivered=5, retried=2, dead_lettered=1, dropped=0)


@pytest.mark.parametrize(("sink_uri", "connection", "conditions"), [
    ("http://display.demo.svc.cluster.local", b.Connection(True, "", ""),
     [Condition.true("SinkProvided"), Condition.true("ConnectionEstablished")]),
    (None, b.CONNECTING,
     [Condition.false("SinkProvided", "SinkNotFound", "the sink does not exist yet"),
      Condition.false("ConnectionEstablished", "Connecting", "connecting to the Kafka cluster")]),
    ("http://display.demo.svc.cluster.local", b.Connection(False, "SinkNotResolved", "not yet"),
     [Condition.true("SinkProvided"), Condition.false("ConnectionEstablished", "SinkNotResolved", "not yet")]),
    ("http://x", b.Connection(False, "", "no reason given"),
     [Condition.true("SinkProvided"), Condition.false("ConnectionEstablished", "NotReady", "no reason given")]),
])
def test_kafka_source_status(sink_uri: str | None, connection: b.Connection, conditions: list[Condition]) -> None:
    status, got = b.kafka_source_status(kafka_source(), sink_uri, COUNTERS, 7, 2, connection)
    expected: dict[str, Any] = {"observedGeneration": 3}
    if sink_uri:
        expected["sinkUri"] = sink_uri
    expected["deliveryStats"] = {"delivered": 5, "retried": 2, "deadLettered": 1, "dropped": 0, "lag": 7}
    expected["consumers"] = 2
    assert status == expected
    assert got == conditions


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, {"observedGeneration": 3}),
    ({"sinkUri": "http://s"}, {"observedGeneration": 3, "sinkUri": "http://s"}),
])
def test_invalid_spec(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert b.invalid_spec(kafka_source(), "bad filter", **fields) == (
        expected, [Condition.false("Ready", "InvalidSpec", "bad filter")])


def test_broker_status() -> None:
    url = "http://broker-ingress.knative-eventing.localhost:8080/demo/default"
    status, conditions = b.broker_status(resource("Broker", {}), url)
    assert status == {"observedGeneration": 3, "address": {"url": url}, "url": url}
    assert [c.type for c in conditions] == ["Addressable", "IngressReady", "TriggerChannelReady", "FilterReady"]
    assert all(c.status == "True" for c in conditions)


def trigger(**spec: Any) -> Resource:
    return resource("Trigger", {"subscriber": SINK, **spec})


@pytest.mark.parametrize(("status", "expected"), [
    (b.trigger_broker_missing(trigger(broker="events")),
     ({"observedGeneration": 3},
      [Condition.false("BrokerReady", "BrokerDoesNotExist", 'Broker "events" does not exist')])),
    (b.trigger_broker_missing(trigger()),
     ({"observedGeneration": 3},
      [Condition.false("BrokerReady", "BrokerDoesNotExist", 'Broker "default" does not exist')])),
    (b.trigger_subscriber_missing(trigger()),
     ({"observedGeneration": 3},
      [Condition.true("BrokerReady"),
       Condition.false("SubscriberResolved", "Unable to get the Subscriber's URI",
                       "spec.subscriber: the subscriber does not exist yet")])),
    (b.trigger_ready(trigger(), "http://display.demo.svc.cluster.local"),
     ({"observedGeneration": 3, "subscriberUri": "http://display.demo.svc.cluster.local"},
      [Condition.true("BrokerReady"), Condition.true("SubscriberResolved"), Condition.true("DependencyReady")])),
])
def test_trigger_status(status: b.Status, expected: b.Status) -> None:
    assert status == expected


def _config(subscriber: Destination = SVC, delivery: DeliverySpec | None = None) -> TriggerConfig:
    return TriggerConfig(namespace="demo", name="src", broker="default", predicate=compile_filter({}),
                         subscriber=subscriber, delivery=delivery or DeliverySpec(), dead_letter=None)


@pytest.mark.parametrize(("before", "after", "restart"), [
    ((trigger(), _config(), False), (trigger(), _config(), False), False),
    ((trigger(), _config(), False), (trigger(), _config(), True), True),  # the broker's class changed
    ((trigger(), _config(), False), (trigger(), _config(Destination("http://elsewhere/")), False), True),
    ((trigger(), _config(), False), (trigger(), _config(delivery=DeliverySpec(retry=3)), False), True),
    ((trigger(), _config(), False), (trigger(filter={"attributes": {"type": "x"}}), _config(), False), True),
    ((trigger(), _config(), False), (trigger(filters=[{"exact": {"type": "x"}}]), _config(), False), True),
])
def test_trigger_wanted(before: tuple[Resource, TriggerConfig, bool], after: tuple[Resource, TriggerConfig, bool],
                        restart: bool) -> None:
    assert (b.trigger_wanted(*before) != b.trigger_wanted(*after)) is restart


def ping(**spec: Any) -> Resource:
    return resource("PingSource", {"schedule": "*/1 * * * *", "sink": SINK, **spec})


@pytest.mark.parametrize(("after", "destination", "delivery", "restart"), [
    (ping(), SVC, DeliverySpec(), False),
    (ping(schedule="*/2 * * * *"), SVC, DeliverySpec(), True),
    (ping(timezone="Europe/Paris"), SVC, DeliverySpec(), True),
    (ping(data="hi"), SVC, DeliverySpec(), True),
    (ping(dataBase64="aGk="), SVC, DeliverySpec(), True),
    (ping(contentType="text/plain"), SVC, DeliverySpec(), True),
    (ping(ceOverrides={"extensions": {"a": "b"}}), SVC, DeliverySpec(), True),
    (ping(), Destination("http://elsewhere/"), DeliverySpec(), True),
    (ping(), SVC, DeliverySpec(retry=1), True),
])
def test_ping_wanted(after: Resource, destination: Destination, delivery: DeliverySpec, restart: bool) -> None:
    before = b.ping_wanted(ping(), SVC, DeliverySpec())
    assert (before != b.ping_wanted(after, destination, delivery)) is restart


def test_ping_status() -> None:
    assert b.ping_sink_missing(ping()) == ({"observedGeneration": 3}, [
        Condition.false("SinkProvided", "NotFound", "spec.sink: the sink does not exist yet")])
    assert b.ping_deployed(ping(), "http://s") == ({"observedGeneration": 3, "sinkUri": "http://s"}, [
        Condition.true("SinkProvided"), Condition.true("Deployed")])


@pytest.mark.parametrize(("uri", "expected"), [
    (None, ({"observedGeneration": 3},
            [Condition.false("SinkProvided", "NotFound", "spec.sink: the sink does not exist yet")])),
    ("http://s", ({"observedGeneration": 3, "sinkUri": "http://s"},
                  [Condition.true("SinkProvided"), Condition.true("BindingAvailable")])),
])
def test_sink_binding_status(uri: str | None, expected: b.Status) -> None:
    assert b.sink_binding_status(resource("SinkBinding", {"sink": SINK}), uri) == expected
