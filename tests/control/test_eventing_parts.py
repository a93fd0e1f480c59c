"""The small shared parts of the eventing reconcilers: Kafka auth read from Secrets, the running pieces (same
spec: nothing happens; a new spec: the old piece stops before the new one starts), the progress-driven status
refresh, and the late-bound Enqueue the controller binds itself to."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.control.controller import Controller, Enqueue
from wisp.control.eventing.kafka_auth import kafka_auth, secret_value
from wisp.control.eventing.pieces import Pieces
from wisp.control.eventing.status_refresh import StatusRefresh
from wisp.eventing.kafka_source import KafkaAuth
from wisp.store import Store

pytestmark = pytest.mark.timeout(30)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store.db", lambda: 0.0)
    s.open()
    s.apply([(k.SECRET, {"metadata": {"name": "kafka", "namespace": "demo"},
                         "data": {"user": b64("alice"), "mech": b64("SCRAM-SHA-512")},
                         "stringData": {"password": "s3cret", "ca": "-----BEGIN CERTIFICATE-----"}})])
    yield s
    s.close()


def ref(key: str, name: str = "kafka") -> dict[str, Any]:
    return {"secretKeyRef": {"name": name, "key": key}}


@pytest.mark.parametrize(("reference", "value"), [
    (ref("user"), "alice"),  # data: base64
    (ref("password"), "s3cret"),  # stringData: as written
    (None, None),
    ({}, None),
    ({"secretKeyRef": "not a mapping"}, None),
])
def test_secret_value(store: Store, reference: dict[str, Any] | None, value: str | None) -> None:
    assert secret_value(store, "demo", reference) == value


@pytest.mark.parametrize(("reference", "namespace", "message"), [
    (ref("user", name="nope"), "demo", 'secret "nope" not found'),
    (ref("user"), "other", 'secret "kafka" not found'),  # a Secret of another namespace is not visible
    (ref("nope"), "demo", 'key "nope" not found in secret "kafka"'),
])
def test_secret_value_missing(store: Store, reference: dict[str, Any], namespace: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        secret_value(store, namespace, reference)


@pytest.mark.parametrize(("net", "auth"), [
    (None, KafkaAuth()),
    ({}, KafkaAuth()),
    ({"sasl": {"enable": True, "user": ref("user"), "password": ref("password")}},
     KafkaAuth(sasl_enabled=True, sasl_user="alice", sasl_password="s3cret")),
    ({"sasl": {"enable": True, "type": ref("mech"), "user": ref("user"), "password": ref("password")},
      "tls": {"enable": True, "caCert": ref("ca")}},
     KafkaAuth(sasl_enabled=True, sasl_mechanism="SCRAM-SHA-512", sasl_user="alice", sasl_password="s3cret",
               tls_enabled=True, ca_cert="-----BEGIN CERTIFICATE-----")),
    ({"tls": {"enable": True}}, KafkaAuth(tls_enabled=True)),
])
def test_kafka_auth(store: Store, net: dict[str, Any] | None, auth: KafkaAuth) -> None:
    assert kafka_auth(store, "demo", net) == auth


class FakePiece:
    def __init__(self, name: str, log: list[str], fail_start: bool = False) -> None:
        self.name, self.log, self.fail_start = name, log, fail_start

    async def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_pieces_restart_only_on_a_new_spec() -> None:
    log: list[str] = []
    pieces: Pieces[FakePiece] = Pieces()

    def build(name: str) -> Any:
        async def make() -> FakePiece:
            log.append(f"build {name}")
            return FakePiece(name, log)
        return make

    first = await pieces.ensure(("demo", "a"), ("spec", 1), build("a1"))
    assert await pieces.ensure(("demo", "a"), ("spec", 1), build("unused")) is first
    second = await pieces.ensure(("demo", "a"), ("spec", 2), build("a2"))
    assert pieces.get(("demo", "a")) is second
    # The old piece is stopped before the new one is even built: two never run for one object.
    assert log == ["build a1", "start a1", "stop a1", "build a2", "start a2"]
    await pieces.ensure(("demo", "b"), "b", build("b"))
    await pieces.stop_all()
    assert pieces.items() == [] and log[-2:] == ["stop a2", "stop b"]


async def test_a_piece_that_fails_to_start_leaves_nothing_running() -> None:
    log: list[str] = []
    pieces: Pieces[FakePiece] = Pieces()

    async def old() -> FakePiece:
        return FakePiece("old", log)

    async def failing() -> FakePiece:
        return FakePiece("new", log, fail_start=True)

    await pieces.ensure(("demo", "a"), 1, old)
    with pytest.raises(RuntimeError):
        await pieces.ensure(("demo", "a"), 2, failing)
    assert pieces.get(("demo", "a")) is None and log == ["start old", "stop old"]
    await pieces.stop(("demo", "a"))  # nothing to stop: no error


async def test_status_refresh_writes_once_per_interval_of_progress() -> None:
    refreshed: list[tuple[str, str]] = []
    fired = asyncio.Event()

    def refresh(namespace: str, name: str) -> None:
        refreshed.append((namespace, name))
        fired.set()

    timer = StatusRefresh(refresh, interval=0.01)
    for _ in range(100):  # a burst of records: one refresh after it
        timer.progress("demo", "src")
    assert timer.pending() == 1 and refreshed == []
    await asyncio.wait_for(fired.wait(), 5)
    assert refreshed == [("demo", "src")] and timer.pending() == 0
    timer.progress("demo", "src")  # progress after the write: one more
    timer.stop()  # ...unless stopping
    assert timer.pending() == 0
    await asyncio.sleep(0.05)
    assert refreshed == [("demo", "src")]


async def test_enqueue_is_bound_by_the_controller(store: Store) -> None:
    enqueue = Enqueue()
    enqueue(k.SERVICE, "demo", "early")  # before the controller exists: dropped, no error
    asked: list[tuple[str, str, str]] = []
    reconciled = asyncio.Event()

    class Recorder:
        kinds = (k.SERVICE,)

        async def reconcile(self, kind: k.Kind, namespace: str, name: str) -> None:
            asked.append((kind.kind, namespace, name))
            reconciled.set()

        async def deleted(self, kind: k.Kind, resource: dict[str, Any]) -> None:
            pass

        def dependents(self, event: object) -> list[Any]:
            return []

    controller = Controller(store, [Recorder()], enqueue)
    enqueue(k.SERVICE, "demo", "hello")
    await asyncio.wait_for(reconciled.wait(), 5)
    await controller.stop()
    assert asked == [("Service", "demo", "hello")]
