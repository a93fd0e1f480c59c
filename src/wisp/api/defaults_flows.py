"""Defaulting of channels, subscriptions and flows, as knative/eventing's webhook does it.

A Channel, Sequence or Parallel without `channelTemplate` takes the one the `default-ch-webhook` ConfigMap
(`knative-eventing` namespace, key `default-ch-config`) names for its namespace, else the cluster default,
else Knative's own: an InMemoryChannel.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from wisp.api.errors import FieldError, ManifestError
from wisp.types import Resource

EVENTING_NAMESPACE = "knative-eventing"
DEFAULT_CH_WEBHOOK = "default-ch-webhook"
DEFAULT_CH_CONFIG_KEY = "default-ch-config"
SUBSCRIBABLE_ANNOTATION = "messaging.knative.dev/subscribable"
IMC_TEMPLATE: dict[str, Any] = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"}
# A ConfigMap's value is bounded by the API's body limit; this bounds what is parsed as YAML from it.
_MAX_CONFIG_BYTES = 64 * 1024


@dataclass(frozen=True)
class ChannelDefaults:
    """The channel template per namespace, and for every other namespace."""

    cluster_default: Mapping[str, Any] = field(default_factory=lambda: dict(IMC_TEMPLATE))
    namespace_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def template_for(self, namespace: str) -> dict[str, Any]:
        return copy.deepcopy(dict(self.namespace_defaults.get(namespace, self.cluster_default)))


def _template(value: object, path: str, errors: list[FieldError]) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        errors.append(FieldError(path, "must be an object with apiVersion and kind"))
        return None
    for key in ("apiVersion", "kind"):
        if not isinstance(value.get(key), str) or not value[key]:
            errors.append(FieldError(f"{path}.{key}", "missing field(s)"))
    spec = value.get("spec")
    if spec is not None and not isinstance(spec, dict):
        errors.append(FieldError(f"{path}.spec", "must be an object"))
    unknown = sorted(set(value) - {"apiVersion", "kind", "spec"})
    if unknown:
        errors.append(FieldError(f"{path}.{unknown[0]}", "unknown field"))
    return {k: v for k, v in value.items() if k in ("apiVersion", "kind", "spec")}


def parse_default_ch_config(data: Mapping[str, str]) -> ChannelDefaults:
    """`default-ch-webhook`'s data → ChannelDefaults; ManifestError naming the bad key."""
    text = data.get(DEFAULT_CH_CONFIG_KEY)
    if text is None:
        return ChannelDefaults()
    where = f"data[{DEFAULT_CH_CONFIG_KEY}]"
    if len(text.encode()) > _MAX_CONFIG_BYTES:
        raise ManifestError([FieldError(where, f"longer than {_MAX_CONFIG_BYTES} bytes")])
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError([FieldError(where, f"not YAML: {exc}")]) from None
    if parsed is None:
        return ChannelDefaults()
    if not isinstance(parsed, dict):
        raise ManifestError([FieldError(where, "must be a mapping with clusterDefault and namespaceDefaults")])
    errors: list[FieldError] = []
    cluster = IMC_TEMPLATE
    if parsed.get("clusterDefault") is not None:
        cluster = _template(parsed["clusterDefault"], f"{where}.clusterDefault", errors) or IMC_TEMPLATE
    namespaces: dict[str, Mapping[str, Any]] = {}
    raw_namespaces = parsed.get("namespaceDefaults") or {}
    if not isinstance(raw_namespaces, dict):
        errors.append(FieldError(f"{where}.namespaceDefaults", "must be a mapping of namespace to template"))
        raw_namespaces = {}
    for namespace, value in raw_namespaces.items():
        template = _template(value, f"{where}.namespaceDefaults[{namespace}]", errors)
        if template is not None:
            namespaces[str(namespace)] = template
    unknown = sorted(set(parsed) - {"clusterDefault", "namespaceDefaults"})
    if unknown:
        errors.append(FieldError(f"{where}.{unknown[0]}", "unknown field"))
    if errors:
        raise ManifestError(errors)
    return ChannelDefaults(cluster, namespaces)


# -- defaulters -------------------------------------------------------------------------------------------


