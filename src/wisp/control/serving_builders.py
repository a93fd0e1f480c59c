"""Pure builders for Knative Serving's object graph: Service → Configuration + Route → Revisions.

Each function takes objects and returns objects or status; none touches the store, so each is table-testable.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from wisp.api.names import (
    CONFIGURATION_GENERATION_LABEL,
    CONFIGURATION_LABEL,
    CONFIGURATION_UID_LABEL,
    MANIFEST_DIR_ANNOTATION,
    SERVICE_LABEL,
    VISIBILITY_LABEL,
)
from wisp.control.conditions import Condition, get_condition, is_ready, summarize
from wisp.control.routing_state import SERVER_ANNOTATIONS
from wisp.types import Resource

# kubectl's copy of the applied manifest; Knative does not propagate it to children.
_NOT_PROPAGATED = ("kubectl.kubernetes.io/last-applied-configuration",)


@dataclass(frozen=True)
class Network:
    """How URLs are formed: Knative's `{name}.{namespace}.{domain}`, plus the ingress port when not 80."""

    domain: str = "localhost"
    port: int = 8080

    def host(self, name: str, namespace: str) -> str:
        return f"{name}.{namespace}.{self.domain}"

    def url(self, host: str) -> str:
        return f"http://{host}" if self.port == 80 else f"http://{host}:{self.port}"


def cluster_local_host(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def owner_reference(owner: Resource) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
    }


def _child_metadata(owner: Resource, name: str, labels: dict[str, str]) -> dict[str, Any]:
    meta = owner["metadata"]
    annotations = {k: v for k, v in meta.get("annotations", {}).items() if k not in _NOT_PROPAGATED}
    out: dict[str, Any] = {
        "name": name, "namespace": meta.get("namespace", "default"),
        "labels": {**meta.get("labels", {}), **labels},
        "ownerReferences": [owner_reference(owner)],
    }
    if annotations:
        out["annotations"] = annotations
    return out


def configuration_for(service: Resource) -> Resource:
    name = service["metadata"]["name"]
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
        "metadata": _child_metadata(service, name, {SERVICE_LABEL: name}),
        "spec": {"template": copy.deepcopy(service["spec"].get("template", {}))},
    }


def route_for(service: Resource) -> Resource:
    name = service["metadata"]["name"]
    traffic = []
    for entry in service["spec"].get("traffic") or [{"latestRevision": True, "percent": 100}]:
        item = dict(entry)
        if item.get("latestRevision"):
            item["configurationName"] = name
        traffic.append(item)
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Route",
        "metadata": _child_metadata(service, name, {SERVICE_LABEL: name}),
        "spec": {"traffic": traffic},
    }


def revision_name(configuration: Resource) -> str:
    """The template's own name, or `{configuration}-{generation:05d}` as Knative names them."""
    template_name = configuration["spec"].get("template", {}).get("metadata", {}).get("name")
    if template_name:
        return str(template_name)
    return f"{configuration['metadata']['name']}-{int(configuration['metadata']['generation']):05d}"


def revision_for(configuration: Resource) -> Resource:
    meta = configuration["metadata"]
    template = copy.deepcopy(configuration["spec"].get("template", {}))
    template_meta = template.get("metadata", {})
    labels = {
        **template_meta.get("labels", {}),
        CONFIGURATION_LABEL: meta["name"],
        CONFIGURATION_GENERATION_LABEL: str(meta["generation"]),
        CONFIGURATION_UID_LABEL: meta["uid"],
    }
    if SERVICE_LABEL in meta.get("labels", {}):
        labels[SERVICE_LABEL] = meta["labels"][SERVICE_LABEL]
    annotations = dict(template_meta.get("annotations", {}))
    if MANIFEST_DIR_ANNOTATION in meta.get("annotations", {}):
        annotations[MANIFEST_DIR_ANNOTATION] = meta["annotations"][MANIFEST_DIR_ANNOTATION]
    revision: Resource = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
        "metadata": {
            "name": revision_name(configuration), "namespace": meta.get("namespace", "default"),
            "labels": labels, "ownerReferences": [owner_reference(configuration)],
        },
        "spec": template.get("spec", {}),
    }
    if annotations:
        revision["metadata"]["annotations"] = annotations
    return revision


