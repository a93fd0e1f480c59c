"""The pure Serving builders, table-driven as knative/serving tests its resources/ package.

Service → Configuration + Route (children labelled and owned, kubectl's last-applied annotation not copied),
Configuration → Revision (`{configuration}-{generation:05d}` or the template's own name), traffic resolution
(latestRevision, named revisions, tags, splits, what is missing or not ready), and the statuses Knative reports.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from wisp.api import kinds as k
from wisp.api.names import (
    CONFIGURATION_GENERATION_LABEL,
    CONFIGURATION_LABEL,
    CONFIGURATION_UID_LABEL,
    MANIFEST_DIR_ANNOTATION,
    SERVICE_LABEL,
    VISIBILITY_LABEL,
)
from wisp.control import serving_builders as b
from wisp.control.conditions import Condition
from wisp.control.serving_builders import Network, ResolvedTarget
from wisp.store import Store
from wisp.types import Resource

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
TEMPLATE: dict[str, Any] = {"metadata": {"annotations": {"autoscaling.knative.dev/max-scale": "3"}},
                            "spec": {"containers": [{"image": "./app", "env": [{"name": "A", "value": "1"}]}]}}


def service(
    name: str = "hello", namespace: str = "default", template: dict[str, Any] | None = None,
    traffic: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Resource:
    """A Service as the store holds it (uid, generation)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {"template": copy.deepcopy(TEMPLATE if template is None else template)}
    if traffic is not None:
        spec["traffic"] = traffic
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": meta, "spec": spec}


def owner_ref(kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": kind, "name": name, "uid": f"uid-{name}",
            "controller": True, "blockOwnerDeletion": True}


def configuration(
    name: str = "hello", generation: int = 1, template: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
) -> Resource:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": generation,
                            "labels": {SERVICE_LABEL: name} if labels is None else labels}
    if annotations is not None:
        meta["annotations"] = annotations
    out: Resource = {"apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "metadata": meta,
                     "spec": {"template": copy.deepcopy(TEMPLATE if template is None else template)}}
    if status is not None:
        out["status"] = status
    return out


