"""Validation of the sources knative/eventing serves besides Ping and SinkBinding: ContainerSource (after
its webhook: a sink, and at least one container, each with a name and an image), ApiServerSource (a mode,
resources with a kind, an owner with a kind); and of the EventType registry (v1beta3: the attributes must
name type, source, specversion and id)."""

from __future__ import annotations

from wisp.api.errors import FieldError
from wisp.api.validate_core import Errors, as_list, as_mapping, missing, string_in, unknown_fields, validate_metadata
from wisp.api.validate_eventing import ce_overrides, validate_destination, validate_kreference
from wisp.types import Resource

# A pod template's containers; wisp runs the first (sidecars are reported by the reconciler, not refused).
MAX_CONTAINERS = 16


def validate_container_source(res: Resource) -> Errors:
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return [*errs, missing("spec.template.spec.containers"), missing("spec.sink")]
    errs.extend(unknown_fields(spec, ("template", "sink", "ceOverrides"), "spec"))
    errs.extend(validate_destination(spec.get("sink"), "spec.sink"))
    errs.extend(ce_overrides(spec.get("ceOverrides"), "spec.ceOverrides"))
    template = as_mapping(spec.get("template"), "spec.template", errs) or {}
    pod = as_mapping(template.get("spec"), "spec.template.spec", errs) or {}
    containers = as_list(pod.get("containers"), "spec.template.spec.containers", errs)
    if not containers:
        if containers is not None or "containers" not in pod:
            errs.append(missing("spec.template.spec.containers"))
        return errs
    if len(containers) > MAX_CONTAINERS:
        errs.append(FieldError("spec.template.spec.containers", f"at most {MAX_CONTAINERS} containers"))
    for i, item in enumerate(containers[:MAX_CONTAINERS]):
        container = as_mapping(item, f"spec.template.spec.containers[{i}]", errs)
        if container is not None:
            string_in(container.get("name"), f"spec.template.spec.containers[{i}].name", errs, required=True)
            string_in(container.get("image"), f"spec.template.spec.containers[{i}].image", errs, required=True)
    return errs


MAX_EVENT_TYPE_ATTRIBUTES = 100
_REQUIRED_ATTRIBUTES = ("type", "source", "specversion", "id")


def validate_event_type(res: Resource) -> Errors:
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs) or {}
    errs.extend(unknown_fields(spec, ("reference", "description", "attributes"), "spec"))
    reference = as_mapping(spec.get("reference"), "spec.reference", errs)
    if reference is not None:
        errs.extend(validate_kreference(reference, "spec.reference"))
    string_in(spec.get("description"), "spec.description", errs)
    attributes = as_list(spec.get("attributes"), "spec.attributes", errs) or []
    if len(attributes) > MAX_EVENT_TYPE_ATTRIBUTES:
        errs.append(FieldError("spec.attributes", f"at most {MAX_EVENT_TYPE_ATTRIBUTES} attributes"))
    names = set()
    for i, item in enumerate(attributes[:MAX_EVENT_TYPE_ATTRIBUTES]):
        attribute = as_mapping(item, f"spec.attributes[{i}]", errs)
        if attribute is None:
            continue
        errs.extend(unknown_fields(attribute, ("name", "required", "value"), f"spec.attributes[{i}]"))
        name = string_in(attribute.get("name"), f"spec.attributes[{i}].name", errs, required=True)
        if name:
            names.add(name)
    absent = [name for name in _REQUIRED_ATTRIBUTES if name not in names]
    if absent:
        errs.append(FieldError("spec.attributes", f"missing field(s): {', '.join(absent)}"))
    return errs


MAX_API_SERVER_RESOURCES = 100
_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _label_selector(value: object, path: str) -> Errors:
    errs: Errors = []
    selector = as_mapping(value, path, errs)
    if selector is None:
        return errs
    errs.extend(unknown_fields(selector, ("matchLabels", "matchExpressions"), path))
    for i, item in enumerate(as_list(selector.get("matchExpressions"), f"{path}.matchExpressions", errs) or []):
        expr = as_mapping(item, f"{path}.matchExpressions[{i}]", errs) or {}
        string_in(expr.get("key"), f"{path}.matchExpressions[{i}].key", errs, required=True)
        operator = expr.get("operator")
        if operator not in _SELECTOR_OPERATORS:
            errs.append(FieldError(f"{path}.matchExpressions[{i}].operator",
                                   f"invalid value: {operator}: must be one of {', '.join(_SELECTOR_OPERATORS)}"))
    return errs


