"""A Knative Functions project (a directory holding `func.yaml`) → the Knative Service `func deploy` would make.

Pure: the caller reads the files and passes the environment that `{{ env:NAME }}` values are taken from.
`func.yaml` is checked against Knative Functions' own schema (vendored in reference/), each problem named
by its field path; then the fields wisp gives a meaning are turned into the Service, as knative/func's
deployer does: `run.envs` → env/envFrom, `deploy.options.scale` → autoscaling annotations,
`deploy.options.resources.limits.concurrency` → containerConcurrency, `deploy.healthEndpoints` → probes,
`deploy.subscriptions` → Triggers. The Service runs the project directory as a function (see
serving/workloads/function.py for how the func-python middleware serves it).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from wisp.api import bounded_yaml
from wisp.api.errors import FieldError, ManifestError
from wisp.api.names import MANIFEST_DIR_ANNOTATION, WORKLOAD_CLASS_ANNOTATION
from wisp.api.validation import validate
from wisp.types import Resource

if TYPE_CHECKING:
    from jsonschema import ValidationError

FUNC_YAML = "func.yaml"
INVOKES = ("http", "cloudevent")
# Knative Functions' defaults (knative/func pkg/knative/deployer.go).
LIVENESS_ENDPOINT, READINESS_ENDPOINT = "/health/liveness", "/health/readiness"
MAX_ERRORS = 50  # a badly wrong file is refused with the first ones, not thousands
# A digest of the project's files on the revision template: changed code makes a new Revision, as a new image
# digest does for `func deploy`. Hidden files and folders (.git, .venv, ...), virtualenvs and bytecode are left out.
SOURCE_DIGEST_ANNOTATION = "wisp.dev/func-source-digest"
MAX_SOURCE_FILES, MAX_SOURCE_BYTES = 10_000, 256 * 1024 * 1024

_AUTOSCALING = "autoscaling.knative.dev/"
_SCALE_ANNOTATIONS = {
    "min": _AUTOSCALING + "min-scale",
    "max": _AUTOSCALING + "max-scale",
    "metric": _AUTOSCALING + "metric",
    "target": _AUTOSCALING + "target",
    "utilization": _AUTOSCALING + "target-utilization-percentage",
}
# `{{ env:NAME }}`, `{{ secret:name:key }}`, `{{ configMap:name }}` ... (func's forms; spaces allowed inside).
_REFERENCE = re.compile(r"^\{\{\s*(.*?)\s*\}\}$")


def is_project(directory: Path) -> bool:
    return (directory / FUNC_YAML).is_file()


@cache
def schema() -> dict[str, Any]:
    text = resources.files("wisp.api").joinpath("reference/func_yaml-schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def parse(text: str, where: str) -> dict[str, Any]:
    """The func.yaml document, checked against the schema; ManifestError naming each bad field."""
    try:
        docs = [d for d in bounded_yaml.load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ManifestError([FieldError("", f"invalid YAML: {getattr(exc, 'problem', None) or exc}")], where) from exc
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ManifestError([FieldError("", "func.yaml must hold one mapping (the function's configuration)")], where)
    doc: dict[str, Any] = docs[0]
    errors = schema_errors(doc)
    if errors:
        raise ManifestError(errors, where)
    return doc


def schema_errors(doc: object) -> list[FieldError]:
    """Every way `doc` breaks func.yaml's schema, as field errors sorted by path."""
    import jsonschema  # here: ~60 ms to import, which every CLI command would pay otherwise

    validator = jsonschema.Draft4Validator(schema())
    found: list[FieldError] = []
    for error in validator.iter_errors(doc):
        found.extend(_field_errors(error))
        if len(found) >= MAX_ERRORS:
            break
    # A value of the wrong type is only that: not also outside the enum or the pattern of the right type.
    mistyped = {e.path for e in found if e.message.startswith("must be of type ")}
    kept = {e for e in found if e.path not in mistyped or e.message.startswith("must be of type ")}
    return sorted(kept, key=lambda e: (e.path, e.message))[:MAX_ERRORS]