def ready(status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": status, "reason": reason, "message": message}]}


def revision(name: str, status: str | None = "True", message: str = "") -> Resource:
    out: Resource = {"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
                     "metadata": {"name": name, "namespace": "default"}, "spec": {}}
    if status is not None:
        out["status"] = ready(status, "" if status == "True" else "ContainerMissing", message)
    return out


# -- Service → Configuration, Route -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildCase:
    name: str
    service: Resource
    metadata: dict[str, Any]


CHILD_CASES = [
    ChildCase("bare service: service label, controller owner reference", service(), {
        "name": "hello", "namespace": "default", "labels": {SERVICE_LABEL: "hello"},
        "ownerReferences": [owner_ref("Service", "hello")],
    }),
    ChildCase("labels and annotations propagate; kubectl's last-applied does not",
              service(labels={"team": "a", VISIBILITY_LABEL: "cluster-local"},
                      annotations={"note": "x", LAST_APPLIED: "{}"}), {
        "name": "hello", "namespace": "default",
        "labels": {"team": "a", VISIBILITY_LABEL: "cluster-local", SERVICE_LABEL: "hello"},
        "annotations": {"note": "x"}, "ownerReferences": [owner_ref("Service", "hello")],
    }),
    ChildCase("only kubectl's annotation: no annotations at all", service(annotations={LAST_APPLIED: "{}"}), {
        "name": "hello", "namespace": "default", "labels": {SERVICE_LABEL: "hello"},
        "ownerReferences": [owner_ref("Service", "hello")],
    }),
    ChildCase("a user's service label is overwritten", service("api", "team", labels={SERVICE_LABEL: "x"}), {
        "name": "api", "namespace": "team", "labels": {SERVICE_LABEL: "api"},
        "ownerReferences": [owner_ref("Service", "api")],
    }),
]


@pytest.mark.parametrize("case", CHILD_CASES, ids=lambda c: c.name)
def test_configuration_for(case: ChildCase) -> None:
    before = copy.deepcopy(case.service)
    got = b.configuration_for(case.service)
    assert got == {"apiVersion": "serving.knative.dev/v1", "kind": "Configuration", "metadata": case.metadata,
                   "spec": {"template": case.service["spec"]["template"]}}
    got["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert case.service == before  # a copy, not the service's own template


@pytest.mark.parametrize("case", CHILD_CASES, ids=lambda c: c.name)
def test_route_metadata_is_the_configurations(case: ChildCase) -> None:
    assert b.route_for(case.service)["metadata"] == case.metadata


LATEST_100 = {"latestRevision": True, "percent": 100, "configurationName": "hello"}


@pytest.mark.parametrize(("traffic", "expected"), [
    pytest.param(None, [LATEST_100], id="no traffic: all to the latest revision"),
    pytest.param([], [LATEST_100], id="empty traffic: all to the latest revision"),
    pytest.param([{"latestRevision": True, "percent": 100}], [LATEST_100], id="explicit latest"),
    pytest.param(
        [{"latestRevision": True, "percent": 80}, {"revisionName": "hello-00001", "percent": 20}],
        [{"latestRevision": True, "percent": 80, "configurationName": "hello"},
         {"revisionName": "hello-00001", "percent": 20}],
        id="split: latest and a named revision"),
    pytest.param(
        [{"tag": "current", "revisionName": "hello-00002", "percent": 100},
         {"tag": "latest", "latestRevision": True, "percent": 0}],
        [{"tag": "current", "revisionName": "hello-00002", "percent": 100},
         {"tag": "latest", "latestRevision": True, "percent": 0, "configurationName": "hello"}],
        id="tags kept"),
    pytest.param(
        [{"latestRevision": False, "revisionName": "hello-00001", "percent": 100}],
        [{"latestRevision": False, "revisionName": "hello-00001", "percent": 100}],
        id="latestRevision false: a named revision"),
])
def test_route_for_traffic(traffic: list[dict[str, Any]] | None, expected: list[dict[str, Any]]) -> None:
    svc = service(traffic=traffic)
    before = copy.deepcopy(svc)
    route = b.route_for(svc)
    assert (route["apiVersion"], route["kind"]) == ("serving.knative.dev/v1", "Route")
    assert route["spec"] == {"traffic": expected}
    assert svc == before


# -- Configuration → Revision -------------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "expected"), [
    pytest.param(configuration(generation=1), "hello-00001", id="generation 1"),
    pytest.param(configuration(generation=12), "hello-00012", id="generation 12"),
    pytest.param(configuration(generation=99999), "hello-99999", id="generation 99999"),
    pytest.param(configuration(generation=100000), "hello-100000", id="past five digits"),
    pytest.param(configuration("api", generation=3), "api-00003", id="named after the configuration"),
    pytest.param(configuration(generation=4, template={"metadata": {"name": "hello-blue"}, "spec": {}}),
                 "hello-blue", id="the template's metadata.name"),
    pytest.param(configuration(generation=4, template={"metadata": {"name": ""}, "spec": {}}),
                 "hello-00004", id="an empty template name"),
])
def test_revision_name(config: Resource, expected: str) -> None:
    assert b.revision_name(config) == expected


def test_revision_for() -> None:
    config = configuration(
        generation=2,
        template={"metadata": {"labels": {"app": "x"}, "annotations": {"a": "1"}},
                  "spec": {"containerConcurrency": 5, "containers": [{"image": "./app"}]}},
        labels={SERVICE_LABEL: "hello", "team": "a"},
        annotations={MANIFEST_DIR_ANNOTATION: "/srv/manifests", "note": "not propagated"},
    )
    before = copy.deepcopy(config)
    got = b.revision_for(config)
    assert got == {
        "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
        "metadata": {
            "name": "hello-00002", "namespace": "default",
            "labels": {"app": "x", CONFIGURATION_LABEL: "hello", CONFIGURATION_GENERATION_LABEL: "2",
                       CONFIGURATION_UID_LABEL: "uid-hello", SERVICE_LABEL: "hello"},
            "annotations": {"a": "1", MANIFEST_DIR_ANNOTATION: "/srv/manifests"},
            "ownerReferences": [owner_ref("Configuration", "hello")],
        },
        "spec": {"containerConcurrency": 5, "containers": [{"image": "./app"}]},
    }
    got["spec"]["containers"][0]["image"] = "changed"
    assert config == before