def _group_version(value: object, path: str, errs: Errors) -> None:
    text = string_in(value, path, errs)
    if text is not None and (not text or text.count("/") > 1 or text.startswith("/") or text.endswith("/")):
        errs.append(FieldError(path, f"invalid value: {text}"))


def validate_api_server_source(res: Resource) -> Errors:
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return [*errs, missing("spec.resources"), missing("spec.sink")]
    errs.extend(unknown_fields(spec, ("mode", "resources", "owner", "serviceAccountName", "sink", "ceOverrides",
                                      "namespaceSelector", "filters"), "spec"))
    mode = spec.get("mode")
    if mode not in ("Reference", "Resource"):
        errs.append(FieldError("spec.mode", f"invalid value: {mode}: must be Reference or Resource"))
    errs.extend(validate_destination(spec.get("sink"), "spec.sink"))
    errs.extend(ce_overrides(spec.get("ceOverrides"), "spec.ceOverrides"))
    resources = as_list(spec.get("resources"), "spec.resources", errs)
    if not resources:
        if resources is not None or "resources" not in spec:
            errs.append(missing("spec.resources"))
        resources = []
    if len(resources) > MAX_API_SERVER_RESOURCES:
        errs.append(FieldError("spec.resources", f"at most {MAX_API_SERVER_RESOURCES} resources"))
    for i, item in enumerate(resources[:MAX_API_SERVER_RESOURCES]):
        path = f"spec.resources[{i}]"
        entry = as_mapping(item, path, errs)
        if entry is None:
            continue
        errs.extend(unknown_fields(entry, ("apiVersion", "kind", "selector"), path))
        _group_version(entry.get("apiVersion"), f"{path}.apiVersion", errs)
        kind = string_in(entry.get("kind"), f"{path}.kind", errs)
        if not (kind or "").strip():
            errs.append(missing(f"{path}.kind"))
        errs.extend(_label_selector(entry.get("selector"), f"{path}.selector"))
    owner = as_mapping(spec.get("owner"), "spec.owner", errs)
    if owner is not None:
        errs.extend(unknown_fields(owner, ("apiVersion", "kind"), "spec.owner"))
        _group_version(owner.get("apiVersion"), "spec.owner.apiVersion", errs)
        if not str(owner.get("kind") or "").strip():
            errs.append(missing("spec.owner.kind"))
    errs.extend(_label_selector(spec.get("namespaceSelector"), "spec.namespaceSelector"))
    if spec.get("filters"):
        # Knative takes them only with its new-apiserversource-filters feature, which wisp does not run.
        errs.append(FieldError("spec.filters", "not supported: Knative's new-apiserversource-filters feature is off"))
    return errs


def validate_job_sink(res: Resource) -> Errors:
    """Knative's JobSink webhook (a job is required; the rest as Kubernetes validates a Job's pod template)."""
    errs = validate_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs) or {}
    errs.extend(unknown_fields(spec, ("job",), "spec"))
    job = as_mapping(spec.get("job"), "spec.job", errs)
    if job is None:
        return [*errs, FieldError("spec.job", "expected exactly one, got neither: job")]
    job_spec = as_mapping(job.get("spec"), "spec.job.spec", errs) or {}
    template = as_mapping(job_spec.get("template"), "spec.job.spec.template", errs) or {}
    pod = as_mapping(template.get("spec"), "spec.job.spec.template.spec", errs) or {}
    policy = pod.get("restartPolicy")
    if policy not in ("Never", "OnFailure"):
        errs.append(FieldError("spec.job.spec.template.spec.restartPolicy",
                               f"invalid value: {policy}: a Job's pods restart Never or OnFailure"))
    containers = as_list(pod.get("containers"), "spec.job.spec.template.spec.containers", errs)
    if not containers:
        errs.append(missing("spec.job.spec.template.spec.containers"))
        return errs
    for i, item in enumerate(containers[:MAX_CONTAINERS]):
        path = f"spec.job.spec.template.spec.containers[{i}]"
        container = as_mapping(item, path, errs)
        if container is not None:
            string_in(container.get("name"), f"{path}.name", errs, required=True)
            string_in(container.get("image"), f"{path}.image", errs, required=True)
    for field in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished", "completions", "parallelism"):
        value = job_spec.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            errs.append(FieldError(f"spec.job.spec.{field}", f"invalid value: {value}: must be >= 0"))
    return errs