def same_template(revision: Resource, configuration: Resource) -> bool:
    """Whether an existing revision already holds the configuration's current template."""
    candidate = revision_for(configuration)
    # The routing state's annotations are the reconciler's, not the template's.
    annotations = {k: v for k, v in revision["metadata"].get("annotations", {}).items() if k not in SERVER_ANNOTATIONS}
    return bool(revision.get("spec") == candidate["spec"]
                and annotations == candidate["metadata"].get("annotations", {}))


def configuration_status(
    configuration: Resource, latest_created: Resource | None, revisions: list[Resource],
) -> tuple[dict[str, Any], list[Condition]]:
    """latestCreated/latestReady names and the Ready condition, as Knative's configuration reconciler sets them."""
    status: dict[str, Any] = {"observedGeneration": configuration["metadata"]["generation"]}
    previous_ready = configuration.get("status", {}).get("latestReadyRevisionName")
    if latest_created is None:
        return status, [Condition.unknown("Ready", "Deploying", "waiting for the revision to be created")]
    created_name = latest_created["metadata"]["name"]
    status["latestCreatedRevisionName"] = created_name
    ready_names = {r["metadata"]["name"] for r in revisions if is_ready(r)}
    if created_name in ready_names:
        status["latestReadyRevisionName"] = created_name
        return status, [Condition.true("Ready")]
    if previous_ready in ready_names:
        status["latestReadyRevisionName"] = previous_ready
    failed = get_condition(latest_created, "Ready")
    if failed is not None and failed.get("status") == "False":
        message = f'Revision "{created_name}" failed with message: {failed.get("message", "")}.'
        return status, [Condition.false("Ready", "RevisionFailed", message)]
    return status, [Condition.unknown("Ready", "", f'Waiting for revision "{created_name}" to become ready.')]


@dataclass(frozen=True)
class ResolvedTarget:
    revision: str
    percent: int
    tag: str | None
    latest: bool


def resolve_traffic(
    route: Resource, configurations: dict[str, Resource], revisions: dict[str, Resource],
) -> tuple[list[ResolvedTarget], Condition]:
    """Each traffic entry with its concrete revision, and the AllTrafficAssigned condition."""
    targets: list[ResolvedTarget] = []
    waiting: Condition | None = None
    for index, entry in enumerate(route["spec"].get("traffic", [])):
        percent = int(entry.get("percent", 0) or 0)
        tag = entry.get("tag")
        if entry.get("latestRevision"):
            config_name = entry.get("configurationName", route["metadata"]["name"])
            config = configurations.get(config_name)
            if config is None:
                return [], Condition.false("AllTrafficAssigned", "ConfigurationMissing",
                                           f'Configuration "{config_name}" referenced in traffic not found.')
            latest = config.get("status", {}).get("latestReadyRevisionName")
            if not latest:
                ready = get_condition(config, "Ready")
                if ready is not None and ready.get("status") == "False":
                    return [], Condition.false("AllTrafficAssigned", ready.get("reason", "RevisionFailed"),
                                               ready.get("message", ""))
                waiting = waiting or Condition.unknown(
                    "AllTrafficAssigned", "RevisionMissing",
                    f'Configuration "{config_name}" is waiting for a Revision to become ready.')
                continue
            targets.append(ResolvedTarget(latest, percent, tag, True))
        else:
            name = entry.get("revisionName", "")
            revision = revisions.get(name)
            if revision is None:
                return [], Condition.false(
                    "AllTrafficAssigned", "RevisionMissing",
                    f'spec.traffic[{index}].revisionName: Revision "{name}" referenced in traffic not found.')
            if not is_ready(revision):
                ready = get_condition(revision, "Ready")
                if ready is not None and ready.get("status") == "False":
                    return [], Condition.false("AllTrafficAssigned", "RevisionFailed",
                                               f'Revision "{name}" failed: {ready.get("message", "")}')
                waiting = waiting or Condition.unknown("AllTrafficAssigned", "RevisionMissing",
                                                       f'Revision "{name}" is not ready yet.')
                continue
            targets.append(ResolvedTarget(name, percent, tag, False))
    if waiting is not None:
        return [], waiting
    return targets, Condition.true("AllTrafficAssigned")


