"""Routing state from Routes (Knative's labeler), table-driven: which Revisions are active, pending, reserve."""

from __future__ import annotations

from typing import Any

import pytest

from wisp.api.names import (
    CONFIGURATION_LABEL,
    ROUTES_ANNOTATION,
    ROUTING_STATE_LABEL,
    ROUTING_STATE_MODIFIED_ANNOTATION,
)
from wisp.control import routing_state as rs
from wisp.control import serving_builders as b
from wisp.types import Resource

NOW = 1_700_000_000.0
STAMP = "2023-11-14T22:13:20Z"


def route(name: str = "hello", spec: list[dict[str, Any]] | None = None,
          status: list[dict[str, Any]] | None = None) -> Resource:
    out: Resource = {"metadata": {"name": name, "namespace": "default"},
                     "spec": {"traffic": spec if spec is not None else []}}
    if status is not None:
        out["status"] = {"traffic": status}
    return out


def config(name: str, latest_created: str | None) -> Resource:
    status = {"latestCreatedRevisionName": latest_created} if latest_created else {}
    return {"metadata": {"name": name, "namespace": "default"}, "status": status}


LATEST = {"latestRevision": True, "configurationName": "hello", "percent": 100}
CONFIGS = {"hello": config("hello", "hello-00003"), "other": config("other", "other-00001")}


@pytest.mark.parametrize(
    ("routes", "want"),
    [
        # A Service's route: what it serves (status) and the latest created revision, ready or not.
        ([route(spec=[LATEST], status=[{"revisionName": "hello-00002", "latestRevision": True, "percent": 100}])],
         {"hello-00002": {"hello"}, "hello-00003": {"hello"}}),
        # Once the latest is ready and served, the one before is no longer targeted.
        ([route(spec=[LATEST], status=[{"revisionName": "hello-00003", "latestRevision": True, "percent": 100}])],
         {"hello-00003": {"hello"}}),
        # Pinned revisions, a 0 % tag included; the spec's target before the status has it.
        ([route(spec=[{"revisionName": "hello-00001", "percent": 100},
                      {"revisionName": "hello-00002", "percent": 0, "tag": "old"}],
                status=[{"revisionName": "hello-00003", "percent": 100}])],
         {"hello-00001": {"hello"}, "hello-00002": {"hello"}, "hello-00003": {"hello"}}),
        # latestRevision without a configurationName is the route's own configuration.
        ([route(spec=[{"latestRevision": True, "percent": 100}])], {"hello-00003": {"hello"}}),
        # A configuration with no revision yet, or none at all, targets nothing.
        ([route("other", spec=[{"latestRevision": True, "configurationName": "missing", "percent": 100}])], {}),
        ([route("fresh", spec=[{"latestRevision": True, "percent": 100}])], {}),
        # Two routes on one revision.
        ([route(spec=[LATEST]), route("second", spec=[{"revisionName": "hello-00003", "percent": 100}])],
         {"hello-00003": {"hello", "second"}}),
        # Garbage in a traffic list is ignored, not fatal.
        ([route(spec=["nonsense", {"percent": 100}])], {}),  # type: ignore[list-item]
    ],
)
def test_routes_by_revision(routes: list[Resource], want: dict[str, set[str]]) -> None:
    assert rs.routes_by_revision(routes, CONFIGS) == want


@pytest.mark.parametrize(
    ("current", "routed", "want", "reachable"),
    [
        (None, True, rs.ACTIVE, True),
        (rs.PENDING, True, rs.ACTIVE, True),
        (rs.RESERVE, True, rs.ACTIVE, True),  # pinned back
        (rs.ACTIVE, True, rs.ACTIVE, True),
        (rs.PENDING, False, rs.PENDING, True),  # new, not routed yet: reachable (Knative: Unknown)
        (rs.ACTIVE, False, rs.RESERVE, False),  # the route moved on
        (rs.RESERVE, False, rs.RESERVE, False),
        (None, False, rs.RESERVE, False),  # unlabelled and unrouted (older state, or applied on its own)
    ],
)
def test_next_state_and_reachability(current: str | None, routed: bool, want: str, reachable: bool) -> None:
    assert rs.next_state(current, routed) == want
    assert rs.reachable(want) is reachable


def revision(state: str | None = None, annotations: dict[str, str] | None = None) -> Resource:
    labels = {CONFIGURATION_LABEL: "hello"}
    if state is not None:
        labels[ROUTING_STATE_LABEL] = state
    return {"metadata": {"name": "hello-00001", "namespace": "default", "labels": labels,
                         "annotations": dict(annotations or {})},
            "spec": {}, "status": {"conditions": []}}


@pytest.mark.parametrize(
    ("before", "routes", "state", "annotations"),
    [
        (revision(rs.PENDING, {ROUTING_STATE_MODIFIED_ANNOTATION: "earlier"}), {"hello"}, rs.ACTIVE,
         {ROUTING_STATE_MODIFIED_ANNOTATION: STAMP, ROUTES_ANNOTATION: "hello"}),
        (revision(rs.ACTIVE, {ROUTING_STATE_MODIFIED_ANNOTATION: "earlier", ROUTES_ANNOTATION: "hello"}), set(),
         rs.RESERVE, {ROUTING_STATE_MODIFIED_ANNOTATION: STAMP}),
        # Another route joins: the list changes, the state (and its time) does not.
        (revision(rs.ACTIVE, {ROUTING_STATE_MODIFIED_ANNOTATION: "earlier", ROUTES_ANNOTATION: "hello"}), {"b", "a"},
         rs.ACTIVE, {ROUTING_STATE_MODIFIED_ANNOTATION: "earlier", ROUTES_ANNOTATION: "a,b"}),
        (revision(None, {"keep": "me"}), set(), rs.RESERVE, {"keep": "me", ROUTING_STATE_MODIFIED_ANNOTATION: STAMP}),
    ],
)
def test_relabelled(before: Resource, routes: set[str], state: str, annotations: dict[str, str]) -> None:
    after = rs.relabelled(before, routes, NOW)
    assert after is not None
    assert rs.state_of(after) == state
    assert after["metadata"]["labels"][CONFIGURATION_LABEL] == "hello"  # other labels kept
    assert after["metadata"]["annotations"] == annotations
    assert after["status"] == before["status"] and after["spec"] == before["spec"]
    assert rs.relabelled(after, routes, NOW + 60) is None  # settled: no write


def test_a_created_revision_is_pending() -> None:
    created = rs.as_created(revision(), NOW)
    assert rs.state_of(created) == rs.PENDING and rs.reachable(rs.PENDING)
    assert created["metadata"]["annotations"][ROUTING_STATE_MODIFIED_ANNOTATION] == STAMP


def test_routing_annotations_do_not_make_a_template_differ() -> None:
    configuration: Resource = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
        "metadata": {"name": "hello", "namespace": "default", "uid": "u", "generation": 1},
        "spec": {"template": {"metadata": {"annotations": {"a": "1"}}, "spec": {"containers": [{"image": "./x"}]}}},
    }
    existing = rs.relabelled(rs.as_created(b.revision_for(configuration), NOW), {"hello"}, NOW)
    assert existing is not None and b.same_template(existing, configuration)
