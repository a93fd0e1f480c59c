"""The resource store on its own, table-driven: Kubernetes metadata, optimistic concurrency, cascade delete, watch.

Semantics checked against Kubernetes': metadata.generation moves only when the desired state (spec, or a
Secret's/ConfigMap's data) changes, never for metadata or status (Knative's CRDs have the status subresource);
resourceVersion is an opaque string that changes on every write and never on a no-op; create of an existing name
and update with a stale resourceVersion are conflicts; deleting an owner deletes what it owns.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.store import Conflict, NotFound, Store, StoreEvent
from wisp.types import Resource

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
T0_STAMP = "2023-11-14T22:13:20Z"


class FakeClock:
    """wisp.types.Clock on a hand-moved time."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Store:
    s = Store(None, clock)
    s.open()
    return s


def ksvc(name: str = "hello", namespace: str | None = None, image: str = "./app", **meta: Any) -> Resource:
    metadata: dict[str, Any] = {"name": name, **meta}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": metadata,
            "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}


def config_map(name: str, data: dict[str, str], namespace: str | None = None) -> Resource:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def owned(kind: Kind, name: str, *owners: Resource, namespace: str = "default") -> Resource:
    """An object of `kind` whose ownerReferences name each of `owners` (as stored, with their uid)."""
    refs = [{"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"], "controller": i == 0} for i, o in enumerate(owners)]
    return {"apiVersion": kind.api_version, "kind": kind.kind,
            "metadata": {"name": name, "namespace": namespace, "ownerReferences": refs}, "spec": {}}


def rv(resource: Resource | None) -> int:
    assert resource is not None
    return int(resource["metadata"]["resourceVersion"])


def drain(queue: asyncio.Queue[StoreEvent]) -> list[tuple[str, str, str]]:
    """The watch events published so far, as (type, kind, name)."""
    out: list[tuple[str, str, str]] = []
    while not queue.empty():
        event = queue.get_nowait()
        out.append((event.type, event.kind.kind, event.resource["metadata"]["name"]))
    return out


# -- create ------------------------------------------------------------------------------------------


def test_create_sets_the_server_owned_metadata(store: Store) -> None:
    created = store.create(k.SERVICE, ksvc())
    meta = created["metadata"]
    assert uuid.UUID(meta["uid"])
    assert meta["generation"] == 1
    assert meta["creationTimestamp"] == T0_STAMP
    assert isinstance(meta["resourceVersion"], str) and int(meta["resourceVersion"]) > 0
    assert meta["namespace"] == "default"
    assert (created["apiVersion"], created["kind"]) == ("serving.knative.dev/v1", "Service")
    assert store.get(k.SERVICE, "default", "hello") == created


@pytest.mark.parametrize(("field", "value"), [
    pytest.param("uid", "0000-mine", id="uid"),
    pytest.param("generation", 42, id="generation"),
    pytest.param("resourceVersion", "999", id="resourceVersion"),
    pytest.param("creationTimestamp", "1999-01-01T00:00:00Z", id="creationTimestamp"),
    pytest.param("selfLink", "/apis/x", id="selfLink"),
    pytest.param("managedFields", [{"manager": "kubectl"}], id="managedFields"),
])
def test_a_manifests_copy_of_server_metadata_is_ignored(store: Store, field: str, value: Any) -> None:
    created = store.create(k.SERVICE, ksvc(**{field: value}))
    assert created["metadata"].get(field) != value


def test_status_in_a_created_manifest_is_dropped(store: Store) -> None:
    created = store.create(k.SERVICE, {**ksvc(), "status": {"url": "http://forged"}})
    assert "status" not in created


def test_a_cluster_scoped_kind_has_no_namespace(store: Store) -> None:
    created = store.create(k.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "team", "namespace": "ignored"}})
    assert "namespace" not in created["metadata"]
    assert store.get(k.NAMESPACE, "anything", "team") == created