@pytest.mark.parametrize(("config", "labels", "annotations"), [
    pytest.param(configuration(labels={}, template={"spec": {}}),
                 {CONFIGURATION_LABEL: "hello", CONFIGURATION_GENERATION_LABEL: "1",
                  CONFIGURATION_UID_LABEL: "uid-hello"},
                 None, id="a bare configuration: no service label, no annotations"),
    pytest.param(configuration(labels={}, template={"metadata": {"labels": {CONFIGURATION_LABEL: "forged"}},
                                                    "spec": {}}),
                 {CONFIGURATION_LABEL: "hello", CONFIGURATION_GENERATION_LABEL: "1",
                  CONFIGURATION_UID_LABEL: "uid-hello"},
                 None, id="the template cannot forge the configuration label"),
])
def test_revision_labels(config: Resource, labels: dict[str, str], annotations: dict[str, str] | None) -> None:
    meta = b.revision_for(config)["metadata"]
    assert meta["labels"] == labels
    assert meta.get("annotations") == annotations


@pytest.mark.parametrize(("template", "same"), [
    pytest.param(TEMPLATE, True, id="the same template"),
    pytest.param({**TEMPLATE, "spec": {"containers": [{"image": "./other"}]}}, False, id="spec changed"),
    pytest.param({**TEMPLATE, "metadata": {"annotations": {"autoscaling.knative.dev/max-scale": "9"}}}, False,
                 id="annotations changed"),
    pytest.param({**TEMPLATE, "metadata": {**TEMPLATE["metadata"], "labels": {"x": "y"}}}, True,
                 id="labels only: the same template"),
])
def test_same_template(template: dict[str, Any], same: bool) -> None:
    existing = b.revision_for(configuration())
    assert b.same_template(existing, configuration(template=template)) is same


def test_revision_names_follow_the_configuration_generation_in_the_store() -> None:
    """Service edits through the real store: only a template change makes a new revision name."""
    store = Store(None, lambda: 0.0)
    store.open()

    def apply_service(svc: Resource) -> str:
        [stored] = store.apply([(k.SERVICE, svc)])
        [config] = store.apply([(k.CONFIGURATION, b.configuration_for(stored.resource))])
        return b.revision_name(config.resource)

    base = service()  # its uid and generation are the server's: the store ignores them
    steps: list[tuple[str, Resource, str]] = [
        ("first apply", base, "hello-00001"),
        ("a label on the service", {**base, "metadata": {"name": "hello", "labels": {"team": "a"}}}, "hello-00001"),
        ("traffic only", {**base, "spec": {**base["spec"], "traffic": [{"latestRevision": True, "percent": 100}]}},
         "hello-00001"),
        ("a new image", {**base, "spec": {"template": {"spec": {"containers": [{"image": "./v2"}]}}}}, "hello-00002"),
        ("a template annotation", {**base, "spec": {"template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/max-scale": "9"}},
            "spec": {"containers": [{"image": "./v2"}]}}}}, "hello-00003"),
    ]
    got = [(what, apply_service(svc)) for what, svc, _ in steps]
    store.put_status(k.CONFIGURATION, "default", "hello", {"observedGeneration": 3})
    got.append(("a status write", b.revision_name(store.get(k.CONFIGURATION, "default", "hello") or {})))
    assert got == [(what, name) for what, _, name in steps] + [("a status write", "hello-00003")]
    store.close()


# -- Configuration status -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigStatusCase:
    name: str
    previous_ready: str | None
    latest: Resource | None
    revisions: list[Resource]
    status: dict[str, Any]
    condition: Condition