def _path(parts: Any) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", str(part)):
            path += f".{part}" if path else str(part)
        else:
            path += f"[{part}]"
    return path


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _field_errors(error: ValidationError) -> list[FieldError]:
    path = _path(error.absolute_path)
    kind, value = error.validator, error.instance
    expected: Any = error.validator_value
    if kind == "additionalProperties" and isinstance(value, dict) and isinstance(error.schema, dict):
        declared = set(error.schema.get("properties", {}))
        return [FieldError(_join(path, str(key)), "unknown field") for key in value if key not in declared]
    if kind == "required" and isinstance(value, dict):
        return [FieldError(_join(path, str(key)), "missing field(s)") for key in expected if key not in value]
    message = {
        "minimum": f"must be >= {expected}",
        "maximum": f"must be <= {expected}",
        "pattern": f"must match {expected}",
        "enum": "must be one of " + ", ".join(str(v) for v in (expected if isinstance(expected, list) else [])),
        "type": f"must be of type {expected}",
        "oneOf": "must set exactly one of secret, configMap, persistentVolumeClaim, emptyDir",
    }.get(str(kind), error.message)
    return [FieldError(path, message)]


def source_digest(directory: Path) -> str:
    """sha256 over the project's files (relative path and content), without hidden entries and bytecode."""
    digest = hashlib.sha256()
    count = size = 0
    for root, dirs, files in os.walk(directory):
        # Hidden folders (.git, .venv), bytecode caches and virtualenvs by any name are not the function's code.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__"
                         and not (Path(root) / d / "pyvenv.cfg").exists())
        for name in sorted(files):
            if name.startswith(".") or name.endswith((".pyc", ".pyo")):
                continue
            path = Path(root) / name
            count += 1
            if count > MAX_SOURCE_FILES:
                raise ManifestError([FieldError("", f"the project has more than {MAX_SOURCE_FILES} files")])
            try:
                content = b""
                if path.is_file():
                    with path.open("rb") as stream:  # never more than the budget left, whatever the file's size
                        content = stream.read(MAX_SOURCE_BYTES - size + 1)
            except OSError as exc:
                raise ManifestError([FieldError("", f"cannot read {path}: {exc.strerror or exc}")]) from exc
            size += len(content)
            if size > MAX_SOURCE_BYTES:
                raise ManifestError([FieldError("", f"the project is larger than {MAX_SOURCE_BYTES >> 20} MiB")])
            digest.update(str(path.relative_to(directory)).encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


def to_resources(doc: Mapping[str, Any], directory: Path, environ: Mapping[str, str],
                 digest: str | None = None) -> list[Resource]:
    """The Service (and a Trigger per `deploy.subscriptions` entry) for a checked func.yaml; ManifestError
    for what wisp cannot run, naming the field. `digest` (of the project's files) goes on the template."""
    errors: list[FieldError] = []
    runtime = doc.get("runtime")
    if runtime is None:
        errors.append(FieldError("runtime", "missing field(s); wisp runs `runtime: python`"))
    elif runtime != "python":
        errors.append(FieldError("runtime", f"wisp runs Python functions; build an image for `runtime: {runtime}` "
                                            "and use a container Service"))
    name = doc.get("name")
    if not name:
        errors.append(FieldError("name", "missing field(s); `func create` writes it, or set it by hand"))
    run: Mapping[str, Any] = doc.get("run") or {}
    deploy: Mapping[str, Any] = doc.get("deploy") or {}
    if run.get("volumes"):
        errors.append(FieldError("run.volumes", "not supported by wisp yet: instances are processes on this "
                                                "machine; read Secrets and ConfigMaps through run.envs instead"))
    if run.get("kafka"):
        errors.append(FieldError("run.kafka", "not supported by wisp yet: apply a KafkaSource whose sink is "
                                              "this function instead"))
    env, env_from = _envs(run.get("envs") or [], environ, errors)
    labels = _labels(deploy.get("labels") or [])
    if errors:
        raise ManifestError(errors)
    assert isinstance(name, str)
    if doc.get("domain"):
        labels["func.domain"] = str(doc["domain"])
    namespace = str(doc.get("namespace") or deploy.get("namespace") or "default")
    annotations = {str(k): str(v) for k, v in (deploy.get("annotations") or {}).items()}
    options: Mapping[str, Any] = deploy.get("options") or {}
    template_annotations = {**annotations, **_scale_annotations(options.get("scale") or {}),
                            WORKLOAD_CLASS_ANNOTATION: "function"}
    if digest is not None:
        template_annotations[SOURCE_DIGEST_ANNOTATION] = digest
    health: Mapping[str, Any] = deploy.get("healthEndpoints") or {}
    container: dict[str, Any] = {
        "image": "./",  # the project directory, resolved against the manifest-dir annotation
        "livenessProbe": {"httpGet": {"path": health.get("liveness") or LIVENESS_ENDPOINT}},
        "readinessProbe": {"httpGet": {"path": health.get("readiness") or READINESS_ENDPOINT}},
    }
    if env:
        container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    resources_ = options.get("resources") or {}
    limits = dict(resources_.get("limits") or {})
    concurrency = limits.pop("concurrency", None)
    requirements = {part: dict(resources_[part]) if part == "requests" else limits
                    for part in ("requests", "limits") if resources_.get(part)}
    requirements = {part: values for part, values in requirements.items() if values}
    if requirements:
        container["resources"] = requirements
    pod_spec: dict[str, Any] = {"containers": [container]}
    if concurrency is not None:
        pod_spec["containerConcurrency"] = concurrency
    metadata: dict[str, Any] = {
        "name": name, "namespace": namespace,
        "annotations": {**annotations, MANIFEST_DIR_ANNOTATION: str(directory)},
    }
    if labels:
        metadata["labels"] = labels
    template_meta: dict[str, Any] = {"annotations": template_annotations}
    if labels:
        template_meta["labels"] = dict(labels)
    service: Resource = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": metadata,
        "spec": {"template": {"metadata": template_meta, "spec": pod_spec}},
    }
    return [service, *_triggers(name, namespace, deploy.get("subscriptions") or [])]