def route_url(route: Resource, network: Network) -> str:
    meta = route["metadata"]
    if meta.get("labels", {}).get(VISIBILITY_LABEL) == "cluster-local":
        return f"http://{cluster_local_host(meta['name'], meta.get('namespace', 'default'))}"
    return network.url(network.host(meta["name"], meta.get("namespace", "default")))


def tag_host(tag: str, name: str, namespace: str, network: Network, cluster_local: bool) -> str:
    return cluster_local_host(f"{tag}-{name}", namespace) if cluster_local else network.host(f"{tag}-{name}", namespace)


def route_status_traffic(route: Resource, targets: list[ResolvedTarget], network: Network) -> list[dict[str, Any]]:
    meta = route["metadata"]
    local = meta.get("labels", {}).get(VISIBILITY_LABEL) == "cluster-local"
    out = []
    for target in targets:
        item: dict[str, Any] = {"revisionName": target.revision, "percent": target.percent,
                                "latestRevision": target.latest}
        if target.tag:
            item["tag"] = target.tag
            host = tag_host(target.tag, meta["name"], meta.get("namespace", "default"), network, local)
            item["url"] = f"http://{host}" if local else network.url(host)
        out.append(item)
    return out


def service_status(
    service: Resource, configuration: Resource | None, route: Resource | None,
) -> tuple[dict[str, Any], list[Condition]]:
    status: dict[str, Any] = {"observedGeneration": service["metadata"]["generation"]}
    conditions = []
    if configuration is None:
        conditions.append(Condition.unknown("ConfigurationsReady", "Deploying"))
    else:
        cstatus = configuration.get("status", {})
        for field in ("latestCreatedRevisionName", "latestReadyRevisionName"):
            if field in cstatus:
                status[field] = cstatus[field]
        conditions.append(_as(get_condition(configuration, "Ready"), "ConfigurationsReady")
                          if _observed(configuration) else _out_of_date("ConfigurationsReady", "Configuration"))
    if route is None:
        conditions.append(Condition.unknown("RoutesReady", "Deploying"))
    else:
        rstatus = route.get("status", {})
        for field in ("url", "address", "traffic"):
            if field in rstatus:
                status[field] = rstatus[field]
        latest_ready = (configuration or {}).get("status", {}).get("latestReadyRevisionName")
        behind = [t for t in rstatus.get("traffic", []) if t.get("latestRevision")
                  and latest_ready and t.get("revisionName") != latest_ready]
        if not _observed(route):
            conditions.append(_out_of_date("RoutesReady", "Route"))
        elif behind:  # Knative's TrafficNotMigrated: Ready only once the latest ready revision gets the traffic
            conditions.append(Condition.unknown("RoutesReady", "TrafficNotMigrated",
                                                f'Traffic is not yet migrated to {latest_ready}.'))
        else:
            conditions.append(_as(get_condition(route, "Ready"), "RoutesReady"))
    return status, [*conditions, summarize("Ready", conditions)]


def _observed(resource: Resource) -> bool:
    """Its status is about its current spec (Knative's Service trusts a child's Ready only then); a status
    that names no generation is taken as it is."""
    status = resource.get("status", {})
    return "observedGeneration" not in status or status["observedGeneration"] == resource["metadata"].get(
        "generation")


def _out_of_date(type_: str, what: str) -> Condition:
    return Condition.unknown(type_, "OutOfDate", f"The {what} is still working to reflect the latest desired "
                             "specification.")


def _as(condition: dict[str, Any] | None, type_: str) -> Condition:
    if condition is None:
        return Condition.unknown(type_, "Deploying")
    return Condition(type_, condition.get("status", "Unknown"), condition.get("reason", ""),
                     condition.get("message", ""))
