"""Validation of serving.knative.dev kinds, after knative/serving's webhooks (k8s_validation.go & co)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from wisp.api.autoscaling.annotations import validate_annotations
from wisp.api.autoscaling.config import AutoscalerConfig
from wisp.api.errors import FieldError
from wisp.api.names import (
    FUNCTION_TARGET_ANNOTATION,
    MANIFEST_DIR_ANNOTATION,
    QUEUE_DEPTH_ANNOTATION,
    WORKLOAD_CLASS_ANNOTATION,
)
from wisp.api.quantity import parse_quantity
from wisp.api.validate_core import (
    Errors,
    as_list,
    as_mapping,
    disallowed,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    int_in,
    invalid,
    is_int,
    join,
    missing,
    nest,
    out_of_bounds,
    string_in,
    string_map,
    unknown_fields,
    validate_metadata,
)
from wisp.types import Resource

MAX_CONTAINER_CONCURRENCY = 1000  # config-defaults container-concurrency-max-limit
MAX_REVISION_TIMEOUT_SECONDS = 600  # config-defaults max-revision-timeout-seconds
# Revision names are `{name}-00001`: the generated suffix takes 6 of the 63 characters.
MAX_GENERATED_OWNER_NAME = 63 - len("-00001")
RESERVED_PORTS = frozenset({8012, 8013, 8022, 9090, 9091})
RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"})
WORKLOAD_CLASSES = frozenset({"function", "container"})
MAX_QUEUE_DEPTH = 1_000_000
# The seed platform's custom domain, which wisp turns into a DomainMapping (serving.md: domains).
ALIYUN_DOMAIN_ANNOTATION = "fc.revision.serving.knative.aliyun.com/domain"

# Kubernetes' rule since 1.30 (RelaxedEnvironmentVariableValidation): any printable ASCII but '='.
ENV_NAME_RULE = "a valid environment variable name must consist only of printable ASCII characters other than '='"
# A process's environment, arguments and paths are C strings: a NUL would cut them short (exec refuses them).
NUL_RULE = "must not contain a NUL character"
_ENV_NAME = re.compile(r"[\x20-\x3c\x3e-\x7e]+")

_POD_FIELDS = frozenset(
    {
        "containers",
        "volumes",
        "serviceAccountName",
        "imagePullSecrets",
        "enableServiceLinks",
        "automountServiceAccountToken",
    }
)
_REVISION_FIELDS = frozenset(
    {"containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds", "idleTimeoutSeconds"}
)
# Pod fields Knative accepts only when an operator turns on the named config-features flag.
_FLAGGED_POD_FIELDS = {
    "affinity": "kubernetes.podspec-affinity",
    "nodeSelector": "kubernetes.podspec-nodeselector",
    "tolerations": "kubernetes.podspec-tolerations",
    "runtimeClassName": "kubernetes.podspec-runtimeclassname",
    "securityContext": "kubernetes.podspec-securitycontext",
    "priorityClassName": "kubernetes.podspec-priorityclassname",
    "schedulerName": "kubernetes.podspec-schedulername",
    "initContainers": "kubernetes.podspec-init-containers",
    "hostAliases": "kubernetes.podspec-hostaliases",
    "dnsPolicy": "kubernetes.podspec-dnspolicy",
    "dnsConfig": "kubernetes.podspec-dnsconfig",
    "topologySpreadConstraints": "kubernetes.podspec-topologyspreadconstraints",
    "shareProcessNamespace": "kubernetes.podspec-shareprocessnamespace",
    "hostIPC": "kubernetes.podspec-hostipc",
    "hostPID": "kubernetes.podspec-hostpid",
    "hostNetwork": "kubernetes.podspec-hostnetwork",
}
_CONTAINER_FIELDS = frozenset(
    {
        "name",
        "args",
        "command",
        "env",
        "envFrom",
        "image",
        "imagePullPolicy",
        "livenessProbe",
        "ports",
        "readinessProbe",
        "startupProbe",
        "resources",
        "securityContext",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "volumeMounts",
        "workingDir",
    }
)
_SECURITY_CONTEXT_FIELDS = frozenset(
    {
        "allowPrivilegeEscalation",
        "capabilities",
        "readOnlyRootFilesystem",
        "runAsGroup",
        "runAsNonRoot",
        "runAsUser",
        "seccompProfile",
    }
)
_PROBE_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")
_PROBE_FIELDS = frozenset(
    {
        *_PROBE_HANDLERS,
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
        "terminationGracePeriodSeconds",
    }
)
_VOLUME_SOURCES = ("secret", "configMap", "projected", "emptyDir")
_FLAGGED_VOLUME_SOURCES = {
    "persistentVolumeClaim": "kubernetes.podspec-persistent-volume-claim",
    "hostPath": "kubernetes.podspec-hostpath",
}


# -- kinds ---------------------------------------------------------------------------------------------


def validate_service(res: Resource, config: AutoscalerConfig | None = None) -> Errors:
    errs = _owner_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return errs + ([] if "spec" in res else [missing("spec.template.spec.containers")])
    errs.extend(unknown_fields(spec, ("template", "traffic"), "spec"))
    errs.extend(_template(spec.get("template"), res, "spec.template", config))
    errs.extend(validate_traffic(spec.get("traffic"), "spec.traffic", service=True))
    return errs


def validate_configuration(res: Resource, config: AutoscalerConfig | None = None) -> Errors:
    errs = _owner_metadata(res)
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return errs + ([] if "spec" in res else [missing("spec.template.spec.containers")])
    errs.extend(unknown_fields(spec, ("template",), "spec"))
    errs.extend(_template(spec.get("template"), res, "spec.template", config))
    return errs


def validate_revision(res: Resource, config: AutoscalerConfig | None = None) -> Errors:
    errs = validate_metadata(res, name_check="label")
    errs.extend(_annotations(res.get("metadata"), "metadata.annotations", config))
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return errs + ([] if "spec" in res else [missing("spec.containers")])
    return errs + validate_revision_spec(spec, "spec")


def validate_route(res: Resource) -> Errors:
    errs = validate_metadata(res, name_check="label")
    spec = as_mapping(res.get("spec"), "spec", errs) or {}
    errs.extend(unknown_fields(spec, ("traffic",), "spec"))
    errs.extend(validate_traffic(spec.get("traffic"), "spec.traffic", service=False))
    return errs


def validate_domain_mapping(res: Resource) -> Errors:
    errs = validate_metadata(res)
    name = res.get("metadata", {}).get("name")
    if isinstance(name, str) and not dns1123_subdomain(name) and "." not in name:
        errs.append(invalid(name, "metadata.name", "a DomainMapping's name is a fully qualified domain name"))
    spec = as_mapping(res.get("spec"), "spec", errs)
    if spec is None:
        return [*errs, missing("spec.ref")]
    errs.extend(unknown_fields(spec, ("ref", "tls"), "spec"))
    ref = as_mapping(spec.get("ref"), "spec.ref", errs)
    if ref is None:
        return errs + ([] if "ref" in spec else [missing("spec.ref")])
    for field in ("apiVersion", "kind", "name"):
        string_in(ref.get(field), f"spec.ref.{field}", errs, required=True)
    namespace = ref.get("namespace")
    own_namespace = res.get("metadata", {}).get("namespace")
    if namespace and own_namespace and namespace != own_namespace:
        errs.append(
            invalid(
                namespace, "spec.ref.namespace", f"must match the DomainMapping's namespace {own_namespace!r}"
            )
        )
    tls = as_mapping(spec.get("tls"), "spec.tls", errs)
    if tls is not None:
        string_in(tls.get("secretName"), "spec.tls.secretName", errs, required=True)
    return errs


def env_var_name(name: str) -> bool:
    """Whether `name` may name an environment variable (also an envFrom prefix), by Kubernetes' rule."""
    return _ENV_NAME.fullmatch(name) is not None