@pytest.mark.parametrize(("second_kind", "second", "conflict"), [
    pytest.param(k.SERVICE, ksvc(namespace="default"), True, id="same kind, name and namespace"),
    pytest.param(k.SERVICE, ksvc(), True, id="namespace defaulted on both"),
    pytest.param(k.SERVICE, ksvc(namespace="team"), False, id="same name in another namespace"),
    pytest.param(k.CONFIGURATION, {"apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
                                   "metadata": {"name": "hello"}, "spec": {}}, False, id="same name, another kind"),
])
def test_create_of_an_existing_name_is_a_conflict(
    store: Store, second_kind: Kind, second: Resource, conflict: bool,
) -> None:
    first = store.create(k.SERVICE, ksvc())
    if conflict:
        with pytest.raises(Conflict, match="already exists"):
            store.create(second_kind, second)
        assert store.get(k.SERVICE, "default", "hello") == first
    else:
        store.create(second_kind, second)


# -- update: generation and resourceVersion ----------------------------------------------------------


@dataclass(frozen=True)
class UpdateCase:
    name: str
    kind: Kind
    before: Resource
    after: Resource
    action: str
    generation: int


def _with(resource: Resource, edit: Callable[[Resource], None]) -> Resource:
    out = copy.deepcopy(resource)
    edit(out)
    return out


_SVC = ksvc()
_CM = config_map("settings", {"a": "1"})

UPDATE_CASES = [
    UpdateCase("identical re-apply", k.SERVICE, _SVC, _SVC, "unchanged", 1),
    UpdateCase("spec change", k.SERVICE, _SVC, ksvc(image="./other"), "configured", 2),
    UpdateCase("label change", k.SERVICE, _SVC, ksvc(labels={"team": "a"}), "configured", 1),
    UpdateCase("annotation change", k.SERVICE, _SVC, ksvc(annotations={"note": "x"}), "configured", 1),
    UpdateCase("status in the manifest", k.SERVICE, _SVC, {**_SVC, "status": {"url": "http://forged"}},
               "unchanged", 1),
    UpdateCase("server metadata in the manifest", k.SERVICE, _SVC,
               ksvc(uid="x", resourceVersion="999", generation=9, creationTimestamp="1999-01-01T00:00:00Z"),
               "unchanged", 1),
    UpdateCase("explicit default namespace", k.SERVICE, _SVC, ksvc(namespace="default"), "unchanged", 1),
    UpdateCase("spec and labels together", k.SERVICE, _SVC,
               _with(ksvc(labels={"team": "a"}), lambda r: r["spec"].update(traffic=[{"percent": 100}])),
               "configured", 2),
    UpdateCase("config map data change", k.CONFIG_MAP, _CM, config_map("settings", {"a": "2"}), "configured", 2),
    UpdateCase("config map label change", k.CONFIG_MAP, _CM,
               _with(_CM, lambda r: r["metadata"].update(labels={"x": "y"})), "configured", 1),
]


@pytest.mark.parametrize("case", UPDATE_CASES, ids=lambda c: c.name)
def test_apply_over_an_existing_object(store: Store, clock: FakeClock, case: UpdateCase) -> None:
    [first] = store.apply([(case.kind, case.before)])
    clock.advance(60)
    [second] = store.apply([(case.kind, case.after)])
    assert second.action == case.action
    meta, old = second.resource["metadata"], first.resource["metadata"]
    assert meta["generation"] == case.generation
    assert (meta["uid"], meta["creationTimestamp"]) == (old["uid"], old["creationTimestamp"])
    if case.action == "unchanged":
        assert meta["resourceVersion"] == old["resourceVersion"]
    else:
        assert rv(second.resource) > rv(first.resource)
    assert store.get(case.kind, "default", old["name"]) == second.resource


def test_generation_counts_every_spec_change(store: Store) -> None:
    for i in range(1, 5):
        [result] = store.apply([(k.SERVICE, ksvc(image=f"./v{i}"))])
        assert result.resource["metadata"]["generation"] == i