CONFIG_STATUS_CASES = [
    ConfigStatusCase("no revision yet", None, None, [], {"observedGeneration": 2},
                     Condition.unknown("Ready", "Deploying", "waiting for the revision to be created")),
    ConfigStatusCase("the latest is ready", None, revision("hello-00002"), [revision("hello-00002")],
                     {"observedGeneration": 2, "latestCreatedRevisionName": "hello-00002",
                      "latestReadyRevisionName": "hello-00002"}, Condition.true("Ready")),
    ConfigStatusCase("the latest is deploying; the previous stays ready", "hello-00001",
                     revision("hello-00002", "Unknown"), [revision("hello-00001"), revision("hello-00002", "Unknown")],
                     {"observedGeneration": 2, "latestCreatedRevisionName": "hello-00002",
                      "latestReadyRevisionName": "hello-00001"},
                     Condition.unknown("Ready", "", 'Waiting for revision "hello-00002" to become ready.')),
    ConfigStatusCase("the latest has no conditions yet", None, revision("hello-00002", None),
                     [revision("hello-00002", None)],
                     {"observedGeneration": 2, "latestCreatedRevisionName": "hello-00002"},
                     Condition.unknown("Ready", "", 'Waiting for revision "hello-00002" to become ready.')),
    ConfigStatusCase("the latest failed", "hello-00001", revision("hello-00002", "False", "image not found"),
                     [revision("hello-00001"), revision("hello-00002", "False", "image not found")],
                     {"observedGeneration": 2, "latestCreatedRevisionName": "hello-00002",
                      "latestReadyRevisionName": "hello-00001"},
                     Condition.false("Ready", "RevisionFailed",
                                     'Revision "hello-00002" failed with message: image not found.')),
    ConfigStatusCase("the previous ready one is ready no more", "hello-00001", revision("hello-00002", "Unknown"),
                     [revision("hello-00001", "False"), revision("hello-00002", "Unknown")],
                     {"observedGeneration": 2, "latestCreatedRevisionName": "hello-00002"},
                     Condition.unknown("Ready", "", 'Waiting for revision "hello-00002" to become ready.')),
    ConfigStatusCase("the previous ready one was deleted", "hello-00001", revision("hello-00002", "Unknown"),
                     [revision("hello-00002", "Unknown")],
                     {"observedGeneration": 2, "latestCreatedRevisionName": "hello-00002"},
                     Condition.unknown("Ready", "", 'Waiting for revision "hello-00002" to become ready.')),
]


@pytest.mark.parametrize("case", CONFIG_STATUS_CASES, ids=lambda c: c.name)
def test_configuration_status(case: ConfigStatusCase) -> None:
    previous = {} if case.previous_ready is None else {"latestReadyRevisionName": case.previous_ready}
    config = configuration(generation=2, status=previous)
    assert b.configuration_status(config, case.latest, case.revisions) == (case.status, [case.condition])


# -- traffic ------------------------------------------------------------------------------------------------


def route(traffic: list[dict[str, Any]], name: str = "hello", labels: dict[str, str] | None = None) -> Resource:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Route",
            "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
            "spec": {"traffic": traffic}}


def cfg_with(latest_ready: str | None = None, ready_status: str | None = None, reason: str = "",
             message: str = "") -> Resource:
    status: dict[str, Any] = ready(ready_status, reason, message) if ready_status else {}
    if latest_ready:
        status["latestReadyRevisionName"] = latest_ready
    return configuration(status=status)


LATEST = {"latestRevision": True, "configurationName": "hello", "percent": 100}
READY_CONFIG = {"hello": cfg_with("hello-00002", "True")}
REVISIONS = {"hello-00001": revision("hello-00001"), "hello-00002": revision("hello-00002"),
             "hello-00003": revision("hello-00003", "Unknown"),
             "hello-00004": revision("hello-00004", "False", "exit 1")}
ALL_ASSIGNED = Condition.true("AllTrafficAssigned")


@dataclass(frozen=True)
class TrafficCase:
    name: str
    traffic: list[dict[str, Any]]
    targets: list[ResolvedTarget]
    condition: Condition
    configurations: dict[str, Resource] = field(default_factory=lambda: dict(READY_CONFIG))