# -- metadata and template -----------------------------------------------------------------------------


def _owner_metadata(res: Resource) -> Errors:
    """A Service's or Configuration's metadata: its name must leave room for generated revision names."""
    errs = validate_metadata(res, name_check="label")
    meta: dict[str, Any] = res["metadata"] if isinstance(res.get("metadata"), dict) else {}
    name = meta.get("name")
    template_name = _template_name(res)
    if (
        isinstance(name, str)
        and len(name) > MAX_GENERATED_OWNER_NAME
        and not template_name
        and not dns1035_label(name)
    ):
        errs.append(
            invalid(
                name,
                "metadata.name",
                f"must be no more than {MAX_GENERATED_OWNER_NAME} characters "
                f"so that revision names ({name}-00001) fit in 63",
            )
        )
    annotations = string_map(meta.get("annotations"), "")
    errs.extend(_class_annotation(annotations, "metadata.annotations"))
    errs.extend(_wisp_annotations(annotations, "metadata.annotations"))  # the manifest dir is set here
    return errs


def _template_name(res: Resource) -> str | None:
    spec = res.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    meta = template.get("metadata") if isinstance(template, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and name else None


def _template(template: object, owner: Resource, path: str, config: AutoscalerConfig | None) -> Errors:
    errs: Errors = []
    tmpl = as_mapping(template, path, errs)
    if tmpl is None:
        return errs or [missing(f"{path}.spec.containers")]
    errs.extend(unknown_fields(tmpl, ("metadata", "spec"), path))
    meta = as_mapping(tmpl.get("metadata"), f"{path}.metadata", errs) or {}
    errs.extend(_template_metadata(meta, owner, f"{path}.metadata", config))
    spec = as_mapping(tmpl.get("spec"), f"{path}.spec", errs)
    if spec is None:
        return errs + ([] if "spec" in tmpl else [missing(f"{path}.spec.containers")])
    return errs + validate_revision_spec(spec, f"{path}.spec")


def _template_metadata(
    meta: Mapping[str, Any], owner: Resource, path: str, config: AutoscalerConfig | None
) -> Errors:
    errs: Errors = []
    errs.extend(unknown_fields(meta, ("name", "annotations", "labels", "namespace", "generateName"), path))
    if meta.get("generateName"):
        errs.append(FieldError(f"{path}.generateName", "not supported by wisp: set metadata.name"))
    name = string_in(meta.get("name"), f"{path}.name", errs)
    owner_name = owner.get("metadata", {}).get("name")
    if name is not None:
        errs.extend(invalid(name, f"{path}.name", p) for p in dns1035_label(name))
        if isinstance(owner_name, str) and not name.startswith(f"{owner_name}-"):
            errs.append(invalid(name, f"{path}.name", f"must have prefix {owner_name + '-'!r}"))
    namespace = meta.get("namespace")
    owner_namespace = owner.get("metadata", {}).get("namespace")
    if namespace and owner_namespace and namespace != owner_namespace:
        errs.append(invalid(namespace, f"{path}.namespace", f"must match {owner_namespace!r}"))
    for field in ("labels", "annotations"):
        values = as_mapping(meta.get(field), f"{path}.{field}", errs)
        for key, value in (values or {}).items():
            if not isinstance(value, str):
                errs.append(invalid(value, f"{path}.{field}[{key}]", "must be a string (quote it in YAML)"))
    errs.extend(_annotations(meta, f"{path}.annotations", config))
    return errs


def _annotations(meta: object, path: str, config: AutoscalerConfig | None) -> Errors:
    """Autoscaling annotations (the autoscaler owns their rules) and wisp's own annotations."""
    annotations = string_map(meta.get("annotations") if isinstance(meta, dict) else None, path)
    return (
        nest(validate_annotations(annotations, config=config), path)
        + _class_annotation(annotations, path)
        + _wisp_annotations(annotations, path)
    )


def _wisp_annotations(annotations: Mapping[str, str], path: str) -> Errors:
    """wisp's annotations that a revision's reconciler reads: they must be usable as written."""
    errs: Errors = []
    depth = annotations.get(QUEUE_DEPTH_ANNOTATION)
    # isdigit() alone takes other scripts' digits; the length check keeps int() from parsing a huge number.
    is_count = depth is not None and depth.isascii() and depth.isdigit() and len(depth) <= 7
    if depth is not None and not (is_count and int(depth) <= MAX_QUEUE_DEPTH):
        errs.append(
            invalid(depth, f"{path}[{QUEUE_DEPTH_ANNOTATION}]", f"must be an integer from 0 to {MAX_QUEUE_DEPTH}")
        )
    for key in (FUNCTION_TARGET_ANNOTATION, MANIFEST_DIR_ANNOTATION):
        if "\0" in annotations.get(key, ""):
            errs.append(FieldError(f"{path}[{key}]", NUL_RULE))
    domain = annotations.get(ALIYUN_DOMAIN_ANNOTATION)
    if domain:
        problem = _aliyun_domain_problem(domain)
        if problem:
            errs.append(invalid(domain[:80], f"{path}[{ALIYUN_DOMAIN_ANNOTATION}]", problem))
    return errs


def _aliyun_domain_problem(raw: str) -> str | None:
    """Why the seed's domain annotation (`{"domain": "...", "path": "/*"}`) cannot become a DomainMapping."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return 'must be a JSON object such as {"domain": "app.example.com", "path": "/*"}'
    domain = value.get("domain") if isinstance(value, dict) else None
    if not isinstance(domain, str) or not domain:
        return 'must be a JSON object with a "domain" string'
    problems = dns1123_subdomain(domain.lower())
    return f"domain {domain!r}: " + "; ".join(problems) if problems else None


def _class_annotation(annotations: Mapping[str, str], path: str) -> Errors:
    value = annotations.get(WORKLOAD_CLASS_ANNOTATION)
    if value is not None and value not in WORKLOAD_CLASSES:
        return [
            invalid(
                value,
                f"{path}[{WORKLOAD_CLASS_ANNOTATION}]",
                "must be function or container (workload.serving.knative.aliyun.com/class: fc or eci)",
            )
        ]
    return []


# -- revision spec -------------------------------------------------------------------------------------


def validate_revision_spec(spec: Mapping[str, Any], path: str) -> Errors:
    errs: Errors = []
    for key in spec:
        if key in _POD_FIELDS or key in _REVISION_FIELDS:
            continue
        flag = _FLAGGED_POD_FIELDS.get(key)
        errs.append(
            disallowed(
                join(path, key), f"Knative allows it only with the {flag} feature flag" if flag else ""
            )
        )
    int_in(
        spec.get("containerConcurrency"),
        0,
        MAX_CONTAINER_CONCURRENCY,
        join(path, "containerConcurrency"),
        errs,
    )
    timeout = spec.get("timeoutSeconds")
    int_in(timeout, 0, MAX_REVISION_TIMEOUT_SECONDS, join(path, "timeoutSeconds"), errs)
    upper = MAX_REVISION_TIMEOUT_SECONDS
    if isinstance(timeout, int) and is_int(timeout) and 0 <= timeout <= MAX_REVISION_TIMEOUT_SECONDS:
        upper = timeout
    int_in(spec.get("responseStartTimeoutSeconds"), 0, upper, join(path, "responseStartTimeoutSeconds"), errs)
    int_in(
        spec.get("idleTimeoutSeconds"),
        0,
        MAX_REVISION_TIMEOUT_SECONDS,
        join(path, "idleTimeoutSeconds"),
        errs,
    )
    for field in ("serviceAccountName",):
        name = string_in(spec.get(field), join(path, field), errs)
        if name is not None:
            errs.extend(invalid(name, join(path, field), p) for p in dns1123_subdomain(name))
    for field in ("enableServiceLinks", "automountServiceAccountToken"):
        if spec.get(field) is not None and not isinstance(spec[field], bool):
            errs.append(invalid(spec[field], join(path, field), "must be true or false"))
    secrets = as_list(spec.get("imagePullSecrets"), join(path, "imagePullSecrets"), errs) or []
    for i, secret in enumerate(secrets):
        if not isinstance(secret, dict) or not secret.get("name"):
            errs.append(missing(join(path, f"imagePullSecrets[{i}].name")))
    volumes = _volumes(spec.get("volumes"), join(path, "volumes"), errs)
    errs.extend(_containers(spec.get("containers"), volumes, join(path, "containers")))
    if not errs:
        errs.extend(_volume_rules(spec, path))
    return errs


_RESERVED_MOUNT_PATHS = frozenset({"/", "/dev", "/dev/log"})
MAX_VOLUMES = 64


def _clean(path: str) -> str:
    """Go's path.Clean for an absolute path (what Knative compares mount paths by)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def _volume_rules(spec: Mapping[str, Any], path: str) -> Errors:
    """Knative's volume rules beyond the shape (pkg/apis/serving/k8s_validation.go): a volume name is a DNS-1123
    label and every volume is mounted; a mountPath is not reserved (/, /dev, /dev/log) and unique once cleaned;
    Secret/ConfigMap/projected mounts are readOnly; items have a key and a path; an emptyDir's medium is "" or
    Memory and its sizeLimit a quantity of at least 0."""
    errs: Errors = []
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
    if len(volumes) > MAX_VOLUMES:
        errs.append(invalid(len(volumes), join(path, "volumes"), f"at most {MAX_VOLUMES} volumes"))
    kinds: dict[str, str] = {}
    for i, volume in enumerate(volumes):
        vpath = join(path, f"volumes[{i}]")
        name = str(volume.get("name", ""))
        errs.extend(invalid(name, f"{vpath}.name", p) for p in dns1123_label(name))
        kind = next((k for k in _VOLUME_SOURCES if k in volume), "")
        kinds[name] = kind
        source = volume.get(kind) or {}
        if not isinstance(source, Mapping):
            continue
        if kind in ("secret", "configMap"):
            errs.extend(_key_to_paths(source.get("items"), f"{vpath}.{kind}.items"))
        elif kind == "projected":
            for j, item in enumerate(source.get("sources") or []):
                ipath = f"{vpath}.projected.sources[{j}]"
                if not isinstance(item, Mapping):
                    continue
                given = [k for k in ("secret", "configMap", "serviceAccountToken", "downwardAPI") if item.get(k)
                         is not None]
                if len(given) != 1:
                    errs.append(FieldError(ipath, f"expected exactly one, got {'both' if given else 'neither'}: "
                                                  "secret, configMap, serviceAccountToken, downwardAPI"))
                for k in ("secret", "configMap"):
                    if isinstance(item.get(k), Mapping):
                        if not item[k].get("name"):
                            errs.append(missing(f"{ipath}.{k}.name"))
                        errs.extend(_key_to_paths(item[k].get("items"), f"{ipath}.{k}.items"))
        elif kind == "emptyDir":
            medium = source.get("medium")
            if medium not in (None, "", "Memory"):
                errs.append(invalid(medium, f"{vpath}.emptyDir.medium", 'must be "" or Memory'))
            limit = source.get("sizeLimit")
            if limit is not None:
                try:
                    if parse_quantity(limit) < 0:
                        errs.append(invalid(limit, f"{vpath}.emptyDir.sizeLimit", "must not be negative"))
                except ValueError as exc:
                    errs.append(invalid(limit, f"{vpath}.emptyDir.sizeLimit", str(exc)))
    mounted: set[str] = set()
    seen: set[str] = set()
    for c, container in enumerate(spec.get("containers") or []):
        for i, mount in enumerate((container.get("volumeMounts") or []) if isinstance(container, Mapping) else []):
            if not isinstance(mount, Mapping):
                continue
            mpath = join(path, f"containers[{c}].volumeMounts[{i}]")
            name = str(mount.get("name", ""))
            mounted.add(name)
            target = mount.get("mountPath")
            if isinstance(target, str) and target.startswith("/"):
                clean = _clean(target)
                if clean in _RESERVED_MOUNT_PATHS:
                    errs.append(FieldError(f"{mpath}.mountPath", f'mountPath "{clean}" is a reserved path'))
                elif clean in seen:
                    errs.append(invalid(target, f"{mpath}.mountPath", "must be unique"))
                seen.add(clean)
            if kinds.get(name) in ("secret", "configMap", "projected") and not mount.get("readOnly"):
                errs.append(FieldError(f"{mpath}.readOnly", "volume mount should be readOnly for this type of volume"))
    for i, volume in enumerate(volumes):
        if str(volume.get("name", "")) not in mounted:
            errs.append(FieldError(join(path, f"volumes[{i}]"), f'volume with name "{volume.get("name")}" not mounted'))
    return errs


def _key_to_paths(items: object, path: str) -> Errors:
    errs: Errors = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, Mapping):
            continue
        for field in ("key", "path"):
            if not item.get(field):
                errs.append(missing(f"{path}[{i}].{field}"))
        file_path = item.get("path")
        if isinstance(file_path, str) and file_path and (
                file_path.startswith("/") or ".." in file_path.split("/")):
            errs.append(invalid(file_path, f"{path}[{i}].path", "must be a relative path without '..'"))
    return errs


