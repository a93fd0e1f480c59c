"""The eventing reconcilers over a real store, without a Kafka: each kind's reconcile, what its deletion undoes,
which changes bring it back, and the collaborators all given at construction (the controller's `enqueue`, the
broker registry the ingress serves). A KafkaSource names 127.0.0.1:1, where nothing listens: its dispatcher
runs and reports the cluster unreachable, which is all these tests need of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.conditions import get_condition
from wisp.control.controller import Controller, Enqueue
from wisp.control.eventing.assembly import Eventing
from wisp.control.kafka_cluster import KafkaCluster
from wisp.control.serving_builders import Network
from wisp.control.sinks import SinkResolver
from wisp.eventing.broker import Brokers, LogBroker
from wisp.eventing.broker_log import BrokerLog
from wisp.eventing.delivery import Deliverer, Destination
from wisp.store import Store, StoreEvent
from wisp.types import Resource

pytestmark = pytest.mark.timeout(30)

NS = "demo"
SINK = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "display"}}


@dataclass
class World:
    store: Store
    eventing: Eventing
    brokers: Brokers
    enqueued: asyncio.Queue[tuple[Kind, str, str]]

    def apply(self, kind: Kind, name: str, spec: dict[str, Any] | None = None,
              **extra: Any) -> set[tuple[Kind, str, str]]:
        """Store the object and return its dependents, as the controller's watch asks for them (which is also
        when the sink resolver forgets what it resolved)."""
        resource = self.store.apply([(kind, {"metadata": {"name": name, "namespace": NS}, "spec": spec or {},
                                             **extra})])[0].resource
        event = StoreEvent("ADDED", kind, resource)
        return {key for r in self.eventing.reconcilers for key in r.dependents(event)}

    def get(self, kind: Kind, name: str) -> Resource:
        found = self.store.get(kind, NS, name)
        assert found is not None
        return found

    def condition(self, kind: Kind, name: str, type_: str) -> dict[str, Any]:
        return get_condition(self.get(kind, name), type_) or {}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = Store(tmp_path / "store.db", lambda: 1_700_000_000.0)
    store.open()
    enqueued: asyncio.Queue[tuple[Kind, str, str]] = asyncio.Queue()
    enqueue = Enqueue()
    enqueue.bind(lambda kind, namespace, name: enqueued.put_nowait((kind, namespace, name)))
    brokers = Brokers()
    eventing = Eventing(store, SinkResolver(store, Network()), KafkaCluster("127.0.0.1:1", tmp_path / "kafka.log"),
                        Deliverer(), brokers, BrokerLog(tmp_path / "broker.db"), enqueue, lambda: 1_700_000_000.0)
    await eventing.start()
    yield World(store, eventing, brokers, enqueued)
    await eventing.stop()
    store.close()


def kafka_source_spec(**extra: Any) -> dict[str, Any]:
    return {"bootstrapServers": ["127.0.0.1:1"], "topics": ["t"], "consumerGroup": "g", "sink": SINK, **extra}


async def test_kafka_source_sink_is_resolved_at_reconcile_time(world: World) -> None:
    reconciler = world.eventing.kafka_source
    world.apply(k.KAFKA_SOURCE, "src", kafka_source_spec())
    await reconciler.reconcile(k.KAFKA_SOURCE, NS, "src")
    waiting = reconciler.pieces.get((NS, "src"))
    assert waiting is not None  # it runs without its sink: records wait in Kafka, the lag shows
    assert waiting._resolve_sink(SINK) is None
    assert world.condition(k.KAFKA_SOURCE, "src", "SinkProvided")["reason"] == "SinkNotFound"
    assert "sinkUri" not in world.get(k.KAFKA_SOURCE, "src")["status"]

    # The Service appears: its event brings the source back, and the new resolution a new dispatcher.
    dependents = world.apply(k.SERVICE, "display", {"template": {"spec": {"containers": [{"image": "./app"}]}}})
    assert (k.KAFKA_SOURCE, NS, "src") in dependents
    await reconciler.reconcile(k.KAFKA_SOURCE, NS, "src")
    running = reconciler.pieces.get((NS, "src"))
    assert running is not None and running is not waiting
    assert running._resolve_sink(SINK) == Destination("http://127.0.0.1:8080/",
                                                      host="display.demo.svc.cluster.local")
    status = world.get(k.KAFKA_SOURCE, "src")["status"]
    assert status["sinkUri"] == "http://display.demo.svc.cluster.local"
    assert world.condition(k.KAFKA_SOURCE, "src", "SinkProvided")["status"] == "True"

    await reconciler.reconcile(k.KAFKA_SOURCE, NS, "src")  # nothing changed: the same dispatcher
    assert reconciler.pieces.get((NS, "src")) is running


async def test_kafka_source_reports_through_the_enqueue_it_was_given(world: World) -> None:
    world.apply(k.KAFKA_SOURCE, "src", kafka_source_spec())
    await world.eventing.kafka_source.reconcile(k.KAFKA_SOURCE, NS, "src")
    assert world.condition(k.KAFKA_SOURCE, "src", "ConnectionEstablished")["reason"] == "Connecting"
    assert await asyncio.wait_for(world.enqueued.get(), 10) == (k.KAFKA_SOURCE, NS, "src")
    await world.eventing.kafka_source.reconcile(k.KAFKA_SOURCE, NS, "src")
    assert world.condition(k.KAFKA_SOURCE, "src", "ConnectionEstablished")["reason"] == "KafkaUnreachable"
    assert [s.name for s in world.eventing.source_states()] == ["src"]

    await world.eventing.kafka_source.deleted(k.KAFKA_SOURCE, world.get(k.KAFKA_SOURCE, "src"))
    assert world.eventing.kafka_source.pieces.get((NS, "src")) is None and world.eventing.source_states() == []


async def test_kafka_source_with_a_missing_secret_is_invalid_until_the_secret_comes(world: World) -> None:
    net = {"sasl": {"enable": True, "user": {"secretKeyRef": {"name": "kafka", "key": "user"}}}}
    world.apply(k.KAFKA_SOURCE, "src", kafka_source_spec(net=net))
    await world.eventing.kafka_source.reconcile(k.KAFKA_SOURCE, NS, "src")
    ready = world.condition(k.KAFKA_SOURCE, "src", "Ready")
    assert ready["reason"] == "InvalidSpec" and 'secret "kafka" not found' in ready["message"]
    assert world.eventing.kafka_source.pieces.get((NS, "src")) is None

    assert (k.KAFKA_SOURCE, NS, "src") in world.apply(k.SECRET, "kafka", None, stringData={"user": "alice"})
    await world.eventing.kafka_source.reconcile(k.KAFKA_SOURCE, NS, "src")
    dispatcher = world.eventing.kafka_source.pieces.get((NS, "src"))
    assert dispatcher is not None and dispatcher.spec.auth.sasl_user == "alice"


async def test_trigger_runs_once_its_broker_and_subscriber_exist(world: World) -> None:
    reconciler = world.eventing.trigger
    world.apply(k.TRIGGER, "t", {"broker": "default", "subscriber": SINK})
    await reconciler.reconcile(k.TRIGGER, NS, "t")
    assert world.condition(k.TRIGGER, "t", "BrokerReady")["reason"] == "BrokerDoesNotExist"

    assert (k.TRIGGER, NS, "t") in world.apply(k.BROKER, "default")
    await world.eventing.broker.reconcile(k.BROKER, NS, "default")
    assert isinstance(world.brokers.get(NS, "default"), LogBroker)  # the registry the ingress serves
    await reconciler.reconcile(k.TRIGGER, NS, "t")
    assert world.condition(k.TRIGGER, "t", "SubscriberResolved")["status"] == "False"
    assert reconciler.pieces.get((NS, "t")) is None

    world.apply(k.SERVICE, "display", {"template": {"spec": {"containers": [{"image": "./app"}]}}})
    await reconciler.reconcile(k.TRIGGER, NS, "t")
    assert world.condition(k.TRIGGER, "t", "Ready")["status"] == "True"
    assert world.get(k.TRIGGER, "t")["status"]["subscriberUri"] == "http://display.demo.svc.cluster.local"
    assert [(s.kind, s.name) for s in world.eventing.source_states()] == [("Trigger", "t")]

    await reconciler.deleted(k.TRIGGER, world.get(k.TRIGGER, "t"))
    await world.eventing.broker.deleted(k.BROKER, world.get(k.BROKER, "default"))
    assert reconciler.pieces.get((NS, "t")) is None and world.brokers.get(NS, "default") is None


async def test_trigger_with_a_bad_filter_is_invalid(world: World) -> None:
    world.apply(k.BROKER, "default")
    world.apply(k.SERVICE, "display", {"template": {"spec": {"containers": [{"image": "./app"}]}}})
    world.apply(k.TRIGGER, "t", {"broker": "default", "subscriber": SINK, "filters": [{"cesql": "type = "}]})
    await world.eventing.trigger.reconcile(k.TRIGGER, NS, "t")
    assert world.condition(k.TRIGGER, "t", "Ready")["reason"] == "InvalidSpec"
    assert world.eventing.trigger.pieces.get((NS, "t")) is None


async def test_ping_source_runs_while_its_sink_exists(world: World) -> None:
    reconciler = world.eventing.ping_source
    world.apply(k.PING_SOURCE, "p", {"schedule": "0 0 1 1 *", "sink": SINK})
    await reconciler.reconcile(k.PING_SOURCE, NS, "p")
    assert world.condition(k.PING_SOURCE, "p", "SinkProvided")["status"] == "False"
    world.apply(k.SERVICE, "display", {"template": {"spec": {"containers": [{"image": "./app"}]}}})
    await reconciler.reconcile(k.PING_SOURCE, NS, "p")
    assert world.condition(k.PING_SOURCE, "p", "Deployed")["status"] == "True"
    assert [(s.kind, s.name, s.delivered) for s in world.eventing.source_states()] == [("PingSource", "p", 0)]


async def test_sink_binding_status_env_and_dependents(world: World) -> None:
    subject = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "producer"}
    world.apply(k.SINK_BINDING, "b", {"subject": subject, "sink": SINK})
    await world.eventing.sink_binding.reconcile(k.SINK_BINDING, NS, "b")
    assert world.condition(k.SINK_BINDING, "b", "SinkProvided")["status"] == "False"
    world.apply(k.SERVICE, "display", {"template": {"spec": {"containers": [{"image": "./app"}]}}})
    world.apply(k.REVISION, "producer-00001", {"containers": [{"image": "./app"}]})
    # A binding's change brings back the workloads it may bind: they get K_SINK in their environment.
    assert (k.REVISION, NS, "producer-00001") in world.apply(k.SINK_BINDING, "b", {"subject": subject, "sink": SINK})
    await world.eventing.sink_binding.reconcile(k.SINK_BINDING, NS, "b")
    assert world.condition(k.SINK_BINDING, "b", "Ready")["status"] == "True"
    producer = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                "metadata": {"name": "producer", "namespace": NS}}
    assert world.eventing.binding_env(NS, producer) == {
        "K_SINK": "http://127.0.0.1:8080/.wisp/route/display.demo.svc.cluster.local/"}


async def test_the_controller_routes_every_eventing_kind_and_binds_enqueue(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db", lambda: 0.0)
    store.open()
    enqueue = Enqueue()
    eventing = Eventing(store, SinkResolver(store, Network()), KafkaCluster("127.0.0.1:1", tmp_path / "kafka.log"),
                        Deliverer(), Brokers(), BrokerLog(tmp_path / "broker.db"), enqueue, lambda: 0.0)
    assert sorted(kind.kind for r in eventing.reconcilers for kind in r.kinds) == [
        "ApiServerSource", "Broker", "Channel", "ContainerSource", "EventType", "InMemoryChannel", "JobSink",
        "KafkaChannel",
        "KafkaSource", "Parallel", "PingSource", "Sequence", "SinkBinding", "Subscription", "Trigger"]
    await eventing.start()
    controller = Controller(store, eventing.reconcilers, enqueue)
    await controller.start()
    try:
        store.apply([(k.KAFKA_SOURCE, {"metadata": {"name": "src", "namespace": NS}, "spec": kafka_source_spec()})])

        async def unreachable() -> None:
            # The dispatcher's report reaches the controller through `enqueue`, and its reconcile writes it.
            while (get_condition(store.get(k.KAFKA_SOURCE, NS, "src") or {}, "ConnectionEstablished") or {}).get(
                    "reason") != "KafkaUnreachable":
                await asyncio.sleep(0.02)

        await asyncio.wait_for(unreachable(), 10)
    finally:
        await controller.stop()
        await eventing.stop()
        store.close()
