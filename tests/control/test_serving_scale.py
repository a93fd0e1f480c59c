"""The serving reconciler's work for one change does not grow with the number of unrelated Services in the
namespace: a Revision or Configuration change reconciles only the Routes that name it, and a Route's reconcile
reads only the Configurations and Revisions its traffic names. Counted, not timed: reconciles, and the objects
the store decodes for the serving kinds. The controller and the store are real; the runtime is a fake."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fake_runtime import FakeRuntime
from tests.serving.test_idle_ticks import Clock
from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control import routing_state as rs
from wisp.control.admission import apply_manifests
from wisp.control.conditions import is_ready
from wisp.control.controller import Controller
from wisp.control.serving import ALIYUN_DOMAIN, ServingReconciler
from wisp.control.serving_builders import Network
from wisp.serving.dataplane import DataPlane
from wisp.serving.instance_limit import InstanceBudget, MachineLimit
from wisp.serving.routing import RoutingTable
from wisp.store import Store
from wisp.types import Resource

pytestmark = pytest.mark.timeout(240)
SERVING = (k.SERVICE, k.CONFIGURATION, k.REVISION, k.ROUTE, k.DOMAIN_MAPPING)


class CountingStore(Store):
    """The real store, counting the serving objects it decodes (a `get` decodes one, a `list` every row)."""

    decoded: Counter[str]
    lists: Counter[str]

    def get(self, kind: Kind, namespace: str, name: str) -> Resource | None:
        found = super().get(kind, namespace, name)
        if kind in SERVING and found is not None:
            self.decoded[kind.kind] += 1
        return found

    def list(self, kind: Kind, namespace: str | None = None) -> list[Resource]:  # type: ignore[override]
        found = super().list(kind, namespace)
        if kind in SERVING:
            self.decoded[kind.kind] += len(found)
            self.lists[kind.kind] += 1
        return found


class CountingReconciler(ServingReconciler):
    reconciles: Counter[str]

    async def reconcile(self, kind: Kind, namespace: str, name: str) -> None:
        self.reconciles[kind.kind] += 1
        await super().reconcile(kind, namespace, name)


def ksvc(code: Path, name: str, version: int) -> Resource:
    spec: dict[str, Any] = {"template": {
        "metadata": {"annotations": {"wisp.dev/workload-class": "function"}},
        "spec": {"containers": [{"image": str(code), "env": [{"name": "V", "value": str(version)}]}]}}}
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default",
                         # The seed's platform annotation: each Service gets a DomainMapping too.
                         "annotations": {ALIYUN_DOMAIN: json.dumps({"domain": f"{name}.example.com"})}},
            "spec": spec}


async def until(predicate: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def quiet(controller: Controller) -> None:
    """No reconcile running and no store event waiting for the controller, three polls in a row (an event
    still queued would start reconciles after the counters are read)."""
    calm = 0

    def idle() -> bool:
        nonlocal calm
        events = controller._events
        calm = calm + 1 if not controller._running and (events is None or events.empty()) else 0
        return calm >= 3

    await until(idle, timeout=60)


def served(store: Store, name: str, revision: str) -> bool:
    route = Store.get(store, k.ROUTE, "default", name) or {}  # the test's own reads are not counted
    return [t.get("revisionName") for t in route.get("status", {}).get("traffic") or []] == [revision]


async def change_cost(tmp_path: Path, services: int) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """Reconciles, decoded objects and list calls for one Service's new template, with `services` in the
    namespace all Ready."""
    store = CountingStore(tmp_path / f"store-{services}.db", Clock())
    store.decoded, store.lists = Counter(), Counter()
    store.open()
    controller: Controller | None = None
    dataplane = DataPlane(FakeRuntime, tmp_path / f"logs-{services}", Clock(),
                          lambda key: controller and controller.enqueue(k.REVISION, *key), tick_interval=0.05,
                          budget=InstanceBudget(MachineLimit(1000, "the test's")))
    reconciler = CountingReconciler(store, dataplane, RoutingTable(), Network(), Clock())
    reconciler.reconciles = Counter()
    controller = Controller(store, [reconciler])
    names = [f"s{i:03d}" for i in range(services)]
    await dataplane.start()
    await controller.start()
    try:
        apply_manifests([ksvc(tmp_path, name, 1) for name in names], store)
        await until(lambda: sum(is_ready(s) for s in Store.list(store, k.SERVICE, "default")) == services,
                    timeout=180)
        await quiet(controller)
        store.decoded.clear()
        store.lists.clear()
        reconciler.reconciles.clear()

        apply_manifests([ksvc(tmp_path, names[0], 2)], store)

        def settled() -> bool:
            old = Store.get(store, k.REVISION, "default", f"{names[0]}-00001")
            return (served(store, names[0], f"{names[0]}-00002") and old is not None
                    and rs.state_of(old) == rs.RESERVE)

        await until(settled, timeout=30)
        await quiet(controller)
        cost = Counter(reconciler.reconciles), Counter(store.decoded), Counter(store.lists)
        # The others are untouched and still served.
        assert all(served(store, name, f"{name}-00001") for name in names[1:])
        return cost
    finally:
        await controller.stop()
        await dataplane.stop()
        store.close()


async def test_changing_one_service_costs_the_same_with_200_in_the_namespace(tmp_path: Path) -> None:
    small_reconciles, small_decoded, _ = await change_cost(tmp_path, 2)
    reconciles, decoded, lists = await change_cost(tmp_path, 200)
    # No listing of the serving kinds once the namespace is known.
    assert lists == Counter(), lists
    # Bounded work: what the small namespace needs, give or take the races of its data plane's ticks.
    assert sum(reconciles.values()) <= 2 * sum(small_reconciles.values()) + 10, (reconciles, small_reconciles)
    assert reconciles["Route"] <= 10, reconciles
    assert reconciles["DomainMapping"] <= 10, reconciles
    assert decoded["DomainMapping"] <= 20, decoded
    assert sum(decoded.values()) <= 2 * sum(small_decoded.values()) + 40, (decoded, small_decoded)


NAMES = st.sampled_from(["a", "b", "c", "d"])
ENTRY = st.fixed_dictionaries({}, optional={
    "revisionName": NAMES, "configurationName": st.sampled_from(["a", "b", ""]), "latestRevision": st.booleans(),
    "percent": st.integers(0, 100)})
ROUTE = st.fixed_dictionaries({
    "metadata": st.fixed_dictionaries({"name": NAMES}),
    "spec": st.fixed_dictionaries({"traffic": st.lists(ENTRY, max_size=3)}),
    "status": st.fixed_dictionaries({"traffic": st.lists(ENTRY, max_size=3)}),
})


@settings(max_examples=300, deadline=None)
@given(routes=st.lists(ROUTE, max_size=6), latest=st.dictionaries(NAMES, NAMES))
def test_the_index_answers_as_the_full_scan_does(routes: list[Resource], latest: dict[str, str]) -> None:
    """Routes set, replaced and dropped in any order: the index's targeting Routes are the scan's, and the
    Routes naming a Configuration or Revision are those whose reconcile reads it."""
    configurations = {name: {"metadata": {"name": name}, "status": {"latestCreatedRevisionName": revision}}
                      for name, revision in latest.items()}
    index = rs.RouteIndex()
    stored: dict[str, Resource] = {}
    for step, route in enumerate(routes):
        name = route["metadata"]["name"]
        if step % 4 == 3:  # a deletion now and then
            stored.pop(name, None)
            index.drop_refs("ns", name)
            index.set_targets("ns", name, set())
        else:
            stored[name] = route
            index.set_refs("ns", name, *rs.referenced(route))
            index.set_targets("ns", name, rs.targets_of(route, configurations))
    scan = rs.routes_by_revision(stored.values(), configurations)
    for revision in ["a", "b", "c", "d"]:
        assert index.targeting("ns", revision) == scan.get(revision, set())
    for name, route in stored.items():
        configs, revisions = rs.referenced(route)
        # What resolve_traffic and targets_of look up is in what the reconcile fetches.
        for entry in route["spec"]["traffic"] + route["status"]["traffic"]:
            if entry.get("latestRevision"):
                assert entry.get("configurationName", name) in configs
                assert (entry.get("configurationName") or name) in configs
            if entry.get("revisionName"):
                assert entry["revisionName"] in revisions
        for config in configs:
            assert name in index.routes_naming("ns", [config], [])
        for revision in revisions:
            assert name in index.routes_naming("ns", [], [revision])
    everything = ["a", "b", "c", "d", ""]
    assert index.routes_naming("ns", everything, everything) <= set(stored)  # nothing of a dropped Route stays


async def test_a_mapping_takes_a_host_once_the_mapping_that_claimed_it_is_deleted(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db", Clock())
    store.open()
    controller: Controller | None = None
    dataplane = DataPlane(FakeRuntime, tmp_path / "logs", Clock(),
                          lambda key: controller and controller.enqueue(k.REVISION, *key), tick_interval=0.05)
    controller = Controller(store, [ServingReconciler(store, dataplane, RoutingTable(), Network(), Clock())])
    await dataplane.start()
    await controller.start()

    def mapping(namespace: str) -> Resource:
        return {"apiVersion": "serving.knative.dev/v1beta1", "kind": "DomainMapping",
                "metadata": {"name": "shop.example.com", "namespace": namespace},
                "spec": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "svc"}}}

    def claimed(namespace: str) -> str | None:
        found = Store.get(store, k.DOMAIN_MAPPING, namespace, "shop.example.com") or {}
        conditions = found.get("status", {}).get("conditions") or []
        return next((c["status"] for c in conditions if c["type"] == "DomainClaimed"), None)

    try:
        services = [ksvc(tmp_path, "svc", 1), {**ksvc(tmp_path, "svc", 1), "metadata": {"name": "svc",
                                                                                    "namespace": "other"}}]
        apply_manifests(services, store)
        await until(lambda: all(Store.get(store, k.ROUTE, ns, "svc") for ns in ("default", "other")), timeout=10)
        apply_manifests([mapping("default")], store)
        await until(lambda: claimed("default") == "True", timeout=10)
        apply_manifests([mapping("other")], store)
        await until(lambda: claimed("other") == "False", timeout=10)
        store.delete(k.DOMAIN_MAPPING, "default", "shop.example.com")
        await until(lambda: claimed("other") == "True", timeout=10)
    finally:
        await controller.stop()
        await dataplane.stop()
        store.close()