def _volumes(value: object, path: str, errs: Errors) -> set[str]:
    names: set[str] = set()
    for i, volume in enumerate(as_list(value, path, errs) or []):
        vpath = f"{path}[{i}]"
        vol = as_mapping(volume, vpath, errs)
        if vol is None:
            continue
        name = string_in(vol.get("name"), f"{vpath}.name", errs, required=True)
        if name is not None:
            if name in names:
                errs.append(invalid(name, f"{vpath}.name", "duplicate volume name"))
            names.add(name)
        sources = [k for k in vol if k != "name"]
        for key in sources:
            if key not in _VOLUME_SOURCES:
                flag = _FLAGGED_VOLUME_SOURCES.get(key)
                errs.append(
                    disallowed(
                        f"{vpath}.{key}",
                        f"Knative allows it only with the {flag} feature flag" if flag else "",
                    )
                )
        known = [k for k in sources if k in _VOLUME_SOURCES]
        if not sources:
            errs.append(FieldError(vpath, "expected exactly one, got neither: " + ", ".join(_VOLUME_SOURCES)))
        elif len(known) > 1:
            errs.append(FieldError(vpath, "expected exactly one, got both: " + ", ".join(known)))
    return names


def _containers(value: object, volumes: set[str], path: str) -> Errors:
    errs: Errors = []
    containers = as_list(value, path, errs)
    if not containers:
        return errs or [missing(path)]
    with_ports = [i for i, c in enumerate(containers) if isinstance(c, dict) and c.get("ports")]
    if len(containers) > 1 and len(with_ports) != 1:
        # Multi-container revisions route to the one container that declares a port (Knative's rule).
        errs.append(
            FieldError(
                path,
                "with more than one container, exactly one must set ports "
                f"(the serving container); {len(with_ports)} do",
            )
        )
    names: set[str] = set()
    for i, container in enumerate(containers):
        cpath = f"{path}[{i}]"
        c = as_mapping(container, cpath, errs)
        if c is None:
            continue
        errs.extend(_container(c, volumes, cpath))
        name = c.get("name")
        if isinstance(name, str) and name:
            if name in names:
                errs.append(invalid(name, f"{cpath}.name", "duplicate container name"))
            names.add(name)
    return errs