def test_a_spec_update_keeps_the_status(store: Store) -> None:
    store.create(k.SERVICE, ksvc())
    store.put_status(k.SERVICE, "default", "hello", {"url": "http://hello.default.localhost"})
    updated = store.replace(k.SERVICE, {**ksvc(image="./v2"), "status": {"url": "http://forged"}})
    assert updated["status"] == {"url": "http://hello.default.localhost"}
    assert updated["metadata"]["generation"] == 2


def test_resource_version_increases_with_every_write_of_any_kind(store: Store) -> None:
    versions = [
        rv(store.create(k.SERVICE, ksvc())),
        rv(store.create(k.CONFIG_MAP, config_map("settings", {"a": "1"}))),
        rv(store.replace(k.SERVICE, ksvc(image="./v2"))),
        rv(store.put_status(k.SERVICE, "default", "hello", {"observedGeneration": 2})),
        rv(store.apply([(k.CONFIG_MAP, config_map("settings", {"a": "2"}))])[0].resource),
        rv(store.create(k.SERVICE, ksvc("second", namespace="team"))),
    ]
    assert versions == sorted(set(versions)), versions


def test_a_no_op_write_keeps_the_resource_version(store: Store) -> None:
    created = store.create(k.SERVICE, ksvc())
    store.apply([(k.SERVICE, ksvc())])
    store.put_status(k.SERVICE, "default", "hello", {})
    store.put_status(k.SERVICE, "default", "hello", {})
    assert rv(store.get(k.SERVICE, "default", "hello")) == rv(created) + 1  # only the first status write


def test_resource_versions_survive_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "state" / "wisp.db"
    first = Store(path, clock)
    first.open()
    created = first.create(k.SERVICE, ksvc())
    first.close()
    again = Store(path, clock)
    again.open()
    try:
        assert again.get(k.SERVICE, "default", "hello") == created
        later = again.create(k.SERVICE, ksvc("second"))
        assert rv(later) > rv(created)
    finally:
        again.close()


# -- replace: optimistic concurrency -----------------------------------------------------------------


@pytest.mark.parametrize(("version", "conflict"), [
    # Kubernetes allows this for core kinds and refuses it (422) for custom resources; wisp allows it for all.
    pytest.param(None, False, id="no resourceVersion: unconditional update"),
    pytest.param("current", False, id="the current resourceVersion"),
    pytest.param("stale", True, id="a stale resourceVersion"),
    pytest.param("future", True, id="a resourceVersion from the future"),
])
def test_replace_checks_the_resource_version(store: Store, version: str | None, conflict: bool) -> None:
    created = store.create(k.SERVICE, ksvc())
    current = store.put_status(k.SERVICE, "default", "hello", {"observedGeneration": 1})
    wanted = {None: None, "current": rv(current), "stale": rv(created), "future": rv(current) + 10}[version]
    update = ksvc(image="./v2")
    if wanted is not None:
        update["metadata"]["resourceVersion"] = str(wanted)
    if conflict:
        with pytest.raises(Conflict, match="modified"):
            store.replace(k.SERVICE, update)
        assert store.get(k.SERVICE, "default", "hello") == current
    else:
        replaced = store.replace(k.SERVICE, update)
        assert replaced["metadata"]["generation"] == 2
        assert rv(replaced) > rv(current)


def test_replace_of_a_missing_object_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.replace(k.SERVICE, ksvc())


# -- put_status --------------------------------------------------------------------------------------


def test_put_status_bumps_the_resource_version_and_not_the_generation(store: Store) -> None:
    created = store.create(k.SERVICE, {**ksvc(), "metadata": {"name": "hello", "labels": {"a": "b"}}})
    updated = store.put_status(k.SERVICE, "default", "hello", {"observedGeneration": 1, "url": "http://x"})
    assert updated is not None
    assert updated["status"] == {"observedGeneration": 1, "url": "http://x"}
    assert updated["metadata"]["generation"] == 1
    assert rv(updated) > rv(created)
    assert {**updated["metadata"], "resourceVersion": None} == {**created["metadata"], "resourceVersion": None}
    assert updated["spec"] == created["spec"]
    assert store.get(k.SERVICE, "default", "hello") == updated


