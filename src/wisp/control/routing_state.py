"""Which Revisions some Route targets: Knative's labeler (pkg/reconciler/labeler), as pure functions.

A Revision is `active` while a Route's traffic names it, in its status (what is served) or its spec (what is
wanted); a `latestRevision` target also names its Configuration's latest *created* Revision, so a new
Revision is active before it is ready and the switch to it is smooth. A Revision is `pending` from its
creation until it is first routed, and `reserve` once no Route targets it any more. Only a reserve Revision
is unreachable (Knative's PodAutoscaler reachability: active is Reachable, pending Unknown, which keeps
min-scale): the autoscaler takes it to zero whatever its min-scale and its function template is stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from wisp.api.names import ROUTES_ANNOTATION, ROUTING_STATE_LABEL, ROUTING_STATE_MODIFIED_ANNOTATION
from wisp.api.timestamps import rfc3339
from wisp.types import Resource

ACTIVE, PENDING, RESERVE = "active", "pending", "reserve"
# Written by the reconciler, not part of the template a Revision was made from.
SERVER_ANNOTATIONS = (ROUTING_STATE_MODIFIED_ANNOTATION, ROUTES_ANNOTATION)


def targets_of(route: Resource, configurations: Mapping[str, Resource]) -> set[str]:
    """The names of the Revisions one Route targets."""
    names: set[str] = set()
    traffic = [*(route.get("status", {}).get("traffic") or []), *(route.get("spec", {}).get("traffic") or [])]
    for entry in traffic:
        if not isinstance(entry, dict):
            continue
        if entry.get("revisionName"):
            names.add(str(entry["revisionName"]))
        if entry.get("latestRevision"):
            # A status entry names its revision; a spec entry names the configuration (the Route's own by default).
            config_name = entry.get("configurationName") or route["metadata"]["name"]
            latest = configurations.get(config_name, {}).get("status", {}).get("latestCreatedRevisionName")
            if latest:
                names.add(str(latest))
    return names


def routes_by_revision(routes: Iterable[Resource], configurations: Mapping[str, Resource]) -> dict[str, set[str]]:
    """Revision name → the names of the Routes that target it (all in one namespace)."""
    out: dict[str, set[str]] = {}
    for route in routes:
        for revision in targets_of(route, configurations):
            out.setdefault(revision, set()).add(route["metadata"]["name"])
    return out


def next_state(current: str | None, routed: bool) -> str:
    """A routed Revision is active; one never routed yet stays pending; any other is reserve (also one without
    the label: made before wisp kept it, or applied on its own)."""
    if routed:
        return ACTIVE
    return PENDING if current == PENDING else RESERVE


def reachable(state: str | None) -> bool:
    return state != RESERVE


def state_of(revision: Resource) -> str | None:
    labels = revision["metadata"].get("labels") or {}
    state = labels.get(ROUTING_STATE_LABEL)
    return state if isinstance(state, str) else None


def as_created(revision: Resource, now: float) -> Resource:
    """A Revision the Configuration is about to create: pending, as Knative's configuration reconciler makes it."""
    meta = revision["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), ROUTING_STATE_LABEL: PENDING}
    meta["annotations"] = {**(meta.get("annotations") or {}), ROUTING_STATE_MODIFIED_ANNOTATION: rfc3339(now)}
    return revision


def relabelled(revision: Resource, routes: set[str], now: float) -> Resource | None:
    """The Revision with its routing state for these targeting Routes, or None when nothing changes. The
    modified time moves only when the state does."""
    meta = revision["metadata"]
    labels: dict[str, Any] = meta.get("labels") or {}
    annotations: dict[str, Any] = meta.get("annotations") or {}
    state = next_state(state_of(revision), bool(routes))
    new_labels = {**labels, ROUTING_STATE_LABEL: state}
    new_annotations = {k: v for k, v in annotations.items() if k != ROUTES_ANNOTATION}
    if routes:
        new_annotations[ROUTES_ANNOTATION] = ",".join(sorted(routes))
    if state != labels.get(ROUTING_STATE_LABEL) or ROUTING_STATE_MODIFIED_ANNOTATION not in annotations:
        new_annotations[ROUTING_STATE_MODIFIED_ANNOTATION] = rfc3339(now)
    if new_labels == labels and new_annotations == annotations:
        return None
    return {**revision, "metadata": {**meta, "labels": new_labels, "annotations": new_annotations}}


def referenced(route: Resource) -> tuple[set[str], set[str]]:
    """The Configuration and Revision names a Route's traffic names, in its spec and its status: what its
    reconcile reads, and whose change may change it."""
    name = route["metadata"]["name"]
    configurations: set[str] = set()
    revisions: set[str] = set()
    for entry in [*(route.get("status", {}).get("traffic") or []), *(route.get("spec", {}).get("traffic") or [])]:
        if not isinstance(entry, dict):
            continue
        if entry.get("revisionName"):
            revisions.add(str(entry["revisionName"]))
        if entry.get("latestRevision"):
            # Both readings: resolve_traffic takes a present-but-empty name as it is, targets_of falls back.
            configurations.add(str(entry.get("configurationName", name)))
            configurations.add(str(entry.get("configurationName") or name))
    return configurations, revisions


class RouteIndex:
    """Which Routes name which Configurations and Revisions (from the Routes' store events), and which
    Revisions each Route targets (as last labelled), per namespace: a change then touches only the Routes
    and Revisions it concerns, not every one in the namespace. A namespace is loaded from the store once."""

    def __init__(self) -> None:
        self.refs_loaded: set[str] = set()
        self.targets_loaded: set[str] = set()
        self._refs: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
        self._by_configuration: dict[tuple[str, str], set[str]] = {}
        self._by_revision: dict[tuple[str, str], set[str]] = {}
        self._targets: dict[tuple[str, str], set[str]] = {}
        self._by_target: dict[tuple[str, str], set[str]] = {}

    # -- what each Route names -------------------------------------------------------------------
    def set_refs(self, namespace: str, route: str, configurations: set[str], revisions: set[str]) -> None:
        self.drop_refs(namespace, route)
        self._refs[(namespace, route)] = (configurations, revisions)
        for name in configurations:
            self._by_configuration.setdefault((namespace, name), set()).add(route)
        for name in revisions:
            self._by_revision.setdefault((namespace, name), set()).add(route)

    def drop_refs(self, namespace: str, route: str) -> None:
        configurations, revisions = self._refs.pop((namespace, route), (set(), set()))
        _unlink(self._by_configuration, namespace, configurations, route)
        _unlink(self._by_revision, namespace, revisions, route)

    def routes_naming(self, namespace: str, configurations: Iterable[str], revisions: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for name in configurations:
            out |= self._by_configuration.get((namespace, name), set())
        for name in revisions:
            out |= self._by_revision.get((namespace, name), set())
        return out

    # -- what each Route targets -----------------------------------------------------------------
    def set_targets(self, namespace: str, route: str, revisions: set[str]) -> set[str]:
        """Record what the Route targets now; returns what it targeted before."""
        previous = self._targets.pop((namespace, route), set())
        _unlink(self._by_target, namespace, previous, route)
        if revisions:
            self._targets[(namespace, route)] = set(revisions)
            for name in revisions:
                self._by_target.setdefault((namespace, name), set()).add(route)
        return previous

    def targeting(self, namespace: str, revision: str) -> set[str]:
        """The names of the Routes that target the Revision."""
        return set(self._by_target.get((namespace, revision), set()))


def _unlink(index: dict[tuple[str, str], set[str]], namespace: str, names: Iterable[str], route: str) -> None:
    for name in names:
        routes = index.get((namespace, name))
        if routes is not None:
            routes.discard(route)
            if not routes:
                del index[(namespace, name)]