def _container(c: Mapping[str, Any], volumes: set[str], path: str) -> Errors:
    errs: Errors = []
    errs.extend(unknown_fields(c, _CONTAINER_FIELDS, path))
    name = string_in(c.get("name"), f"{path}.name", errs)
    if name is not None:
        errs.extend(invalid(name, f"{path}.name", p) for p in dns1035_label(name))
    image = string_in(c.get("image"), f"{path}.image", errs, required=True)
    working_dir = string_in(c.get("workingDir"), f"{path}.workingDir", errs)
    for field, text in (("image", image), ("workingDir", working_dir)):
        if text is not None and "\0" in text:
            errs.append(FieldError(f"{path}.{field}", NUL_RULE))
    for field in ("command", "args"):
        items = as_list(c.get(field), f"{path}.{field}", errs) or []
        for j, v in enumerate(items):
            if not isinstance(v, str):
                errs.append(invalid(v, f"{path}.{field}[{j}]", "must be a string"))
            elif "\0" in v:
                errs.append(FieldError(f"{path}.{field}[{j}]", NUL_RULE))
    policy = c.get("imagePullPolicy")
    if policy is not None and policy not in ("Always", "IfNotPresent", "Never"):
        errs.append(invalid(policy, f"{path}.imagePullPolicy", "must be Always, IfNotPresent or Never"))
    errs.extend(_ports(c.get("ports"), f"{path}.ports"))
    errs.extend(_env(c.get("env"), f"{path}.env"))
    errs.extend(_env_from(c.get("envFrom"), f"{path}.envFrom"))
    errs.extend(_volume_mounts(c.get("volumeMounts"), volumes, f"{path}.volumeMounts"))
    errs.extend(_resources(c.get("resources"), f"{path}.resources"))
    errs.extend(_security_context(c.get("securityContext"), f"{path}.securityContext"))
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if c.get(probe) is not None:
            errs.extend(_probe(c[probe], f"{path}.{probe}", readiness=probe == "readinessProbe"))
    return errs