def test_put_status_replaces_the_whole_status(store: Store) -> None:
    store.create(k.SERVICE, ksvc())
    store.put_status(k.SERVICE, "default", "hello", {"url": "http://x", "observedGeneration": 1})
    updated = store.put_status(k.SERVICE, "default", "hello", {"observedGeneration": 2})
    assert updated is not None and updated["status"] == {"observedGeneration": 2}


def test_put_status_of_a_missing_object_writes_nothing(store: Store) -> None:
    assert store.put_status(k.SERVICE, "default", "ghost", {"x": 1}) is None
    assert store.get(k.SERVICE, "default", "ghost") is None


# -- apply: all or nothing ---------------------------------------------------------------------------


def test_apply_writes_every_item_or_none(store: Store) -> None:
    before = store.create(k.CONFIG_MAP, config_map("before", {}))
    events = store.subscribe()
    nameless: Resource = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}, "data": {}}
    with pytest.raises(KeyError):
        store.apply([(k.SERVICE, ksvc()), (k.CONFIG_MAP, config_map("before", {"a": "1"})),
                     (k.CONFIG_MAP, nameless)])
    assert store.get(k.SERVICE, "default", "hello") is None
    assert store.get(k.CONFIG_MAP, "default", "before") == before
    assert drain(events) == []
    # The rolled-back writes did not use up resource versions either.
    assert rv(store.create(k.SERVICE, ksvc())) == rv(before) + 1


def test_apply_reports_each_item(store: Store) -> None:
    store.create(k.CONFIG_MAP, config_map("same", {"a": "1"}))
    store.create(k.CONFIG_MAP, config_map("changed", {"a": "1"}))
    results = store.apply([
        (k.CONFIG_MAP, config_map("same", {"a": "1"})),
        (k.CONFIG_MAP, config_map("changed", {"a": "2"})),
        (k.CONFIG_MAP, config_map("new", {}, namespace="team")),
    ])
    assert [(r.namespace, r.name, r.action) for r in results] == [
        ("default", "same", "unchanged"), ("default", "changed", "configured"), ("team", "new", "created"),
    ]


# -- reads -------------------------------------------------------------------------------------------


def test_list_filters_by_namespace_and_orders_by_name(store: Store) -> None:
    for name, ns in (("b", "default"), ("a", "team"), ("c", "default"), ("a", "default")):
        store.create(k.SERVICE, ksvc(name, namespace=ns))
    store.create(k.CONFIG_MAP, config_map("a", {}))

    def names(items: list[Resource]) -> list[tuple[str, str]]:
        return [(r["metadata"]["namespace"], r["metadata"]["name"]) for r in items]

    assert names(store.list(k.SERVICE, "default")) == [("default", "a"), ("default", "b"), ("default", "c")]
    assert names(store.list(k.SERVICE, "team")) == [("team", "a")]
    assert names(store.list(k.SERVICE)) == [("default", "a"), ("default", "b"), ("default", "c"), ("team", "a")]
    assert [(kind.kind, r["metadata"]["name"]) for kind, r in store.all()] == [
        ("ConfigMap", "a"), ("Service", "a"), ("Service", "b"), ("Service", "c"), ("Service", "a"),
    ]


def test_reads_return_copies(store: Store) -> None:
    store.create(k.SERVICE, ksvc())
    got = store.get(k.SERVICE, "default", "hello")
    assert got is not None
    got["spec"]["template"] = {}
    got["metadata"]["name"] = "changed"
    assert store.get(k.SERVICE, "default", "hello") == store.list(k.SERVICE)[0]
    assert store.list(k.SERVICE)[0]["spec"]["template"] != {}


# -- delete: owner references ------------------------------------------------------------------------