# wisp's wording where it differs from Knative's route_lifecycle.go, which says reason RevisionMissing with
# `Configuration "x" does not have any ready Revision.`, `Revision "x" is not yet ready.` and
# `Revision "x" failed to become ready.`: wisp passes the failure's own reason and message on.
TRAFFIC_CASES = [
    TrafficCase("latest ready revision", [LATEST], [ResolvedTarget("hello-00002", 100, None, True)], ALL_ASSIGNED),
    TrafficCase("latest without configurationName: the route's own", [{"latestRevision": True, "percent": 100}],
                [ResolvedTarget("hello-00002", 100, None, True)], ALL_ASSIGNED),
    TrafficCase("split 90/10 between latest and a named revision",
                [{**LATEST, "percent": 90}, {"revisionName": "hello-00001", "percent": 10}],
                [ResolvedTarget("hello-00002", 90, None, True), ResolvedTarget("hello-00001", 10, None, False)],
                ALL_ASSIGNED),
    TrafficCase("tags, with a 0% tagged target",
                [{"revisionName": "hello-00001", "percent": 100, "tag": "stable"},
                 {**LATEST, "percent": 0, "tag": "candidate"}],
                [ResolvedTarget("hello-00001", 100, "stable", False),
                 ResolvedTarget("hello-00002", 0, "candidate", True)], ALL_ASSIGNED),
    TrafficCase("no percent is 0%", [{"revisionName": "hello-00001", "tag": "t"}],
                [ResolvedTarget("hello-00001", 0, "t", False)], ALL_ASSIGNED),
    TrafficCase("the same revision twice", [{"revisionName": "hello-00001", "percent": 50},
                                            {"revisionName": "hello-00001", "percent": 50, "tag": "b"}],
                [ResolvedTarget("hello-00001", 50, None, False), ResolvedTarget("hello-00001", 50, "b", False)],
                ALL_ASSIGNED),
    TrafficCase("no traffic at all", [], [], ALL_ASSIGNED),
    TrafficCase("a missing configuration", [{**LATEST, "configurationName": "nope"}], [],
                Condition.false("AllTrafficAssigned", "ConfigurationMissing",
                                'Configuration "nope" referenced in traffic not found.')),
    TrafficCase("a configuration with no ready revision yet", [LATEST], [],
                Condition.unknown("AllTrafficAssigned", "RevisionMissing",
                                  'Configuration "hello" is waiting for a Revision to become ready.'),
                {"hello": cfg_with(None, "Unknown")}),
    TrafficCase("a configuration whose only revision failed", [LATEST], [],
                Condition.false("AllTrafficAssigned", "RevisionFailed", "boom"),
                {"hello": cfg_with(None, "False", "RevisionFailed", "boom")}),
    TrafficCase("a failed latest with an older ready revision: traffic stays on it", [LATEST],
                [ResolvedTarget("hello-00001", 100, None, True)], ALL_ASSIGNED,
                {"hello": cfg_with("hello-00001", "False", "RevisionFailed", "boom")}),
    TrafficCase("a missing revision", [{**LATEST, "percent": 50}, {"revisionName": "gone", "percent": 50}], [],
                Condition.false("AllTrafficAssigned", "RevisionMissing",
                                'spec.traffic[1].revisionName: Revision "gone" referenced in traffic not found.')),
    TrafficCase("a revision not ready yet", [{"revisionName": "hello-00003", "percent": 100}], [],
                Condition.unknown("AllTrafficAssigned", "RevisionMissing", 'Revision "hello-00003" is not ready yet.')),
    TrafficCase("a failed revision", [{"revisionName": "hello-00004", "percent": 100}], [],
                Condition.false("AllTrafficAssigned", "RevisionFailed", 'Revision "hello-00004" failed: exit 1')),
    TrafficCase("waiting, then missing: missing wins",
                [{"revisionName": "hello-00003", "percent": 50}, {"revisionName": "gone", "percent": 50}], [],
                Condition.false("AllTrafficAssigned", "RevisionMissing",
                                'spec.traffic[1].revisionName: Revision "gone" referenced in traffic not found.')),
    TrafficCase("one ready, one waiting: nothing is assigned yet",
                [{"revisionName": "hello-00001", "percent": 50}, {"revisionName": "hello-00003", "percent": 50}], [],
                Condition.unknown("AllTrafficAssigned", "RevisionMissing", 'Revision "hello-00003" is not ready yet.')),
]


@pytest.mark.parametrize("case", TRAFFIC_CASES, ids=lambda c: c.name)
def test_resolve_traffic(case: TrafficCase) -> None:
    assert b.resolve_traffic(route(case.traffic), case.configurations, REVISIONS) == (case.targets, case.condition)