def _ports(value: object, path: str) -> Errors:
    errs: Errors = []
    ports = as_list(value, path, errs)
    if not ports:
        return errs
    if len(ports) > 1:
        errs.append(FieldError(path, "more than one container port is set"))
    port = as_mapping(ports[0], path, errs)
    if port is None:
        return errs
    # Knative reports the single port's fields without an index (`ports.containerPort`).
    errs.extend(unknown_fields(port, ("containerPort", "name", "protocol"), path))
    number = port.get("containerPort")
    if number is not None:
        if not is_int(number):
            errs.append(invalid(number, f"{path}.containerPort", "must be an integer"))
        elif number in RESERVED_PORTS:
            errs.append(invalid(number, f"{path}.containerPort", f"port {number} is reserved by Knative"))
        elif not 0 <= number <= 65535:
            errs.append(out_of_bounds(number, 0, 65535, f"{path}.containerPort"))
    name = port.get("name")
    if name not in (None, "", "h2c", "http1"):
        errs.append(invalid(name, f"{path}.name", "must be empty, h2c or http1"))
    protocol = port.get("protocol")
    if protocol not in (None, "", "TCP"):
        errs.append(invalid(protocol, f"{path}.protocol", "must be TCP"))
    return errs


def _env(value: object, path: str) -> Errors:
    errs: Errors = []
    for i, var in enumerate(as_list(value, path, errs) or []):
        epath = f"{path}[{i}]"
        env = as_mapping(var, epath, errs)
        if env is None:
            continue
        errs.extend(unknown_fields(env, ("name", "value", "valueFrom"), epath))
        name = string_in(env.get("name"), f"{epath}.name", errs, required=True)
        if name in RESERVED_ENV:
            errs.append(invalid(name, f"{epath}.name", f"{name!r} is a reserved environment variable"))
        elif name is not None and not env_var_name(name):
            errs.append(invalid(repr(name), f"{epath}.name", ENV_NAME_RULE))
        if env.get("value") is not None and not isinstance(env["value"], str):
            errs.append(invalid(env["value"], f"{epath}.value", "must be a string (quote it in YAML)"))
        elif isinstance(env.get("value"), str) and "\0" in env["value"]:
            errs.append(FieldError(f"{epath}.value", NUL_RULE))
        source = as_mapping(env.get("valueFrom"), f"{epath}.valueFrom", errs)
        if source is None:
            continue
        if env.get("value"):
            errs.append(FieldError(epath, "expected exactly one, got both: value, valueFrom"))
        spath = f"{epath}.valueFrom"
        for key in source:
            if key not in ("secretKeyRef", "configMapKeyRef"):
                flag = {
                    "fieldRef": "kubernetes.podspec-fieldref",
                    "resourceFieldRef": "kubernetes.podspec-fieldref",
                }.get(key)
                errs.append(
                    disallowed(
                        f"{spath}.{key}",
                        f"Knative allows it only with the {flag} feature flag" if flag else "",
                    )
                )
        refs = [k for k in ("secretKeyRef", "configMapKeyRef") if k in source]
        if len(refs) > 1:
            errs.append(FieldError(spath, "expected exactly one, got both: secretKeyRef, configMapKeyRef"))
        elif not source:
            errs.append(FieldError(spath, "expected exactly one, got neither: secretKeyRef, configMapKeyRef"))
        for ref_name in refs:
            ref = as_mapping(source[ref_name], f"{spath}.{ref_name}", errs)
            if ref is not None:
                errs.extend(unknown_fields(ref, ("name", "key", "optional"), f"{spath}.{ref_name}"))
                string_in(ref.get("name"), f"{spath}.{ref_name}.name", errs, required=True)
                string_in(ref.get("key"), f"{spath}.{ref_name}.key", errs, required=True)
    return errs


