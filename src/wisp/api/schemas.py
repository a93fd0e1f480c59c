"""The OpenAPI v3 schema of each kind wisp serves: the single source of truth for field types.

Knative's kinds take the `openAPIV3Schema` of their vendored CRD (reference/crds/). Where a CRD is silent —
`metadata`, and subtrees marked `x-kubernetes-preserve-unknown-fields` that wisp still reads (delivery
timeouts, trigger filters, CloudEvents overrides, label selectors) — Kubernetes' and Knative's Go types fill
in here. The core v1 kinds wisp serves (ConfigMap, Secret, Namespace) have no CRD; their small schemas are
written out from Kubernetes' API types.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from wisp.api import kinds
from wisp.api.kinds import Kind

Schema = dict[str, Any]

CRD_DIR = Path(__file__).resolve().parent / "reference" / "crds"
_CRD_FILES = {
    kinds.SERVICE: "serving/service.yaml",
    kinds.CONFIGURATION: "serving/configuration.yaml",
    kinds.REVISION: "serving/revision.yaml",
    kinds.ROUTE: "serving/route.yaml",
    kinds.DOMAIN_MAPPING: "serving/domain-mapping.yaml",
    kinds.KAFKA_SOURCE: "eventing-kafka/kafkasource.yaml",
    kinds.PING_SOURCE: "eventing/pingsource.yaml",
    kinds.SINK_BINDING: "eventing/sinkbindings.yaml",
    kinds.BROKER: "eventing/broker.yaml",
    kinds.TRIGGER: "eventing/trigger.yaml",
    kinds.IN_MEMORY_CHANNEL: "eventing/in-memory-channel.yaml",
    kinds.CHANNEL: "eventing/channel.yaml",
    kinds.SUBSCRIPTION: "eventing/subscription.yaml",
    kinds.SEQUENCE: "eventing/sequence.yaml",
    kinds.PARALLEL: "eventing/parallel.yaml",
    kinds.CONTAINER_SOURCE: "eventing/containersource.yaml",
    kinds.EVENT_TYPE: "eventing/eventtype.yaml",
    kinds.API_SERVER_SOURCE: "eventing/apiserversource.yaml",
    kinds.KAFKA_CHANNEL: "eventing-kafka/kafkachannel.yaml",
    kinds.JOB_SINK: "eventing/jobsink.yaml",
}

# -- Kubernetes types --------------------------------------------------------------------------------------

STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
INT32: Schema = {"type": "integer", "format": "int32"}
INT64: Schema = {"type": "integer", "format": "int64"}
INT_OR_STRING: Schema = {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
ANY_OBJECT: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def string_map() -> Schema:
    return {"type": "object", "additionalProperties": dict(STRING)}


def array_of(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def obj(**properties: Schema) -> Schema:
    return {"type": "object", "properties": properties}


OBJECT_META: Schema = obj(
    name=STRING,
    generateName=STRING,
    namespace=STRING,
    uid=STRING,
    resourceVersion=STRING,
    selfLink=STRING,
    generation=INT64,
    creationTimestamp=STRING,
    deletionTimestamp=STRING,
    deletionGracePeriodSeconds=INT64,
    labels=string_map(),
    annotations=string_map(),
    finalizers=array_of(STRING),
    ownerReferences=array_of(
        obj(apiVersion=STRING, kind=STRING, name=STRING, uid=STRING, controller=BOOLEAN, blockOwnerDeletion=BOOLEAN)
    ),
    managedFields=array_of(ANY_OBJECT),
)
_TYPE_META: dict[str, Schema] = {"apiVersion": STRING, "kind": STRING, "metadata": OBJECT_META}

CONFIG_MAP: Schema = obj(
    **_TYPE_META, data=string_map(), binaryData=string_map(), immutable=BOOLEAN
)
SECRET: Schema = obj(
    **_TYPE_META, data=string_map(), stringData=string_map(), type=STRING, immutable=BOOLEAN
)
NAMESPACE: Schema = obj(**_TYPE_META, spec=obj(finalizers=array_of(STRING)), status=ANY_OBJECT)
_CORE: dict[Kind, Schema] = {kinds.CONFIG_MAP: CONFIG_MAP, kinds.SECRET: SECRET, kinds.NAMESPACE: NAMESPACE}


def _subscriptions_api_filter(levels: int = 4) -> Schema:
    """eventing's SubscriptionsAPIFilter: one dialect, `all`/`any`/`not` nesting filters. Unrolled to `levels`
    (a cyclic schema could not be served as OpenAPI); deeper filters stay open, as in the CRD, and Knative's
    validation (validate_filter) still checks them."""
    inner = _subscriptions_api_filter(levels - 1) if levels > 1 else ANY_OBJECT
    return obj(
        exact=string_map(),
        prefix=string_map(),
        suffix=string_map(),
        cesql=STRING,
        all=array_of(inner),
        any=array_of(inner),
        **{"not": inner},
    )


# -- completing the CRDs -----------------------------------------------------------------------------------


def _at(schema: Schema, *steps: str) -> Schema:
    """The sub-schema at `steps`: property names, `[]` for array items."""
    node = schema
    for step in steps:
        node = node["items"] if step == "[]" else node["properties"][step]
    return node


def _add(schema: Schema, steps: tuple[str, ...], **properties: Schema) -> None:
    node = _at(schema, *steps)
    node.setdefault("properties", {}).update(properties)


def _complete(kind: Kind, schema: Schema) -> Schema:
    """Fill in what the CRD leaves open but wisp reads, with the Go types' field types."""
    out = copy.deepcopy(schema)
    out.setdefault("properties", {}).update(_TYPE_META)
    delivery = {"timeout": STRING, "retryAfterMax": STRING}
    if kind in (kinds.SERVICE, kinds.CONFIGURATION, kinds.REVISION):
        template = ("spec", "template") if kind is not kinds.REVISION else ()
        if template:
            _at(out, *template)["properties"]["metadata"] = OBJECT_META
        pod = (*template, "spec")
        _add(out, (*pod, "volumes", "[]"), emptyDir=obj(medium=STRING, sizeLimit=INT_OR_STRING))
    elif kind is kinds.BROKER:
        _add(out, ("spec", "delivery"), **delivery)
    elif kind is kinds.TRIGGER:
        _add(out, ("spec", "delivery"), **delivery)
        _at(out, "spec", "filter")["properties"]["attributes"] = string_map()
        _at(out, "spec", "filters")["items"] = _subscriptions_api_filter()
    elif kind is kinds.SINK_BINDING:
        _at(out, "spec", "ceOverrides")["properties"]["extensions"] = string_map()
        _at(out, "spec", "subject", "selector")["properties"]["matchLabels"] = string_map()
    elif kind is kinds.PING_SOURCE:
        _at(out, "spec", "ceOverrides")["properties"]["extensions"] = string_map()
    elif kind in (kinds.IN_MEMORY_CHANNEL, kinds.CHANNEL, kinds.SUBSCRIPTION, kinds.KAFKA_CHANNEL):
        _add(out, ("spec", "delivery"), **delivery)
    elif kind is kinds.SEQUENCE:
        _add(out, ("spec", "steps", "[]", "delivery"), **delivery)
    elif kind is kinds.PARALLEL:
        _add(out, ("spec", "branches", "[]", "delivery"), **delivery)
    elif kind is kinds.CONTAINER_SOURCE:
        # The CRD leaves the pod template open: typed as a Revision's pod spec, which a Deployment's extends.
        _at(out, "spec")["properties"]["template"] = obj(metadata=OBJECT_META, spec=_pod_spec())
        _at(out, "spec", "ceOverrides")["properties"]["extensions"] = string_map()
    elif kind is kinds.API_SERVER_SOURCE:
        # Open in the CRD; Kubernetes' LabelSelector and Knative's filters, as wisp reads them.
        selector = obj(matchLabels=string_map(), matchExpressions=array_of(
            obj(key=STRING, operator=STRING, values=array_of(STRING))))
        _at(out, "spec")["properties"].update(
            filters=array_of(_subscriptions_api_filter()), namespaceSelector=selector)
        _at(out, "spec", "resources", "[]")["properties"]["selector"] = selector
        _at(out, "spec", "ceOverrides")["properties"]["extensions"] = string_map()
    elif kind is kinds.JOB_SINK:
        # A batch/v1 Job, open in the CRD; its pod template typed as for ContainerSource.
        job_spec = obj(template=obj(metadata=OBJECT_META, spec=_pod_spec()), parallelism=INT32, completions=INT32,
                       backoffLimit=INT32, activeDeadlineSeconds=INT64, ttlSecondsAfterFinished=INT32)
        job_spec["x-kubernetes-preserve-unknown-fields"] = True
        _at(out, "spec")["properties"]["job"] = obj(apiVersion=STRING, kind=STRING, metadata=OBJECT_META, spec=job_spec)
    elif kind is kinds.KAFKA_SOURCE:
        # Fields of older KafkaSource versions (and the seed's) that wisp accepts and ignores.
        _add(out, ("spec",), selector=ANY_OBJECT, resources=ANY_OBJECT, placements=ANY_OBJECT, reply=ANY_OBJECT)
    return out