def _serving_tree(store: Store) -> dict[str, Resource]:
    """A Service owning a Configuration and a Route; the Configuration owning two Revisions."""
    svc = store.create(k.SERVICE, ksvc())
    config = store.create(k.CONFIGURATION, owned(k.CONFIGURATION, "hello", svc))
    route = store.create(k.ROUTE, owned(k.ROUTE, "hello", svc))
    rev1 = store.create(k.REVISION, owned(k.REVISION, "hello-00001", config))
    rev2 = store.create(k.REVISION, owned(k.REVISION, "hello-00002", config))
    return {"svc": svc, "config": config, "route": route, "rev1": rev1, "rev2": rev2}


@pytest.mark.parametrize(("target", "gone", "kept"), [
    pytest.param("svc", {"svc", "config", "route", "rev1", "rev2"}, set(), id="the service takes the whole tree"),
    pytest.param("config", {"config", "rev1", "rev2"}, {"svc", "route"}, id="the configuration takes its revisions"),
    pytest.param("rev1", {"rev1"}, {"svc", "config", "route", "rev2"}, id="a revision owns nothing"),
    pytest.param("route", {"route"}, {"svc", "config", "rev1", "rev2"}, id="the route owns nothing"),
])
def test_delete_cascades_to_owned_objects(store: Store, target: str, gone: set[str], kept: set[str]) -> None:
    tree = _serving_tree(store)
    kinds = {"svc": k.SERVICE, "config": k.CONFIGURATION, "route": k.ROUTE, "rev1": k.REVISION, "rev2": k.REVISION}
    # Bystanders: another service's objects, and a same-named service in another namespace.
    other = store.create(k.SERVICE, ksvc("other"))
    other_config = store.create(k.CONFIGURATION, owned(k.CONFIGURATION, "other", other))
    elsewhere = store.create(k.SERVICE, ksvc("hello", namespace="team"))

    deleted = store.delete(kinds[target], "default", tree[target]["metadata"]["name"])

    assert deleted == tree[target]
    for key in gone:
        assert store.get(kinds[key], "default", tree[key]["metadata"]["name"]) is None, key
    for key in kept:
        assert store.get(kinds[key], "default", tree[key]["metadata"]["name"]) == tree[key], key
    assert store.get(k.SERVICE, "default", "other") == other
    assert store.get(k.CONFIGURATION, "default", "other") == other_config
    assert store.get(k.SERVICE, "team", "hello") == elsewhere


def test_delete_of_a_missing_object_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.delete(k.SERVICE, "default", "ghost")


def test_ownership_is_by_uid_not_by_name(store: Store) -> None:
    """An orphan of an earlier object named `hello` is not owned by today's `hello`."""
    earlier = {**ksvc(), "metadata": {"name": "hello", "uid": "uid-of-an-earlier-hello"}}
    orphan = store.create(k.CONFIGURATION, owned(k.CONFIGURATION, "hello", earlier))
    store.create(k.SERVICE, ksvc())
    store.delete(k.SERVICE, "default", "hello")
    assert store.get(k.CONFIGURATION, "default", "hello") == orphan


def test_an_object_with_another_live_owner_survives(store: Store) -> None:
    first = store.create(k.SERVICE, ksvc("first"))
    second = store.create(k.SERVICE, ksvc("second"))
    store.create(k.CONFIG_MAP, owned(k.CONFIG_MAP, "shared", first, second))
    store.delete(k.SERVICE, "default", "first")
    kept = store.get(k.CONFIG_MAP, "default", "shared")
    assert kept is not None
    assert [ref["uid"] for ref in kept["metadata"]["ownerReferences"]] == [second["metadata"]["uid"]]
    store.delete(k.SERVICE, "default", "second")
    assert store.get(k.CONFIG_MAP, "default", "shared") is None


# -- watch -------------------------------------------------------------------------------------------


Op = Callable[[Store], object]


def _create(resource: Resource, kind: Kind = k.SERVICE) -> Op:
    return lambda s: s.create(kind, resource)


def _apply(*items: tuple[Kind, Resource]) -> Op:
    return lambda s: s.apply(list(items))


def _status(status: dict[str, Any]) -> Op:
    return lambda s: s.put_status(k.SERVICE, "default", "hello", status)


@dataclass(frozen=True)
class WatchCase:
    name: str
    ops: list[Op]
    events: list[tuple[str, str, str]]