def _env_from(value: object, path: str) -> Errors:
    errs: Errors = []
    for i, item in enumerate(as_list(value, path, errs) or []):
        epath = f"{path}[{i}]"
        src = as_mapping(item, epath, errs)
        if src is None:
            continue
        errs.extend(unknown_fields(src, ("prefix", "configMapRef", "secretRef"), epath))
        prefix = string_in(src.get("prefix"), f"{epath}.prefix", errs)
        if prefix is not None and not env_var_name(prefix):
            errs.append(invalid(repr(prefix), f"{epath}.prefix", ENV_NAME_RULE))
        refs = [k for k in ("configMapRef", "secretRef") if src.get(k) is not None]
        if len(refs) != 1:
            got = "both" if refs else "neither"
            errs.append(FieldError(epath, f"expected exactly one, got {got}: configMapRef, secretRef"))
        for ref_name in refs:
            ref = as_mapping(src[ref_name], f"{epath}.{ref_name}", errs)
            if ref is not None:
                string_in(ref.get("name"), f"{epath}.{ref_name}.name", errs, required=True)
    return errs


def _volume_mounts(value: object, volumes: set[str], path: str) -> Errors:
    errs: Errors = []
    seen: set[str] = set()
    for i, item in enumerate(as_list(value, path, errs) or []):
        mpath = f"{path}[{i}]"
        mount = as_mapping(item, mpath, errs)
        if mount is None:
            continue
        errs.extend(unknown_fields(mount, ("name", "mountPath", "readOnly", "subPath"), mpath))
        name = string_in(mount.get("name"), f"{mpath}.name", errs, required=True)
        if name is not None and name not in volumes:
            errs.append(invalid(name, f"{mpath}.name", "no volume of that name in spec volumes"))
        mount_path = string_in(mount.get("mountPath"), f"{mpath}.mountPath", errs, required=True)
        if mount_path is not None:
            if not mount_path.startswith("/"):
                errs.append(invalid(mount_path, f"{mpath}.mountPath", "must be an absolute path"))
            elif mount_path in seen:
                errs.append(invalid(mount_path, f"{mpath}.mountPath", "duplicate mount path"))
            seen.add(mount_path)
    return errs


