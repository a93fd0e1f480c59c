"""Defaulting, as Knative's and Kubernetes' mutating webhooks do it, before validation.

`apply_defaults` is pure: it returns a new resource and leaves its argument untouched.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wisp.api.defaults_flows import FLOW_DEFAULTERS, ChannelDefaults
from wisp.api.names import BROKER_CLASS_ANNOTATION, BROKER_LABEL, WORKLOAD_CLASS_ANNOTATION
from wisp.api.shape import shape_error, without_nulls
from wisp.types import Resource

DEFAULT_NAMESPACE = "default"
USER_CONTAINER_NAME = "user-container"
DEFAULT_TIMEOUT_SECONDS = 300
DEFAULT_BROKER_CLASS = "MTChannelBasedBroker"
ALIYUN_WORKLOAD_CLASS_ANNOTATION = "workload.serving.knative.aliyun.com/class"
KAFKA_SOURCE_STORAGE_VERSION = "sources.knative.dev/v1beta1"

# The seed platform's workload classes, as wisp names them.
_ALIYUN_CLASSES = {"fc": "function", "eci": "container"}

_CLUSTER_SCOPED = {("v1", "Namespace")}


@dataclass(frozen=True)
class RevisionDefaults:
    """The `config-defaults` values that fill a revision template (Knative's defaults unless configured)."""

    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    container_concurrency: int = 0


def apply_defaults(resource: Resource, revision_defaults: RevisionDefaults | None = None, *,
                   channel_defaults: ChannelDefaults | None = None) -> Resource:
    """A copy of `resource` with every default Knative (or Kubernetes) would fill in.

    Explicit nulls are dropped first, as the API server prunes them. Defaults are filled only where a field
    is absent: a field of the wrong type is left as it is, for validation to name.
    """
    if shape_error(resource) is not None:
        return dict(resource)  # too deep to walk, or not text: validation refuses it
    out: Resource = without_nulls(resource)
    meta = out.setdefault("metadata", {})
    api_version, kind = out.get("apiVersion"), out.get("kind")
    if not isinstance(meta, dict) or not isinstance(api_version, str) or not isinstance(kind, str):
        return out  # validation names the field
    if (api_version, kind) not in _CLUSTER_SCOPED and _unset(meta, "namespace"):
        meta["namespace"] = DEFAULT_NAMESPACE
    key = (api_version.rpartition("/")[0], kind)
    serving = _SERVING_DEFAULTERS.get(key)
    if serving is not None:
        serving(out, revision_defaults or RevisionDefaults())
    defaulter = _DEFAULTERS.get(key)
    if defaulter is not None:
        defaulter(out)
    flow = FLOW_DEFAULTERS.get(key)
    if flow is not None:
        flow(out, str(meta.get("namespace") or DEFAULT_NAMESPACE), channel_defaults or ChannelDefaults())
    return out


# -- serving ---------------------------------------------------------------------------------------


def _service(res: Resource, rd: RevisionDefaults) -> None:
    spec = _mapping(res, "spec")
    if spec is None:
        return
    template = _mapping(spec, "template")
    if template is not None:
        _revision_template(template, res, rd)
    _traffic(spec, service=True)


def _configuration(res: Resource, rd: RevisionDefaults) -> None:
    spec = _mapping(res, "spec")
    template = _mapping(spec, "template") if spec is not None else None
    if template is not None:
        _revision_template(template, res, rd)


def _revision(res: Resource, rd: RevisionDefaults) -> None:
    spec = _mapping(res, "spec")
    if spec is not None:
        _revision_spec(spec, rd)


def _route(res: Resource) -> None:
    if "spec" not in res:
        res["spec"] = {}  # Knative always writes a Route's spec, if empty: its reconciler may rely on it
    spec = _mapping(res, "spec")
    if spec is not None:
        _traffic(spec, service=False)


def _revision_template(template: dict[str, Any], owner: Resource, rd: RevisionDefaults) -> None:
    meta = template.get("metadata")
    if meta is None:
        meta = template["metadata"] = {}
    if isinstance(meta, dict):
        _workload_class(meta, owner)
    spec = _mapping(template, "spec")
    if spec is not None:
        _revision_spec(spec, rd)


def _workload_class(template_meta: dict[str, Any], owner: Resource) -> None:
    """wisp's own annotation wins; else the seed platform's (template first, then Service); else container."""
    annotations = template_meta.get("annotations")
    if annotations is None:
        annotations = template_meta["annotations"] = {}
    if not isinstance(annotations, dict):
        return
    owner_annotations = owner["metadata"].get("annotations")
    owner_annotations = owner_annotations if isinstance(owner_annotations, dict) else {}
    for source in (annotations, owner_annotations):
        if not _unset(source, WORKLOAD_CLASS_ANNOTATION):
            annotations[WORKLOAD_CLASS_ANNOTATION] = source[WORKLOAD_CLASS_ANNOTATION]
            return
    for source in (annotations, owner_annotations):
        seed_class = source.get(ALIYUN_WORKLOAD_CLASS_ANNOTATION)
        if isinstance(seed_class, str) and seed_class:
            # An unknown seed class is kept verbatim so validation can name it.
            annotations[WORKLOAD_CLASS_ANNOTATION] = _ALIYUN_CLASSES.get(seed_class.lower(), seed_class)
            return
    annotations[WORKLOAD_CLASS_ANNOTATION] = "container"


def _revision_spec(spec: dict[str, Any], rd: RevisionDefaults) -> None:
    spec.setdefault("containerConcurrency", rd.container_concurrency)
    spec.setdefault("timeoutSeconds", rd.timeout_seconds)
    spec.setdefault("enableServiceLinks", False)
    containers = spec.get("containers")
    if not isinstance(containers, list):
        return
    for i, container in enumerate(containers):
        if not isinstance(container, dict):
            continue
        if _unset(container, "name"):
            container["name"] = USER_CONTAINER_NAME if len(containers) == 1 else f"{USER_CONTAINER_NAME}-{i}"
        if len(containers) == 1 or container.get("ports"):
            _readiness_probe(container)  # Knative probes only the serving container
    _read_only_mounts(spec, containers)


def _read_only_mounts(spec: dict[str, Any], containers: list[Any]) -> None:
    """Knative makes every mount of a volume other than emptyDir (Secret, ConfigMap, projected) readOnly."""
    volumes = spec.get("volumes")
    writable = {v.get("name") for v in volumes if isinstance(v, dict) and "emptyDir" in v} \
        if isinstance(volumes, list) else set()
    for container in containers:
        mounts = container.get("volumeMounts") if isinstance(container, dict) else None
        for mount in mounts if isinstance(mounts, list) else []:
            # A wrongly typed name or readOnly is left for validation to name, not defaulted over.
            if not isinstance(mount, dict) or not isinstance(mount.get("name"), str):
                continue
            if mount["name"] not in writable and isinstance(mount.get("readOnly", False), bool):
                mount["readOnly"] = True


def _readiness_probe(container: dict[str, Any]) -> None:
    probe = container.get("readinessProbe")
    if probe is None:
        probe = container["readinessProbe"] = {}
    if not isinstance(probe, dict):
        return
    if not any(probe.get(h) is not None for h in ("httpGet", "tcpSocket", "exec", "grpc")):
        probe["tcpSocket"] = {"port": 0}
    threshold = probe.get("successThreshold")
    if threshold is None or (type(threshold) is int and threshold == 0):  # not False, which is no integer
        probe["successThreshold"] = 1
    if probe.get("periodSeconds"):  # Kubernetes' own defaults apply once a period is set
        probe.setdefault("failureThreshold", 3)
        probe.setdefault("timeoutSeconds", 1)


def _traffic(spec: dict[str, Any], *, service: bool) -> None:
    if service and spec.get("traffic") in (None, []):
        spec["traffic"] = [{"latestRevision": True, "percent": 100}]
    traffic = spec.get("traffic")
    if not isinstance(traffic, list):
        return
    for target in traffic:
        if isinstance(target, dict) and target.get("latestRevision") is None:
            target["latestRevision"] = not target.get("revisionName")


def _domain_mapping(res: Resource) -> None:
    spec = _mapping(res, "spec")
    ref = _mapping(spec, "ref") if spec is not None else None
    if ref is not None and _unset(ref, "namespace"):
        ref["namespace"] = res["metadata"]["namespace"]


# -- eventing --------------------------------------------------------------------------------------


def _kafka_source(res: Resource) -> None:
    # v1alpha1 (the seed) and v1 (Knative's docs) share v1beta1's schema; the store keeps v1beta1.
    seed = res.get("apiVersion") == "sources.knative.dev/v1alpha1"
    if seed or res.get("apiVersion") == "sources.knative.dev/v1":
        res["apiVersion"] = KAFKA_SOURCE_STORAGE_VERSION
    spec = _mapping(res, "spec")
    if spec is None:
        return
    for field in ("topics", "bootstrapServers"):
        if seed and isinstance(spec.get(field), str):  # only the seed's v1alpha1 writes them comma-separated
            spec[field] = [part.strip() for part in spec[field].split(",") if part.strip()]
    meta = res["metadata"]
    if _unset(spec, "consumerGroup"):
        # Knative generates a random uuid; a name-derived group keeps offsets across re-applies.
        spec["consumerGroup"] = f"knative-kafka-source-{meta.get('uid') or meta.get('name')}"
    spec.setdefault("initialOffset", "latest")
    spec.setdefault("consumers", 1)
    spec.setdefault("ordering", "ordered")
    _destination(spec, "sink", meta["namespace"])
    _delivery(spec, meta["namespace"])


def _ping_source(res: Resource) -> None:
    spec = _mapping(res, "spec")
    if spec is None:
        return
    spec.setdefault("schedule", "* * * * *")
    if spec.get("data") is not None and _unset(spec, "contentType"):
        spec["contentType"] = "application/json" if _is_json(spec["data"]) else "text/plain"
    _destination(spec, "sink", res["metadata"]["namespace"])


def _sink_binding(res: Resource) -> None:
    spec = _mapping(res, "spec")
    if spec is None:
        return
    namespace = res["metadata"]["namespace"]
    _destination(spec, "sink", namespace)
    subject = _mapping(spec, "subject")
    if subject is not None and _unset(subject, "namespace"):
        subject["namespace"] = namespace


def _broker(res: Resource) -> None:
    meta = res["metadata"]
    annotations = meta.get("annotations")
    if annotations is None:
        annotations = meta["annotations"] = {}
    if isinstance(annotations, dict) and _unset(annotations, BROKER_CLASS_ANNOTATION):
        annotations[BROKER_CLASS_ANNOTATION] = DEFAULT_BROKER_CLASS
    spec = res.get("spec")
    if spec is None:
        spec = res["spec"] = {}
    if isinstance(spec, dict):
        _delivery(spec, meta["namespace"])


def _trigger(res: Resource) -> None:
    spec = _mapping(res, "spec")
    if spec is None:
        return
    namespace = res["metadata"]["namespace"]
    if _unset(spec, "broker"):
        spec["broker"] = "default"
    labels = res["metadata"].get("labels")
    if labels is None:
        labels = res["metadata"]["labels"] = {}
    if isinstance(labels, dict) and isinstance(spec["broker"], str):
        labels.setdefault(BROKER_LABEL, spec["broker"])
    _destination(spec, "subscriber", namespace)
    _delivery(spec, namespace)


def _destination(parent: dict[str, Any], field: str, namespace: str) -> None:
    """Knative's Destination defaulting; a bare object reference (v1alpha1 style) becomes `ref`."""
    dest = parent.get(field)
    if not isinstance(dest, dict):
        return
    if "ref" not in dest and "uri" not in dest and {"kind", "name"} & dest.keys():
        dest = parent[field] = {"ref": dest}
    ref = dest.get("ref")
    if isinstance(ref, dict) and _unset(ref, "namespace"):
        ref["namespace"] = namespace


def _delivery(spec: dict[str, Any], namespace: str) -> None:
    delivery = spec.get("delivery")
    if isinstance(delivery, dict):
        _destination(delivery, "deadLetterSink", namespace)


# -- core ------------------------------------------------------------------------------------------


def _secret(res: Resource) -> None:
    """Kubernetes merges `stringData` into `data` (base64), stringData winning, and drops it."""
    string_data = res.get("stringData")
    data = res.get("data", {})
    if not isinstance(string_data, dict) or not isinstance(data, dict):
        return
    if not all(isinstance(v, str) for v in string_data.values()):
        return  # left as written, for validation to name the value that is not a string
    merged: dict[str, Any] = dict(data)
    for key, value in string_data.items():
        merged[key] = base64.b64encode(value.encode()).decode()
    res["data"] = merged
    del res["stringData"]


def _unset(parent: dict[str, Any], field: str) -> bool:
    """Absent or empty: where Knative fills a default. A value of the wrong type is kept, for validation."""
    return parent.get(field) in (None, "")


def _mapping(parent: dict[str, Any], field: str) -> dict[str, Any] | None:
    value = parent.get(field)
    return value if isinstance(value, dict) else None


def _is_json(data: object) -> bool:
    if not isinstance(data, str):
        return False
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


_SERVING_DEFAULTERS: dict[tuple[str, str], Callable[[Resource, RevisionDefaults], None]] = {
    ("serving.knative.dev", "Service"): _service,
    ("serving.knative.dev", "Configuration"): _configuration,
    ("serving.knative.dev", "Revision"): _revision,
}
_DEFAULTERS: dict[tuple[str, str], Callable[[Resource], None]] = {
    ("serving.knative.dev", "Route"): _route,
    ("serving.knative.dev", "DomainMapping"): _domain_mapping,
    ("sources.knative.dev", "KafkaSource"): _kafka_source,
    ("sources.knative.dev", "PingSource"): _ping_source,
    ("sources.knative.dev", "SinkBinding"): _sink_binding,
    ("eventing.knative.dev", "Broker"): _broker,
    ("eventing.knative.dev", "Trigger"): _trigger,
    ("", "Secret"): _secret,
}
