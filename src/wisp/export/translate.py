"""One manifest as wisp took it → the documents a Knative cluster takes (pure: no file is read or written).

What changes, and why (docs/production.md has the table):
- a KafkaSource goes to `sources.knative.dev/v1` (the seed's v1alpha1 is served by no current Knative):
  comma-separated strings become lists, a bare sink reference becomes `sink.ref`, this machine's Kafka
  becomes `--kafka`, and the seed's `k8s.aliyun.com/req-timeout|retry-count` become `spec.delivery.timeout`
  and `retry` (`retry-interval`, a fixed wait, has no Knative field: it stays an annotation);
- a Service's `image: ./dir` becomes the image built from that directory (filled in by export.py), its
  workload class annotations go (the image is what runs), its `wisp.dev/function-target` goes into the image,
  the seed's domain annotation becomes a DomainMapping;
- `*.localhost` custom domains move under `--domain`; URLs through wisp's ingress (including K_SINK's
  `/.wisp/route/` form) become cluster addresses; `wisp.dev/*` annotations and labels go;
- a Secret is not exported: its values stay on this machine, and a `kubectl create secret` line says which
  keys the cluster needs.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wisp.api import kinds
from wisp.api.errors import FieldError, ManifestError
from wisp.api.loader import LoadedDoc, is_local_image
from wisp.api.names import FUNCTION_TARGET_ANNOTATION, WORKLOAD_CLASS_ANNOTATION
from wisp.export.addresses import Addresses
from wisp.types import Resource

WISP_PREFIX = "wisp.dev/"
ALIYUN_CLASS = "workload.serving.knative.aliyun.com/class"
ALIYUN_DOMAIN = "fc.revision.serving.knative.aliyun.com/domain"
ALIYUN_TIMEOUT = "k8s.aliyun.com/req-timeout"
ALIYUN_RETRY_COUNT = "k8s.aliyun.com/retry-count"
ALIYUN_RETRY_INTERVAL = "k8s.aliyun.com/retry-interval"
_SEED_CLASSES = {"fc": "function", "eci": "container"}
DEFAULT_TIMEOUT_SECONDS = 300
KAFKA_SOURCE_VERSION = "sources.knative.dev/v1"
DOMAIN_MAPPING_VERSION = "serving.knative.dev/v1beta1"


@dataclass
class CodeUse:
    """A container whose `image: ./dir` is to become a built image."""

    container: dict[str, Any]  # in the exported document: export.py sets its `image`
    path: str  # the image field's path, for errors
    code_dir: Path
    top: Path  # the manifest's directory: local modules are looked for up to here
    workload: str  # function | container
    target: str
    command: list[str]
    env: dict[str, str]  # plain values, for the entry point check
    drain_seconds: int
    service: str
    namespace: str


@dataclass
class Translated:
    docs: list[Resource] = field(default_factory=list)
    code: list[CodeUse] = field(default_factory=list)
    secret_hints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def custom_domains(docs: list[LoadedDoc]) -> set[str]:
    """Every custom domain the manifests name: DomainMappings and the seed's domain annotation."""
    found: set[str] = set()
    for doc in docs:
        res = doc.resource
        if res.get("kind") == "DomainMapping":
            found.add(str(res["metadata"]["name"]).lower())
        for meta in _metas(res):
            domain = _seed_domain(meta.get("annotations"))
            if domain:
                found.add(domain.lower())
    return found


def local_kafka(docs: list[LoadedDoc]) -> set[str]:
    """The bootstrap servers KafkaSources name on this machine."""
    found: set[str] = set()
    for doc in docs:
        spec = doc.resource.get("spec")
        if doc.resource.get("kind") == "KafkaSource" and isinstance(spec, dict):
            found.update(_split(spec.get("bootstrapServers")))
    return found


def translate(doc: LoadedDoc, addresses: Addresses) -> Translated:
    """The documents one manifest becomes; ManifestError (with the document and field path) if it cannot."""
    res = copy.deepcopy(doc.resource)
    errors: list[FieldError] = []
    out = Translated()
    kind = res.get("kind")
    group = str(res.get("apiVersion", "")).rpartition("/")[0]
    if kind == "Secret" and group == "":
        out.secret_hints.append(_secret_hint(res))
        return out
    _strip_wisp(res)
    if kind in ("Service", "Configuration", "Revision") and group == kinds.SERVING:
        _workload(res, doc, addresses, out, errors)
    elif kind == "KafkaSource":
        _kafka_source(res, addresses, out, errors)
    elif kind == "DomainMapping":
        res["apiVersion"] = DOMAIN_MAPPING_VERSION
        res["metadata"]["name"] = addresses.domain(res["metadata"]["name"], "metadata.name", errors)
    elif kind == "ConfigMap" and group == "" and isinstance(res.get("data"), dict):
        for key, value in res["data"].items():
            if isinstance(value, str):
                res["data"][key] = addresses.value(value, f"data[{key}]", errors)
    elif kind == "Broker" and _annotations(res).get("eventing.knative.dev/broker.class") == "Kafka":
        out.notes.append(f"Broker {res['metadata']['name']}: the Kafka class needs Knative's Kafka broker "
                         "installed, its config ConfigMap naming the cluster's Kafka")
    _sinks(res, addresses, errors)
    template = res.get("spec", {}).get("template") if isinstance(res.get("spec"), dict) else None
    if isinstance(template, dict) and template.get("metadata") == {}:
        template.pop("metadata")
    if errors:
        raise ManifestError(errors, doc.where)
    out.docs.insert(0, res)
    return out