def _resources(value: object, path: str) -> Errors:
    errs: Errors = []
    res = as_mapping(value, path, errs)
    if res is None:
        return errs
    errs.extend(unknown_fields(res, ("limits", "requests"), path))
    for field in ("limits", "requests"):
        amounts = as_mapping(res.get(field), f"{path}.{field}", errs) or {}
        for key, amount in amounts.items():
            if not isinstance(amount, (str, int, float)) or isinstance(amount, bool):
                errs.append(
                    invalid(amount, f"{path}.{field}.{key}", "must be a quantity such as 500m or 128Mi")
                )
    return errs


def _security_context(value: object, path: str) -> Errors:
    errs: Errors = []
    ctx = as_mapping(value, path, errs)
    if ctx is None:
        return errs
    errs.extend(unknown_fields(ctx, _SECURITY_CONTEXT_FIELDS, path))
    caps = as_mapping(ctx.get("capabilities"), f"{path}.capabilities", errs)
    if caps is not None:
        errs.extend(unknown_fields(caps, ("add", "drop"), f"{path}.capabilities"))
        for cap in as_list(caps.get("add"), f"{path}.capabilities.add", errs) or []:
            if cap != "NET_BIND_SERVICE":
                errs.append(
                    invalid(
                        cap,
                        f"{path}.capabilities.add",
                        "Knative allows only NET_BIND_SERVICE "
                        "without the kubernetes.containerspec-addcapabilities feature flag",
                    )
                )
    int_in(ctx.get("runAsUser"), 0, None, f"{path}.runAsUser", errs)
    int_in(ctx.get("runAsGroup"), 0, None, f"{path}.runAsGroup", errs)
    return errs