def knative_errors(resources: list[Resource]) -> list[FieldError]:
    """Knative's rules on the fields func.yaml set (max-scale >= min-scale, containerConcurrency <= 1000, ...),
    each error at its func.yaml field. The rest is left to admission, which knows the cluster's settings
    (config-autoscaler may allow what the defaults do not, such as initial-scale 0)."""
    errors: list[FieldError] = []
    for resource in resources:
        for error in validate(copy.deepcopy(resource)):
            field = _FIELDS_BY_SERVICE_PATH.get(error.path)
            if field is not None:
                errors.append(FieldError(field, error.message))
    return errors


_FIELDS_BY_SERVICE_PATH = {
    **{f"spec.template.metadata.annotations[{annotation}]": f"deploy.options.scale.{key}"
       for key, annotation in _SCALE_ANNOTATIONS.items()},
    "spec.template.spec.containerConcurrency": "deploy.options.resources.limits.concurrency",
    "metadata.name": "name",
    "metadata.namespace": "namespace",
}


def invoke(doc: Mapping[str, Any]) -> str:
    """How the function is invoked: `http` (the default) or `cloudevent`."""
    value = doc.get("invoke") or "http"
    return str(value) if value in INVOKES else "http"


def _scale_annotations(scale: Mapping[str, Any]) -> dict[str, str]:
    return {_SCALE_ANNOTATIONS[key]: _number(value) if key != "metric" else str(value)
            for key, value in scale.items() if key in _SCALE_ANNOTATIONS and value is not None}


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _reference(value: str) -> list[str] | None:
    """`{{ kind:name[:key] }}` split into its parts, or None for a plain value."""
    match = _REFERENCE.match(value.strip())
    return None if match is None else [part.strip() for part in match.group(1).split(":")]