# -- serving -----------------------------------------------------------------------------------------------


def _workload(res: Resource, doc: LoadedDoc, addresses: Addresses, out: Translated, errors: list[FieldError]) -> None:
    original = doc.resource
    kind = res["kind"]
    prefix = "spec" if kind == "Revision" else "spec.template.spec"
    template = res.get("spec") if kind == "Revision" else (res.get("spec") or {}).get("template")
    if not isinstance(template, dict):
        return
    o_template = original.get("spec") if kind == "Revision" else (original.get("spec") or {}).get("template")
    o_meta = (o_template or {}).get("metadata") if kind != "Revision" else original.get("metadata")
    o_annotations = {**_annotations(original), **((o_meta or {}).get("annotations") or {})}
    workload = _workload_class(original, o_annotations)
    target = str(o_annotations.get(FUNCTION_TARGET_ANNOTATION) or "")
    pod = template.get("spec") if kind != "Revision" else template
    if not isinstance(pod, dict):
        return
    for meta in _metas(res):
        annotations = meta.get("annotations")
        if not isinstance(annotations, dict):
            continue
        annotations.pop(ALIYUN_CLASS, None)
        domain = annotations.pop(ALIYUN_DOMAIN, None)
        if isinstance(domain, str) and domain and kind == "Service":
            out.docs.append(_domain_mapping(res, domain, addresses, errors))
        if not annotations:
            meta.pop("annotations")
    timeout = pod.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)
    name = str(res["metadata"]["name"])
    namespace = str(res["metadata"].get("namespace") or "default")
    for i, container in enumerate(pod.get("containers") or []):
        if not isinstance(container, dict):
            continue
        path = f"{prefix}.containers[{i}]"
        env = _env(container, path, addresses, errors)
        image = container.get("image")
        if is_local_image(image):
            container_target = target or env.get("FUNCTION_TARGET") or "main:handle"
            command = [str(c) for c in (container.get("command") or []) + (container.get("args") or [])]
            out.code.append(CodeUse(container, f"{path}.image", (doc.directory / image).resolve(), doc.directory,
                                    workload, container_target, command, env,
                                    int(timeout) if isinstance(timeout, int) else DEFAULT_TIMEOUT_SECONDS,
                                    name, namespace))
        elif workload == "function":
            errors.append(FieldError(f"{path}.image", "a function's image must be a local directory (./dir)"))


def _workload_class(original: Resource, annotations: dict[str, Any]) -> str:
    explicit = annotations.get(WORKLOAD_CLASS_ANNOTATION)
    if explicit in ("function", "container"):
        return str(explicit)
    seed = annotations.get(ALIYUN_CLASS) or _annotations(original).get(ALIYUN_CLASS)
    return _SEED_CLASSES.get(str(seed or "").lower(), "container")


def _env(container: dict[str, Any], path: str, addresses: Addresses, errors: list[FieldError]) -> dict[str, str]:
    """Translate the container's env values in place and apply `--env`; the plain values."""
    plain: dict[str, str] = {}
    overrides = addresses.options.env
    for j, var in enumerate(container.get("env") or []):
        if not isinstance(var, dict) or not isinstance(var.get("name"), str):
            continue
        name = var["name"]
        if name in overrides:
            var.pop("valueFrom", None)
            var["value"] = overrides[name]
        elif isinstance(var.get("value"), str):
            var["value"] = addresses.value(var["value"], f"{path}.env[{j}].value", errors)
        if isinstance(var.get("value"), str):
            plain[name] = var["value"]
    return plain


def _domain_mapping(service: Resource, raw: str, addresses: Addresses, errors: list[FieldError]) -> Resource:
    domain = str(json.loads(raw).get("domain"))  # validated by wisp when it was applied
    meta: dict[str, Any] = {"name": addresses.domain(domain.lower(), f"metadata.annotations[{ALIYUN_DOMAIN}]",
                                                     errors)}
    if service["metadata"].get("namespace"):
        meta["namespace"] = service["metadata"]["namespace"]
    return {
        "apiVersion": DOMAIN_MAPPING_VERSION,
        "kind": "DomainMapping",
        "metadata": meta,
        "spec": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                         "name": service["metadata"]["name"]}},
    }


