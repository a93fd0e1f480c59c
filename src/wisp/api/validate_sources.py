"""Validation of the sources knative/eventing serves besides Ping and SinkBinding: ContainerSource (after
its webhook: a sink, and at least one container, each with a name and an image)."""

from __future__ import annotations

from wisp.api.errors import FieldError
from wisp.api.validate_core import Errors, as_list, as_mapping, missing, string_in, unknown_fields, validate_metadata
from wisp.api.validate_eventing import ce_overrides, validate_destination
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