def _mapping(parent: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def _destination(dest: object, namespace: str) -> None:
    """Knative's Destination defaulting: a ref without namespace takes the object's."""
    if not isinstance(dest, dict):
        return
    ref = dest.get("ref")
    if isinstance(ref, dict) and ref.get("namespace") in (None, ""):
        ref["namespace"] = namespace


def _delivery(delivery: object, namespace: str) -> None:
    if isinstance(delivery, dict):
        _destination(delivery.get("deadLetterSink"), namespace)


def _channel_template(spec: dict[str, Any], namespace: str, config: ChannelDefaults) -> None:
    if spec.get("channelTemplate") in (None, {}):
        spec["channelTemplate"] = config.template_for(namespace)


def _subscribable(res: Resource) -> None:
    annotations = res["metadata"].get("annotations")
    if annotations is None:
        annotations = res["metadata"]["annotations"] = {}
    if isinstance(annotations, dict):
        annotations.setdefault(SUBSCRIBABLE_ANNOTATION, "v1")


def _in_memory_channel(res: Resource, namespace: str, config: ChannelDefaults) -> None:
    _subscribable(res)
    spec = _mapping(res, "spec")
    if spec is not None:
        _delivery(spec.get("delivery"), namespace)


def _kafka_channel(res: Resource, namespace: str, config: ChannelDefaults) -> None:
    _subscribable(res)
    spec = res.get("spec")
    if spec is None:
        spec = res["spec"] = {}
    if isinstance(spec, dict):
        # eventing-kafka-broker's defaults: 1 partition, replication factor 1, kept 7 days.
        for key, value in (("numPartitions", 1), ("replicationFactor", 1), ("retentionDuration", "PT168H")):
            if spec.get(key) in (None, 0, ""):
                spec[key] = value
        _delivery(spec.get("delivery"), namespace)


def _channel(res: Resource, namespace: str, config: ChannelDefaults) -> None:
    _subscribable(res)
    spec = res.get("spec")
    if spec is None:
        spec = res["spec"] = {}
    if isinstance(spec, dict):
        _channel_template(spec, namespace, config)
        _delivery(spec.get("delivery"), namespace)


def _subscription(res: Resource, namespace: str, config: ChannelDefaults) -> None:
    spec = _mapping(res, "spec")
    if spec is None:
        return
    _destination(spec.get("subscriber"), namespace)
    _destination(spec.get("reply"), namespace)
    _delivery(spec.get("delivery"), namespace)


def _sequence(res: Resource, namespace: str, config: ChannelDefaults) -> None:
    spec = _mapping(res, "spec")
    if spec is None:
        return
    _channel_template(spec, namespace, config)
    steps = spec.get("steps")
    for step in steps if isinstance(steps, list) else []:
        _destination(step, namespace)
        if isinstance(step, dict):
            _delivery(step.get("delivery"), namespace)
    _destination(spec.get("reply"), namespace)


def _parallel(res: Resource, namespace: str, config: ChannelDefaults) -> None:
    spec = _mapping(res, "spec")
    if spec is None:
        return
    _channel_template(spec, namespace, config)
    branches = spec.get("branches")
    for branch in branches if isinstance(branches, list) else []:
        if isinstance(branch, dict):
            for key in ("filter", "subscriber", "reply"):
                _destination(branch.get(key), namespace)
            _delivery(branch.get("delivery"), namespace)
    _destination(spec.get("reply"), namespace)


def _container_source(res: Resource, namespace: str, config: ChannelDefaults) -> None:
    spec = _mapping(res, "spec")
    if spec is None:
        return
    _destination(spec.get("sink"), namespace)
    pod = _mapping(_mapping(spec, "template") or {}, "spec")
    containers = (pod or {}).get("containers")
    for i, container in enumerate(containers if isinstance(containers, list) else []):
        # Knative names an unnamed container `{source}-{i}`.
        if isinstance(container, dict) and container.get("name") in (None, ""):
            container["name"] = f"{res['metadata'].get('name', '')}-{i}"


def _event_type(res: Resource, namespace: str, config: ChannelDefaults) -> None:
    spec = _mapping(res, "spec")
    if spec is not None:
        _destination({"ref": spec.get("reference")}, namespace)


def _api_server_source(res: Resource, namespace: str, config: ChannelDefaults) -> None:
    spec = _mapping(res, "spec")
    if spec is None:
        return
    if spec.get("mode") in (None, ""):
        spec["mode"] = "Reference"
    _destination(spec.get("sink"), namespace)


def _job_sink(res: Resource, namespace: str, config: ChannelDefaults) -> None:
    """Knative marks each container of the job as run in batch mode."""
    job = _mapping(_mapping(res, "spec") or {}, "job") or {}
    pod = _mapping(_mapping(_mapping(job, "spec") or {}, "template") or {}, "spec") or {}
    containers = pod.get("containers")
    for container in containers if isinstance(containers, list) else []:
        if not isinstance(container, dict):
            continue
        env = container.get("env")
        if env is None:
            env = container["env"] = []
        if isinstance(env, list) and not any(isinstance(e, dict) and e.get("name") == "K_EXECUTION_MODE"
                                             for e in env):
            env.append({"name": "K_EXECUTION_MODE", "value": "batch"})


FLOW_DEFAULTERS: dict[tuple[str, str], Callable[[Resource, str, ChannelDefaults], None]] = {
    ("messaging.knative.dev", "InMemoryChannel"): _in_memory_channel,
    ("messaging.knative.dev", "Channel"): _channel,
    ("messaging.knative.dev", "KafkaChannel"): _kafka_channel,
    ("messaging.knative.dev", "Subscription"): _subscription,
    ("flows.knative.dev", "Sequence"): _sequence,
    ("flows.knative.dev", "Parallel"): _parallel,
    ("sources.knative.dev", "ContainerSource"): _container_source,
    ("eventing.knative.dev", "EventType"): _event_type,
    ("sources.knative.dev", "ApiServerSource"): _api_server_source,
    ("sinks.knative.dev", "JobSink"): _job_sink,
}