ADDED = ("ADDED", "Service", "hello")
MODIFIED = ("MODIFIED", "Service", "hello")

WATCH_CASES = [
    WatchCase("create", [_create(ksvc())], [ADDED]),
    WatchCase("spec update", [_create(ksvc()), lambda s: s.replace(k.SERVICE, ksvc(image="./b"))], [ADDED, MODIFIED]),
    WatchCase("label update", [_create(ksvc()), _apply((k.SERVICE, ksvc(labels={"a": "b"})))], [ADDED, MODIFIED]),
    WatchCase("no-op apply", [_create(ksvc()), _apply((k.SERVICE, ksvc()))], [ADDED]),
    WatchCase("status write", [_create(ksvc()), _status({"url": "x"})], [ADDED, MODIFIED]),
    WatchCase("same status twice", [_create(ksvc()), _status({"url": "x"}), _status({"url": "x"})],
              [ADDED, MODIFIED]),
    WatchCase("delete", [_create(ksvc()), lambda s: s.delete(k.SERVICE, "default", "hello")],
              [ADDED, ("DELETED", "Service", "hello")]),
    WatchCase("batch apply: one event per changed item, in order",
              [_create(config_map("a", {}), k.CONFIG_MAP),
               _apply((k.CONFIG_MAP, config_map("a", {})), (k.CONFIG_MAP, config_map("b", {})), (k.SERVICE, ksvc()))],
              [("ADDED", "ConfigMap", "a"), ("ADDED", "ConfigMap", "b"), ADDED]),
    WatchCase("a refused create publishes nothing", [_create(ksvc()), lambda s: _refused(s)], [ADDED]),
]


def _refused(store: Store) -> None:
    with pytest.raises(Conflict):
        store.create(k.SERVICE, ksvc())


@pytest.mark.parametrize("case", WATCH_CASES, ids=lambda c: c.name)
def test_watch_events(store: Store, case: WatchCase) -> None:
    events = store.subscribe()
    for op in case.ops:
        op(store)
    assert drain(events) == case.events


def test_a_cascade_delete_publishes_every_deleted_object(store: Store) -> None:
    _serving_tree(store)
    events = store.subscribe()
    store.delete(k.SERVICE, "default", "hello")
    got = drain(events)
    assert sorted(got) == sorted([
        ("DELETED", "Service", "hello"), ("DELETED", "Configuration", "hello"), ("DELETED", "Route", "hello"),
        ("DELETED", "Revision", "hello-00001"), ("DELETED", "Revision", "hello-00002"),
    ])
    # Dependents go before their owner, so a watcher never sees a child outlive its parent.
    assert got.index(("DELETED", "Revision", "hello-00001")) < got.index(("DELETED", "Configuration", "hello"))
    assert got[-1] == ("DELETED", "Service", "hello")


def test_an_event_carries_the_stored_object_and_its_key(store: Store) -> None:
    events = store.subscribe()
    created = store.create(k.SERVICE, ksvc(namespace="team"))
    status = store.put_status(k.SERVICE, "team", "hello", {"url": "x"})
    store.delete(k.SERVICE, "team", "hello")
    added, modified, deleted = (events.get_nowait() for _ in range(3))
    assert (added.type, added.resource) == ("ADDED", created)
    assert (modified.type, modified.resource) == ("MODIFIED", status)
    assert (deleted.type, deleted.resource) == ("DELETED", status)  # the last state before deletion
    assert added.key == (k.SERVICE, "team", "hello")


def test_every_subscriber_sees_every_event_until_it_unsubscribes(store: Store) -> None:
    first, second = store.subscribe(), store.subscribe()
    store.create(k.SERVICE, ksvc("a"))
    store.unsubscribe(second)
    store.create(k.SERVICE, ksvc("b"))
    store.unsubscribe(second)  # twice is harmless
    assert drain(first) == [("ADDED", "Service", "a"), ("ADDED", "Service", "b")]
    assert drain(second) == [("ADDED", "Service", "a")]
