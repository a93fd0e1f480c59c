"""The serving reconciler keeps Revisions' routing state and tells the data plane whether each is reachable:
a new Revision is reachable from its creation (pending, then active through its Configuration's latest created
revision) and never unreachable before its Route serves it; the one it replaces becomes reserve once the Route
moved on; a Revision without the label (an older state dir) is labelled before its workload starts.
The controller and the store are real; the runtime is a fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fake_runtime import FakeRuntime
from tests.serving.test_idle_ticks import Clock
from wisp.api import kinds as k
from wisp.api.names import ROUTING_STATE_LABEL
from wisp.control import routing_state as rs
from wisp.control.admission import apply_manifests
from wisp.control.controller import Controller
from wisp.control.serving import ServingReconciler
from wisp.control.serving_builders import Network
from wisp.serving.dataplane import DataPlane, RevisionSettings
from wisp.serving.routing import RevisionKey, RoutingTable
from wisp.serving.workloads.types import WorkloadSpec
from wisp.store import Store
from wisp.types import Resource

pytestmark = pytest.mark.timeout(60)


@dataclass
class World:
    store: Store
    dataplane: DataPlane
    ensured: list[tuple[str, bool]]  # (revision, reachable) of every ensure call


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = Clock()
    store = Store(tmp_path / "store.db", clock)
    store.open()
    async with running(store, tmp_path) as w:
        yield w
    store.close()


class running:
    """A controller with the serving reconciler over `store`, started and stopped around the block."""

    def __init__(self, store: Store, tmp_path: Path) -> None:
        self.store = store
        self.tmp_path = tmp_path

    async def __aenter__(self) -> World:
        self.controller: Controller | None = None
        self.dataplane = DataPlane(FakeRuntime, self.tmp_path / "logs", Clock(),
                                   lambda key: self.controller and self.controller.enqueue(k.REVISION, *key),
                                   tick_interval=0.01)
        ensured: list[tuple[str, bool]] = []
        ensure = self.dataplane.ensure

        async def recording(key: RevisionKey, spec: WorkloadSpec, settings: RevisionSettings) -> None:
            ensured.append((key[1], settings.reachable))
            await ensure(key, spec, settings)

        self.dataplane.ensure = recording  # type: ignore[method-assign]
        reconciler = ServingReconciler(self.store, self.dataplane, RoutingTable(), Network(), Clock())
        self.controller = Controller(self.store, [reconciler])
        await self.dataplane.start()
        await self.controller.start()
        return World(self.store, self.dataplane, ensured)

    async def __aexit__(self, *exc: object) -> None:
        assert self.controller is not None
        await self.controller.stop()
        await self.dataplane.stop()


def ksvc(code: Path, version: int, traffic: list[dict[str, Any]] | None = None) -> Resource:
    spec: dict[str, Any] = {"template": {
        "metadata": {"annotations": {"wisp.dev/workload-class": "function"}},
        "spec": {"containers": [{"image": str(code), "env": [{"name": "V", "value": str(version)}]}]}}}
    if traffic is not None:
        spec["traffic"] = traffic
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "svc", "namespace": "default"}, "spec": spec}


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def state(w: World, revision: str) -> str | None:
    found = w.store.get(k.REVISION, "default", revision)
    return None if found is None else rs.state_of(found)


def served(store: Store, revision: str) -> bool:
    route = store.get(k.ROUTE, "default", "svc") or {}
    return [t.get("revisionName") for t in route.get("status", {}).get("traffic") or []] == [revision]


async def test_a_new_revision_is_reachable_before_it_is_routed_and_the_old_one_is_not_after(
    world: World, tmp_path: Path
) -> None:
    w = world
    apply_manifests([ksvc(tmp_path, 1)], w.store)
    await until(lambda: served(w.store, "svc-00001") and state(w, "svc-00001") == rs.ACTIVE)
    assert w.dataplane.reachable(("default", "svc-00001")) is True

    apply_manifests([ksvc(tmp_path, 2)], w.store)
    await until(lambda: served(w.store, "svc-00002") and state(w, "svc-00001") == rs.RESERVE)
    await until(lambda: w.dataplane.reachable(("default", "svc-00001")) is False)
    assert state(w, "svc-00002") == rs.ACTIVE
    assert {r for name, r in w.ensured if name == "svc-00002"} == {True}  # never unreachable on its way in
    assert ("svc-00001", True) in w.ensured

    # Pinned back: the old one is active again, the newer one reserve.
    apply_manifests([ksvc(tmp_path, 2, traffic=[{"revisionName": "svc-00001", "percent": 100}])], w.store)
    await until(lambda: served(w.store, "svc-00001") and state(w, "svc-00002") == rs.RESERVE)
    await until(lambda: w.dataplane.reachable(("default", "svc-00001")) is True
                and w.dataplane.reachable(("default", "svc-00002")) is False)
    assert w.store.get(k.REVISION, "default", "svc-00003") is None  # same template: no new revision


async def test_an_unlabelled_revision_is_labelled_before_its_workload_starts(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db", Clock())
    store.open()
    async with running(store, tmp_path):
        apply_manifests([ksvc(tmp_path, 1)], store)
        await until(lambda: served(store, "svc-00001"))
        apply_manifests([ksvc(tmp_path, 2)], store)
        await until(lambda: served(store, "svc-00002"))
    # As a state dir from before routing states: no label on either.
    for name in ("svc-00001", "svc-00002"):
        revision = store.get(k.REVISION, "default", name)
        assert revision is not None
        del revision["metadata"]["labels"][ROUTING_STATE_LABEL]
        store.apply([(k.REVISION, revision)])
    async with running(store, tmp_path) as w:
        await until(lambda: {n for n, _ in w.ensured} == {"svc-00001", "svc-00002"})
        assert ("svc-00001", True) not in w.ensured  # it never started as reachable
        assert state(w, "svc-00001") == rs.RESERVE and state(w, "svc-00002") == rs.ACTIVE
        runner = w.dataplane.runner(("default", "svc-00001"))
        assert runner is not None and runner.desired == 0 and not runner.runtime_running
    store.close()