@pytest.mark.parametrize(("network", "labels", "url", "tag_url"), [
    pytest.param(Network(), {}, "http://hello.default.localhost:8080",
                 "http://stable-hello.default.localhost:8080", id="default network"),
    pytest.param(Network("example.com", 80), {}, "http://hello.default.example.com",
                 "http://stable-hello.default.example.com", id="port 80 is not written"),
    pytest.param(Network("example.com", 80), {VISIBILITY_LABEL: "cluster-local"},
                 "http://hello.default.svc.cluster.local", "http://stable-hello.default.svc.cluster.local",
                 id="cluster-local"),
])
def test_route_urls(network: Network, labels: dict[str, str], url: str, tag_url: str) -> None:
    rt = route([], labels=labels)
    assert b.route_url(rt, network) == url
    targets = [ResolvedTarget("hello-00001", 90, "stable", False), ResolvedTarget("hello-00002", 10, None, True)]
    assert b.route_status_traffic(rt, targets, network) == [
        {"revisionName": "hello-00001", "percent": 90, "latestRevision": False, "tag": "stable", "url": tag_url},
        {"revisionName": "hello-00002", "percent": 10, "latestRevision": True},
    ]


# -- Service status -----------------------------------------------------------------------------------------


def with_status(resource: Resource, status: dict[str, Any]) -> Resource:
    return {**resource, "status": status}


ROUTE_STATUS = {"url": "http://hello.default.localhost:8080", "address": {"url": "http://hello.default.svc"},
                "traffic": [{"revisionName": "hello-00001", "percent": 100, "latestRevision": True}]}
CONFIG_STATUS = {"latestCreatedRevisionName": "hello-00002", "latestReadyRevisionName": "hello-00001"}


@dataclass(frozen=True)
class ServiceStatusCase:
    name: str
    configuration: Resource | None
    route: Resource | None
    status: dict[str, Any]
    conditions: list[Condition]


SERVICE_STATUS_CASES = [
    ServiceStatusCase("no children yet", None, None, {"observedGeneration": 3}, [
        Condition.unknown("ConfigurationsReady", "Deploying"), Condition.unknown("RoutesReady", "Deploying"),
        Condition.unknown("Ready", "Deploying")]),
    ServiceStatusCase("children without conditions", configuration(), route([]), {"observedGeneration": 3}, [
        Condition.unknown("ConfigurationsReady", "Deploying"), Condition.unknown("RoutesReady", "Deploying"),
        Condition.unknown("Ready", "Deploying")]),
    ServiceStatusCase("both ready: the children's fields are copied",
                      with_status(configuration(), {**CONFIG_STATUS, **ready("True")}),
                      with_status(route([]), {**ROUTE_STATUS, **ready("True")}),
                      {"observedGeneration": 3, **CONFIG_STATUS, **ROUTE_STATUS},
                      [Condition.true("ConfigurationsReady"), Condition.true("RoutesReady"), Condition.true("Ready")]),
    ServiceStatusCase("configuration failed", with_status(configuration(), ready("False", "RevisionFailed", "boom")),
                      with_status(route([]), ready("True")), {"observedGeneration": 3}, [
                          Condition.false("ConfigurationsReady", "RevisionFailed", "boom"),
                          Condition.true("RoutesReady"), Condition.false("Ready", "RevisionFailed", "boom")]),
    ServiceStatusCase("route still assigning traffic", with_status(configuration(), ready("True")),
                      with_status(route([]), ready("Unknown", "RevisionMissing", "waiting")),
                      {"observedGeneration": 3}, [
                          Condition.true("ConfigurationsReady"),
                          Condition.unknown("RoutesReady", "RevisionMissing", "waiting"),
                          Condition.unknown("Ready", "RevisionMissing", "waiting")]),
    ServiceStatusCase("failure beats unknown", with_status(configuration(), ready("Unknown", "Deploying", "")),
                      with_status(route([]), ready("False", "RevisionMissing", "gone")), {"observedGeneration": 3}, [
                          Condition.unknown("ConfigurationsReady", "Deploying"),
                          Condition.false("RoutesReady", "RevisionMissing", "gone"),
                          Condition.false("Ready", "RevisionMissing", "gone")]),
]


@pytest.mark.parametrize("case", SERVICE_STATUS_CASES, ids=lambda c: c.name)
def test_service_status(case: ServiceStatusCase) -> None:
    svc = service()
    svc["metadata"]["generation"] = 3
    assert b.service_status(svc, case.configuration, case.route) == (case.status, case.conditions)