def _probe(value: object, path: str, *, readiness: bool) -> Errors:
    errs: Errors = []
    probe = as_mapping(value, path, errs)
    if probe is None:
        return errs
    errs.extend(unknown_fields(probe, _PROBE_FIELDS, path))
    handlers = [h for h in _PROBE_HANDLERS if probe.get(h) is not None]
    if len(handlers) != 1:
        got = "both" if handlers else "neither"
        errs.append(
            FieldError(path, f"expected exactly one, got {got}: " + ", ".join(handlers or _PROBE_HANDLERS))
        )
    for field in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "failureThreshold",
        "terminationGracePeriodSeconds",
    ):
        int_in(probe.get(field), 0, None, f"{path}.{field}", errs)
    success = probe.get("successThreshold")
    if readiness:
        int_in(success, 1, None, f"{path}.successThreshold", errs)
    elif success is not None and success != 1:
        errs.append(invalid(success, f"{path}.successThreshold", "must be 1 for liveness and startup probes"))
    http = as_mapping(probe.get("httpGet"), f"{path}.httpGet", errs)
    if http is not None:
        errs.extend(
            unknown_fields(http, ("path", "port", "host", "scheme", "httpHeaders"), f"{path}.httpGet")
        )
        scheme = http.get("scheme")
        if scheme not in (None, "HTTP", "HTTPS"):
            errs.append(invalid(scheme, f"{path}.httpGet.scheme", "must be HTTP or HTTPS"))
        errs.extend(_probe_port(http.get("port"), f"{path}.httpGet.port"))
    tcp = as_mapping(probe.get("tcpSocket"), f"{path}.tcpSocket", errs)
    if tcp is not None:
        errs.extend(unknown_fields(tcp, ("port", "host"), f"{path}.tcpSocket"))
        errs.extend(_probe_port(tcp.get("port"), f"{path}.tcpSocket.port"))
    exec_action = as_mapping(probe.get("exec"), f"{path}.exec", errs)
    if exec_action is not None and not exec_action.get("command"):
        errs.append(missing(f"{path}.exec.command"))
    grpc = as_mapping(probe.get("grpc"), f"{path}.grpc", errs)
    if grpc is not None:
        errs.extend(_probe_port(grpc.get("port"), f"{path}.grpc.port"))
    return errs


def _probe_port(value: object, path: str) -> Errors:
    if value is None or isinstance(value, str):
        return []  # unset or a named port: Knative probes the serving port either way
    if not is_int(value) or not 0 <= value <= 65535:  # type: ignore[operator]
        return [out_of_bounds(value, 0, 65535, path)]
    return []


# -- traffic -------------------------------------------------------------------------------------------


def validate_traffic(value: object, path: str, *, service: bool) -> Errors:
    errs: Errors = []
    targets = as_list(value, path, errs)
    if targets is None:
        return errs
    total, sum_known = 0, True
    tags: dict[str, int] = {}
    for i, target in enumerate(targets):
        tpath = f"{path}[{i}]"
        tt = as_mapping(target, tpath, errs)
        if tt is None:
            continue
        allowed = ["revisionName", "latestRevision", "percent", "tag"]
        if not service:
            allowed.append("configurationName")
        errs.extend(unknown_fields(tt, allowed, tpath))
        revision = string_in(tt.get("revisionName"), f"{tpath}.revisionName", errs)
        latest = tt.get("latestRevision")
        if latest is not None and not isinstance(latest, bool):
            errs.append(invalid(latest, f"{tpath}.latestRevision", "must be true or false"))
        if revision is not None:
            errs.extend(invalid(revision, f"{tpath}.revisionName", p) for p in dns1035_label(revision))
        if latest is True and revision is not None:
            errs.append(
                FieldError(
                    f"{tpath}.latestRevision",
                    f"may not set revisionName {revision!r} when latestRevision is true",
                )
            )
        elif latest is not True and revision is None:
            errs.append(
                FieldError(tpath, "expected exactly one, got neither: revisionName, latestRevision: true")
            )
        if not service:
            config = string_in(tt.get("configurationName"), f"{tpath}.configurationName", errs)
            if latest is True and config is None:
                errs.append(missing(f"{tpath}.configurationName"))
        percent = tt.get("percent")
        if percent is not None:
            if not is_int(percent):
                sum_known = False
                errs.append(invalid(percent, f"{tpath}.percent", "must be an integer"))
            elif not 0 <= percent <= 100:
                sum_known = False
                errs.append(out_of_bounds(percent, 0, 100, f"{tpath}.percent"))
            else:
                total += percent
        tag = string_in(tt.get("tag"), f"{tpath}.tag", errs)
        if tag is not None:
            errs.extend(invalid(tag, f"{tpath}.tag", p) for p in dns1035_label(tag))
            if tag in tags:
                errs.append(
                    FieldError(
                        f"{tpath}.tag", f"multiple definitions for {tag!r} (also {path}[{tags[tag]}].tag)"
                    )
                )
            tags.setdefault(tag, i)
    if targets and sum_known and total != 100:
        errs.append(FieldError(path, f"traffic targets sum to {total}, want 100"))
    return errs