# -- eventing ----------------------------------------------------------------------------------------------


def _kafka_source(res: Resource, addresses: Addresses, out: Translated, errors: list[FieldError]) -> None:
    res["apiVersion"] = KAFKA_SOURCE_VERSION
    spec = res.get("spec")
    if not isinstance(spec, dict):
        return
    for key in ("bootstrapServers", "topics"):
        if isinstance(spec.get(key), str):
            spec[key] = _split(spec[key])
    if isinstance(spec.get("bootstrapServers"), list):
        spec["bootstrapServers"] = addresses.kafka([str(s) for s in spec["bootstrapServers"]],
                                                   "spec.bootstrapServers", errors)
    sink = spec.get("sink")
    if isinstance(sink, dict) and "kind" in sink and "ref" not in sink:  # v1alpha1: the sink is the reference
        spec["sink"] = {"ref": sink}
    annotations = res["metadata"].get("annotations")
    if not isinstance(annotations, dict):
        return
    delivery = spec.setdefault("delivery", {}) if isinstance(spec.get("delivery", {}), dict) else None
    if delivery is not None:
        timeout = annotations.pop(ALIYUN_TIMEOUT, None)
        if timeout is not None:
            delivery["timeout"] = _iso_seconds(str(timeout))
        retries = annotations.pop(ALIYUN_RETRY_COUNT, None)
        if retries is not None:
            delivery["retry"] = int(float(str(retries)))
        if not delivery:
            spec.pop("delivery")
    if ALIYUN_RETRY_INTERVAL in annotations:
        out.notes.append(f"KafkaSource {res['metadata']['name']}: {ALIYUN_RETRY_INTERVAL} (a fixed wait between "
                         "retries) has no Knative field and stays an annotation; Knative waits as "
                         "spec.delivery.backoffPolicy/backoffDelay say")
    if not annotations:
        res["metadata"].pop("annotations")


def _iso_seconds(seconds: str) -> str:
    value = float(seconds)
    return f"PT{int(value)}S" if value.is_integer() else f"PT{value:g}S"


_SINK_FIELDS = (("spec", "sink"), ("spec", "subscriber"), ("spec", "delivery", "deadLetterSink"))


def _sinks(res: Resource, addresses: Addresses, errors: list[FieldError]) -> None:
    """Destinations' `uri` through wisp's ingress → the cluster's address."""
    for steps in _SINK_FIELDS:
        node: Any = res
        for step in steps:
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get("uri"), str):
            node["uri"] = addresses.url(node["uri"], ".".join(steps) + ".uri", errors)


# -- everything --------------------------------------------------------------------------------------------


def _strip_wisp(res: Resource) -> None:
    """wisp's own annotations and labels mean nothing to Knative (what they said is carried elsewhere)."""
    for meta in _metas(res):
        for key in ("annotations", "labels"):
            values = meta.get(key)
            if isinstance(values, dict):
                for name in [n for n in values if str(n).startswith(WISP_PREFIX)]:
                    values.pop(name)
                if not values:
                    meta.pop(key)


def _metas(res: Resource) -> list[dict[str, Any]]:
    metas = [res.get("metadata")]
    spec = res.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("template"), dict):
        metas.append(spec["template"].get("metadata"))
    return [m for m in metas if isinstance(m, dict)]


def _annotations(res: Resource) -> dict[str, Any]:
    meta = res.get("metadata")
    values = meta.get("annotations") if isinstance(meta, dict) else None
    return values if isinstance(values, dict) else {}


def _seed_domain(annotations: object) -> str | None:
    if not isinstance(annotations, dict) or not isinstance(annotations.get(ALIYUN_DOMAIN), str):
        return None
    try:
        value = json.loads(annotations[ALIYUN_DOMAIN])
    except ValueError:
        return None
    domain = value.get("domain") if isinstance(value, dict) else None
    return domain if isinstance(domain, str) else None


def _split(value: object) -> list[str]:
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    if isinstance(value, list):
        return [str(s) for s in value]
    return []


def _secret_hint(res: Resource) -> str:
    """`kubectl create secret` for the keys the Secret has, with placeholders: never its values."""
    meta = res["metadata"]
    keys = sorted({*(res.get("data") or {}), *(res.get("stringData") or {})})
    secret_type = str(res.get("type") or "Opaque")
    parts = ["kubectl create secret generic", str(meta["name"])]
    if meta.get("namespace"):
        parts.append(f"--namespace {meta['namespace']}")
    if secret_type != "Opaque":
        parts.append(f"--type {secret_type}")
    parts += [f"--from-literal={key}=<{key}>" for key in keys]
    return " ".join(parts)
