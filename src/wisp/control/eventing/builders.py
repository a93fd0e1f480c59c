"""Pure builders for the eventing kinds: an object's spec → what its dispatcher is built from, and its status
and conditions. None touches the store, a Kafka or the clock, so each is table-testable."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from wisp.control.conditions import Condition
from wisp.eventing.delivery import DeliveryCounters, DeliverySpec, Destination, kafka_source_delivery
from wisp.eventing.kafka_source import KafkaAuth, KafkaSourceSpec
from wisp.eventing.trigger_dispatcher import TriggerConfig
from wisp.types import Resource

# A status to write: its fields and its conditions (Ready is summarised from them unless given).
Status = tuple[dict[str, Any], list[Condition]]
Resolve = Callable[[Mapping[str, Any]], Destination | None]

_LOCAL_HOSTS = ("127.0.0.1", "localhost")


def observed(resource: Resource) -> dict[str, Any]:
    return {"observedGeneration": resource["metadata"]["generation"]}


def invalid_spec(resource: Resource, message: str, **fields: Any) -> Status:
    """A spec wisp cannot run (a bad filter, a missing Secret): Ready False with the reason."""
    return {**observed(resource), **fields}, [Condition.false("Ready", "InvalidSpec", message)]


# -- KafkaSource ---------------------------------------------------------------------------------------------

class Connection(NamedTuple):
    """A KafkaSource dispatcher's readiness as it last reported it."""

    ready: bool
    reason: str
    message: str


CONNECTING = Connection(False, "Connecting", "connecting to the Kafka cluster")


def split_list(value: Any) -> tuple[str, ...]:
    """A list, or the seed's comma-separated string, of bootstrap servers or topics."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    return tuple(str(i).strip() for i in items if str(i).strip())


def kafka_source_spec(source: Resource, auth: KafkaAuth) -> KafkaSourceSpec:
    """What the dispatcher runs; ValueError (or ManifestError) when the spec cannot run."""
    meta, spec = source["metadata"], source["spec"]
    return KafkaSourceSpec(
        namespace=meta["namespace"], name=meta["name"],
        bootstrap_servers=split_list(spec.get("bootstrapServers")), topics=split_list(spec.get("topics")),
        sink=spec.get("sink") or {}, consumer_group=str(spec.get("consumerGroup")),
        delivery=kafka_source_delivery(spec.get("delivery"), meta.get("annotations") or {}),
        ordering=spec.get("ordering", "ordered"), initial_offset=spec.get("initialOffset", "latest"),
        consumers=int(spec.get("consumers", 1) or 1),
        ce_overrides=(spec.get("ceOverrides") or {}).get("extensions") or {},
        auth=auth,
    )


def uses_local_kafka(bootstrap_servers: Iterable[str]) -> bool:
    """Does the source name this machine's Kafka (which wisp starts, and whose topics it creates)?"""
    return any(server.split(":")[0] in _LOCAL_HOSTS for server in bootstrap_servers)


@dataclass(frozen=True)
class ResolvedSinks:
    """A source's sink and dead-letter sink as resolved at reconcile time (None: not resolvable yet).

    The dispatcher asks it for its spec's sink and its delivery's deadLetterSink. A different resolution is a
    different spec, so the dispatcher restarts with it, as a Trigger's does with its subscriber."""

    sink_ref: Mapping[str, Any]
    sink: Destination | None
    dead_letter: Destination | None = None

    def __call__(self, ref: Mapping[str, Any]) -> Destination | None:
        return self.sink if ref == self.sink_ref else self.dead_letter


def resolve_sinks(spec: KafkaSourceSpec, resolve: Resolve) -> ResolvedSinks:
    dead_letter_ref = spec.delivery.dead_letter_sink
    return ResolvedSinks(spec.sink, resolve(spec.sink), resolve(dead_letter_ref) if dead_letter_ref else None)


def kafka_source_status(source: Resource, sink_uri: str | None, counters: DeliveryCounters, lag: int,
                        consumers: int, connection: Connection) -> Status:
    status = observed(source)
    if sink_uri:
        status["sinkUri"] = sink_uri
    status["deliveryStats"] = {"delivered": counters.delivered, "retried": counters.retried,
                               "deadLettered": counters.dead_lettered, "dropped": counters.dropped, "lag": lag}
    status["consumers"] = consumers
    return status, [
        Condition.true("SinkProvided") if sink_uri else
        Condition.false("SinkProvided", "SinkNotFound", "the sink does not exist yet"),
        Condition.true("ConnectionEstablished") if connection.ready else
        Condition.false("ConnectionEstablished", connection.reason or "NotReady", connection.message),
    ]


# -- Broker --------------------------------------------------------------------------------------------------

def broker_status(broker: Resource, url: str | None) -> Status:
    return {**observed(broker), "address": {"url": url}, "url": url}, [
        Condition.true("Addressable"), Condition.true("IngressReady"), Condition.true("TriggerChannelReady"),
        Condition.true("FilterReady")]


# -- Trigger -------------------------------------------------------------------------------------------------

def trigger_broker(trigger: Resource) -> str:
    return str(trigger.get("spec", {}).get("broker", "default"))


def trigger_broker_missing(trigger: Resource) -> Status:
    name = trigger_broker(trigger)
    return observed(trigger), [Condition.false("BrokerReady", "BrokerDoesNotExist", f'Broker "{name}" does not exist')]


def trigger_subscriber_missing(trigger: Resource) -> Status:
    return observed(trigger), [
        Condition.true("BrokerReady"),
        Condition.false("SubscriberResolved", "Unable to get the Subscriber's URI",
                        "spec.subscriber: the subscriber does not exist yet")]


def trigger_ready(trigger: Resource, subscriber_uri: str | None) -> Status:
    return {**observed(trigger), "subscriberUri": subscriber_uri}, [
        Condition.true("BrokerReady"), Condition.true("SubscriberResolved"), Condition.true("DependencyReady")]


def trigger_wanted(trigger: Resource, config: TriggerConfig, kafka_class: bool) -> tuple[Any, ...]:
    """What a trigger's dispatcher is built from: a change of any restarts it."""
    spec = trigger["spec"]
    return (config.subscriber, config.delivery, config.dead_letter, repr(spec.get("filter")),
            repr(spec.get("filters")), kafka_class)


# -- PingSource ----------------------------------------------------------------------------------------------

def ping_sink_missing(source: Resource) -> Status:
    return observed(source), [Condition.false("SinkProvided", "NotFound", "spec.sink: the sink does not exist yet")]


def ping_wanted(source: Resource, destination: Destination, delivery: DeliverySpec) -> tuple[Any, ...]:
    """What a PingSource's runner is built from: a change of any restarts it."""
    spec = source["spec"]
    return (spec.get("schedule"), spec.get("timezone"), spec.get("data"), spec.get("dataBase64"),
            spec.get("contentType"), destination, delivery, repr(spec.get("ceOverrides")))


def ping_deployed(source: Resource, sink_uri: str | None) -> Status:
    return {**observed(source), "sinkUri": sink_uri}, [Condition.true("SinkProvided"), Condition.true("Deployed")]


# -- SinkBinding ---------------------------------------------------------------------------------------------

def sink_binding_status(binding: Resource, sink_uri: str | None) -> Status:
    if sink_uri is None:
        return observed(binding), [
            Condition.false("SinkProvided", "NotFound", "spec.sink: the sink does not exist yet")]
    return {**observed(binding), "sinkUri": sink_uri}, [
        Condition.true("SinkProvided"), Condition.true("BindingAvailable")]