def _envs(envs: list[Mapping[str, Any]], environ: Mapping[str, str],
          errors: list[FieldError]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    env: list[dict[str, Any]] = []
    env_from: list[dict[str, Any]] = []
    for i, entry in enumerate(envs):
        path = f"run.envs[{i}]"
        name, value = entry.get("name"), entry.get("value")
        if value is None:
            errors.append(FieldError(f"{path}.value", "missing field(s)"))
            continue
        parts = _reference(str(value))
        if name is None:
            # `{{ secret:name }}` / `{{ configMap:name }}`: every key of it.
            if parts is None or len(parts) != 2 or parts[0] not in ("secret", "configMap") or not parts[1]:
                errors.append(FieldError(f"{path}.value", "without a name, must be {{ secret:NAME }} or "
                                                          "{{ configMap:NAME }}"))
                continue
            ref = "secretRef" if parts[0] == "secret" else "configMapRef"
            env_from.append({ref: {"name": parts[1]}})
        elif parts is None:
            env.append({"name": name, "value": str(value)})
        elif len(parts) == 2 and parts[0] == "env" and parts[1]:
            if parts[1] not in environ:
                errors.append(FieldError(f"{path}.value", f"required local environment variable {parts[1]!r} "
                                                          "is not set"))
                continue
            env.append({"name": name, "value": environ[parts[1]]})
        elif len(parts) == 3 and parts[0] in ("secret", "configMap") and parts[1] and parts[2]:
            ref = "secretKeyRef" if parts[0] == "secret" else "configMapKeyRef"
            env.append({"name": name, "valueFrom": {ref: {"name": parts[1], "key": parts[2]}}})
        else:
            errors.append(FieldError(f"{path}.value", "must be a value, {{ env:NAME }}, {{ secret:NAME:KEY }} "
                                                      "or {{ configMap:NAME:KEY }}"))
    return env, env_from


def _labels(labels: list[Mapping[str, Any]]) -> dict[str, str]:
    return {str(label["key"]): str(label.get("value") or "") for label in labels}


def _triggers(service: str, namespace: str, subscriptions: list[Mapping[str, Any]]) -> list[Resource]:
    """What func makes for `deploy.subscriptions`: a Trigger per entry, from the named Broker to the function."""
    return [{
        "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
        "metadata": {"name": f"{service}-function-trigger-{i}", "namespace": namespace},
        "spec": {
            "broker": str(sub["source"]),
            "filter": {"attributes": {str(k): str(v) for k, v in (sub.get("filters") or {}).items()}},
            "subscriber": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": service}},
        },
    } for i, sub in enumerate(subscriptions)]


def read(directory: Path) -> dict[str, Any]:
    """The project's func.yaml, read within the loader's size limit and checked (ManifestError naming it)."""
    where = str(directory / FUNC_YAML)
    try:
        with (directory / FUNC_YAML).open("rb") as stream:
            raw = stream.read(bounded_yaml.MAX_TEXT_BYTES + 1)
    except OSError as exc:
        raise ManifestError([FieldError("", f"cannot read: {exc.strerror or exc}")], where) from exc
    if len(raw) > bounded_yaml.MAX_TEXT_BYTES:
        raise ManifestError([FieldError("", "func.yaml is larger than 3 MiB")], where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError([FieldError("", f"not UTF-8 text: {exc.reason} at byte {exc.start}")], where) from exc
    return parse(text, where)


def load(directory: Path, environ: Mapping[str, str]) -> list[Resource]:
    """Read and convert the project in `directory` (ManifestError names func.yaml and the field)."""
    where = str(directory / FUNC_YAML)
    doc = read(directory)
    try:
        resources = to_resources(doc, directory.resolve(), environ, source_digest(directory))
    except ManifestError as exc:
        raise ManifestError(exc.errors, where) from None
    errors = knative_errors(resources)
    if errors:
        raise ManifestError(errors, where)
    return resources
