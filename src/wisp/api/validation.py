"""Validation of a defaulted resource, dispatched by kind; and of updates (immutable fields)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wisp.api import kinds, schemas
from wisp.api.autoscaling.config import AutoscalerConfig
from wisp.api.errors import FieldError, UnknownKindError
from wisp.api.names import BROKER_CLASS_ANNOTATION
from wisp.api.shape import shape_error, without_nulls
from wisp.api.typecheck import checked, unrelated
from wisp.api.validate_core import unknown_fields, validate_config_map, validate_namespace, validate_secret
from wisp.api.validate_eventing import (
    validate_broker,
    validate_kafka_source,
    validate_ping_source,
    validate_sink_binding,
    validate_trigger,
)
from wisp.api.validate_flows import (
    immutable_flow_fields,
    validate_channel,
    validate_in_memory_channel,
    validate_kafka_channel,
    validate_parallel,
    validate_sequence,
    validate_subscription,
)
from wisp.api.validate_serving import (
    validate_configuration,
    validate_domain_mapping,
    validate_revision,
    validate_route,
    validate_service,
)
from wisp.api.validate_sources import (
    validate_api_server_source,
    validate_container_source,
    validate_event_type,
    validate_job_sink,
)
from wisp.types import Resource

Validator = Callable[[Resource], list[FieldError]]

# Kinds whose templates carry autoscaling annotations, checked against the autoscaler's config.
_SERVING_VALIDATORS: dict[kinds.Kind, Callable[[Resource, AutoscalerConfig | None], list[FieldError]]] = {
    kinds.SERVICE: validate_service,
    kinds.CONFIGURATION: validate_configuration,
    kinds.REVISION: validate_revision,
}
_VALIDATORS: dict[kinds.Kind, Validator] = {
    kinds.ROUTE: validate_route,
    kinds.DOMAIN_MAPPING: validate_domain_mapping,
    kinds.KAFKA_SOURCE: validate_kafka_source,
    kinds.PING_SOURCE: validate_ping_source,
    kinds.SINK_BINDING: validate_sink_binding,
    kinds.BROKER: validate_broker,
    kinds.TRIGGER: validate_trigger,
    kinds.IN_MEMORY_CHANNEL: validate_in_memory_channel,
    kinds.CHANNEL: validate_channel,
    kinds.KAFKA_CHANNEL: validate_kafka_channel,
    kinds.SUBSCRIPTION: validate_subscription,
    kinds.SEQUENCE: validate_sequence,
    kinds.PARALLEL: validate_parallel,
    kinds.CONTAINER_SOURCE: validate_container_source,
    kinds.EVENT_TYPE: validate_event_type,
    kinds.API_SERVER_SOURCE: validate_api_server_source,
    kinds.JOB_SINK: validate_job_sink,
    kinds.SECRET: validate_secret,
    kinds.CONFIG_MAP: validate_config_map,
    kinds.NAMESPACE: validate_namespace,
}


def validate(resource: Resource, *, autoscaler: AutoscalerConfig | None = None) -> list[FieldError]:
    """Every problem with a resource (run `apply_defaults` first), each naming its field path.

    `autoscaler` is the operator's config-autoscaler (e.g. max-scale-limit); None means Knative's defaults.
    """
    api_version, kind_name = resource.get("apiVersion"), resource.get("kind")
    if not isinstance(api_version, str) or not api_version:
        return [FieldError("apiVersion", "missing field(s)")]
    if not isinstance(kind_name, str) or not kind_name:
        return [FieldError("kind", "missing field(s)")]
    try:
        kind = kinds.for_manifest(api_version, kind_name)
    except UnknownKindError as exc:
        field = "apiVersion" if any(k.kind == kind_name for k in kinds.ALL_KINDS) else "kind"
        return [FieldError(field, str(exc))]
    malformed = shape_error(resource)
    if malformed is not None:
        return [malformed]
    resource = without_nulls(resource)  # an explicit null is an absent field, as the API server prunes it
    # Types first, from the schema; Knative's rules then run on the well-typed rest, so they may rely on
    # every field's type, and their errors about the wrongly typed fields are left out as redundant.
    body = {key: value for key, value in resource.items() if key != "status"}  # status is never applied
    resource, type_errs = checked(body, schemas.schema_for(kind, api_version.rpartition("/")[2]))
    return type_errs + unrelated(_rules(kind, resource, autoscaler), type_errs)


def _rules(kind: kinds.Kind, resource: Resource, autoscaler: AutoscalerConfig | None) -> list[FieldError]:
    """Knative's validation of one kind (field presence, values, bounds) on a well-typed resource."""
    errs: list[FieldError] = []
    if kind.group:  # core kinds list their own top-level fields (data, stringData, ...)
        errs.extend(unknown_fields(resource, ("apiVersion", "kind", "metadata", "spec", "status"), ""))
    serving = _SERVING_VALIDATORS.get(kind)
    if serving is not None:
        return errs + serving(resource, autoscaler)
    validator = _VALIDATORS.get(kind)
    if validator is None:
        return [FieldError("kind", f"{kind.kind} cannot be applied")]
    return errs + validator(resource)


def validate_update(old: Resource, new: Resource) -> list[FieldError]:
    """Problems with replacing `old` by `new` (both defaulted): changes to fields Knative holds immutable."""
    errs: list[FieldError] = []
    kind = new.get("kind")
    old_spec, new_spec = _spec(old), _spec(new)
    if kind == "KafkaSource":
        errs.extend(_immutable(old_spec, new_spec, "consumerGroup", "spec.consumerGroup"))
    elif kind == "Revision":
        if old_spec != new_spec:
            errs.append(
                FieldError("spec", "a Revision's spec is immutable; change its Service or Configuration")
            )
    elif kind == "Trigger":
        errs.extend(_immutable(old_spec, new_spec, "broker", "spec.broker"))
    elif kind == "Broker":
        annotation = BROKER_CLASS_ANNOTATION
        errs.extend(
            _immutable(
                _annotations(old), _annotations(new), annotation, f"metadata.annotations[{annotation}]"
            )
        )
    elif kind in ("Service", "Configuration"):
        errs.extend(_template_renamed(old_spec, new_spec))
    elif kind in ("Channel", "Subscription", "EventType", "KafkaChannel"):
        errs.extend(immutable_flow_fields(kind, old_spec, new_spec))
    return errs


def _immutable(old: dict[str, Any], new: dict[str, Any], field: str, path: str) -> list[FieldError]:
    if old.get(field) == new.get(field):
        return []
    return [FieldError(path, f"field is immutable: {old.get(field)!r} → {new.get(field)!r}")]


def _template_renamed(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """A named template is a named revision: changing it without a new name would rewrite that revision."""
    old_t, new_t = old.get("template"), new.get("template")
    if not isinstance(old_t, dict) or not isinstance(new_t, dict) or old_t == new_t:
        return []
    old_name = (old_t.get("metadata") or {}).get("name")
    new_name = (new_t.get("metadata") or {}).get("name")
    if old_name and old_name == new_name:
        return [
            FieldError(
                "spec.template.metadata.name",
                f"the template changed but its name {new_name!r} did not; revisions are immutable",
            )
        ]
    return []


def _spec(res: Resource) -> dict[str, Any]:
    spec = res.get("spec")
    return spec if isinstance(spec, dict) else {}


def _annotations(res: Resource) -> dict[str, Any]:
    meta = res.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return annotations if isinstance(annotations, dict) else {}