def _pod_spec() -> Schema:
    """A pod spec: the fields a Revision's has, typed; the other PodSpec fields (restartPolicy, nodeSelector,
    ...) a Deployment or Job may set, kept open."""
    pod: Schema = copy.deepcopy(_crd_schemas(kinds.REVISION)[kinds.REVISION.version]["properties"]["spec"])
    pod["x-kubernetes-preserve-unknown-fields"] = True
    return pod


@functools.cache
def crd_document(kind: Kind) -> dict[str, Any]:
    """The kind's vendored CustomResourceDefinition, as Knative ships it (callers must not change it)."""
    path = CRD_DIR / _CRD_FILES[kind]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # vendored, trusted text: the fast parser is fine
    with path.open(encoding="utf-8") as stream:
        docs = [d for d in yaml.load_all(stream, Loader=loader) if isinstance(d, dict)]
    crd: dict[str, Any] = next(d for d in docs if d.get("kind") == "CustomResourceDefinition")
    return crd


@functools.cache
def _crd_schemas(kind: Kind) -> dict[str, Schema]:
    """version → completed openAPIV3Schema, from the kind's vendored CRD."""
    return {
        v["name"]: _complete(kind, copy.deepcopy(v["schema"]["openAPIV3Schema"]))
        for v in crd_document(kind)["spec"]["versions"]
    }


def schema_for(kind: Kind, version: str | None = None) -> Schema:
    """The schema of `kind` at `version` (a version the CRD lacks, such as KafkaSource v1alpha1, which wisp
    converts, takes the version wisp stores)."""
    core = _CORE.get(kind)
    if core is not None:
        return core
    versions = _crd_schemas(kind)
    return versions.get(version or kind.version) or versions[kind.version]


def served_kinds() -> tuple[Kind, ...]:
    """Every kind a manifest may name: each has a schema here."""
    return tuple(k for k in kinds.ALL_KINDS if not k.virtual)
