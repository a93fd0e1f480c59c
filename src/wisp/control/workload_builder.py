"""Revision → WorkloadSpec: the workload class, code directory, environment and probe of its instances."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wisp.api.loader import is_local_image
from wisp.api.names import (
    CONFIGURATION_LABEL,
    FUNCTION_TARGET_ANNOTATION,
    MANIFEST_DIR_ANNOTATION,
    SERVICE_LABEL,
    WORKLOAD_CLASS_ANNOTATION,
)
from wisp.api.quantity import to_bytes, to_millicores
from wisp.control.env_expansion import expand
from wisp.control.volume_builder import secret_data
from wisp.serving.workloads.cgroups import Limits
from wisp.serving.workloads.types import OciOptions, Probe, WorkloadSpec
from wisp.types import Resource

# The daemon's environment that instances inherit; everything else they get is declared in the manifest.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV", "SYSTEMROOT", "PYTHONPATH")

Lookup = Callable[[str, str], Resource | None]  # (namespace, name) → Secret or ConfigMap


class SpecError(Exception):
    """The revision cannot be turned into instances; the message names the field; `reason` is the Revision
    condition's (the kubelet's, for a pod spec it cannot make a container of)."""

    reason = "CreateContainerConfigError"


class ImageMissing(SpecError):
    """The image is a local directory that is not there (Knative's digest resolution failing)."""

    reason = "ContainerMissing"


def workload_class(revision: Resource) -> str:
    value = revision["metadata"].get("annotations", {}).get(WORKLOAD_CLASS_ANNOTATION, "container")
    return "function" if value == "function" else "container"


def _secret_value(secret: Resource, key: str) -> str | None:
    value = secret_data(secret).get(key)
    return None if value is None else value.decode("utf-8", errors="replace")


def _key_ref(ref: Mapping[str, Any], namespace: str, lookup: Lookup, what: str, path: str,
             decode: Callable[[Resource, str], str | None]) -> str | None:
    source = lookup(namespace, ref.get("name", ""))
    optional = bool(ref.get("optional", False))
    if source is None:
        if optional:
            return None
        raise SpecError(f'{path}: {what} "{ref.get("name", "")}" not found')
    value = decode(source, ref.get("key", ""))
    if value is None and not optional:
        raise SpecError(f'{path}: key "{ref.get("key", "")}" not found in {what} "{ref.get("name", "")}"')
    return value


def _config_value(config_map: Resource, key: str) -> str | None:
    value = config_map.get("data", {}).get(key)
    return None if value is None else str(value)


def instance_env(
    revision: Resource, secrets: Lookup, config_maps: Lookup, extra: Mapping[str, str],
    inherited: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the revision's instances, runtime contract included (PORT is added per instance)."""
    meta = revision["metadata"]
    namespace = meta.get("namespace", "default")
    container = revision["spec"]["containers"][0]
    base = os.environ if inherited is None else inherited
    env = {k: base[k] for k in _INHERITED if k in base}
    # `python` in a container's command means wisp's own Python (with the packages wisp was installed with).
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", os.defpath)])
    env.update(extra)
    prefix = "spec.containers[0]"
    for i, source in enumerate(container.get("envFrom", [])):
        pre = source.get("prefix", "")
        if "secretRef" in source:
            ref = source["secretRef"]
            secret = secrets(namespace, ref.get("name", ""))
            if secret is None:
                if not ref.get("optional"):
                    raise SpecError(f'{prefix}.envFrom[{i}].secretRef: secret "{ref.get("name")}" not found')
                continue
            env.update({pre + k: v.decode("utf-8", errors="replace") for k, v in secret_data(secret).items()})
        elif "configMapRef" in source:
            ref = source["configMapRef"]
            cm = config_maps(namespace, ref.get("name", ""))
            if cm is None:
                if not ref.get("optional"):
                    raise SpecError(f'{prefix}.envFrom[{i}].configMapRef: config map "{ref.get("name")}" not found')
                continue
            env.update({pre + k: str(v) for k, v in cm.get("data", {}).items()})
    for i, var in enumerate(container.get("env", [])):
        path = f"{prefix}.env[{i}].valueFrom"
        if "valueFrom" not in var:
            env[var["name"]] = expand(str(var.get("value", "")), env)
            continue
        value_from = var["valueFrom"]
        value: str | None
        if "secretKeyRef" in value_from:
            value = _key_ref(value_from["secretKeyRef"], namespace, secrets, "secret", path, _secret_value)
        else:
            value = _key_ref(value_from.get("configMapKeyRef", {}), namespace, config_maps, "config map", path,
                             _config_value)
        if value is not None:
            env[var["name"]] = value
    # A SinkBinding's K_SINK / K_CE_OVERRIDES replace the container's own, as Knative's SinkBinding.Do does.
    if "K_SINK" in extra:
        env.pop("K_CE_OVERRIDES", None)
        env.update({name: extra[name] for name in ("K_SINK", "K_CE_OVERRIDES") if name in extra})
    labels = meta.get("labels", {})
    env.update({
        "K_SERVICE": labels.get(SERVICE_LABEL, ""),
        "K_CONFIGURATION": labels.get(CONFIGURATION_LABEL, ""),
        "K_REVISION": meta["name"],
    })
    return env


def _recorded_digest(revision: Resource, image: str) -> str | None:
    """The digest an earlier reconcile resolved the image to (Knative resolves a tag once per Revision)."""
    statuses = (revision.get("status") or {}).get("containerStatuses") or []
    digest = statuses[0].get("imageDigest") if statuses and isinstance(statuses[0], dict) else None
    if not isinstance(digest, str) or "@sha256:" not in digest or digest == image:
        return None
    return digest


def oci_options(revision: Resource, container: Mapping[str, Any]) -> OciOptions:
    """How an OCI image's container runs: pull policy, workingDir, securityContext (validated at apply)."""
    security = container.get("securityContext") or {}
    capabilities = security.get("capabilities") or {}
    user, group = security.get("runAsUser"), security.get("runAsGroup")
    seccomp = (security.get("seccompProfile") or {}).get("type")
    if seccomp not in (None, "RuntimeDefault", "Unconfined"):
        raise SpecError(f"spec.containers[0].securityContext.seccompProfile.type: {seccomp} is not supported "
                        "(RuntimeDefault or Unconfined)")
    resources = limits(container.get("resources") or {})
    return OciOptions(
        pull_policy=container.get("imagePullPolicy") or "IfNotPresent",
        working_dir=str(container["workingDir"]) if container.get("workingDir") else None,
        run_as_user=None if user is None else int(user),
        run_as_group=None if group is None else int(group),
        run_as_non_root=bool(security.get("runAsNonRoot", False)),
        read_only_root=bool(security.get("readOnlyRootFilesystem", False)),
        no_new_privileges=security.get("allowPrivilegeEscalation") is False,
        cap_add=tuple(str(c) for c in capabilities.get("add") or []),
        cap_drop=tuple(str(c) for c in capabilities.get("drop") or []),
        seccomp_unconfined=seccomp == "Unconfined",
        memory_limit=resources.memory, cpu_limit_millis=resources.cpu_millis,
        cpu_request_millis=resources.cpu_request_millis,
        pinned=_recorded_digest(revision, str(container.get("image", ""))),
    )


def _action(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The probe's handler as Probe fields (validated at apply: exactly one handler)."""
    if spec.get("httpGet") is not None:
        http = spec["httpGet"]
        headers = tuple((str(h.get("name", "")), str(h.get("value", ""))) for h in http.get("httpHeaders") or [])
        return {"http_path": str(http.get("path") or "/"), "http_headers": headers}
    if spec.get("exec") is not None:
        return {"exec_command": tuple(str(c) for c in spec["exec"].get("command") or [])}
    if spec.get("grpc") is not None:
        return {"grpc_service": str(spec["grpc"].get("service") or "")}
    return {}


def _probe(spec: Mapping[str, Any]) -> Probe:
    """A liveness or startup probe with Kubernetes' defaults: every 10 s, 1 s per attempt, 3 failures."""
    return Probe(**_action(spec), period=float(spec.get("periodSeconds") or 10),
                 timeout=float(spec.get("timeoutSeconds") or 1),
                 failure_threshold=int(spec.get("failureThreshold") or 3),
                 initial_delay=float(spec.get("initialDelaySeconds") or 0), declared=True)


def readiness_probe(spec: Mapping[str, Any]) -> Probe:
    """Readiness: Knative's aggressive 50 ms probing while an instance starts unless periodSeconds is set. A probe
    other than the default TCP one (or with a period) is declared: it keeps being run once the instance is ready."""
    action = _action(spec)
    period = float(spec.get("periodSeconds") or 0)
    if not action and not period:
        return Probe()
    return Probe(**action, period=period or Probe.period, timeout=float(spec.get("timeoutSeconds") or 1),
                 failure_threshold=int(spec.get("failureThreshold") or 3),
                 initial_delay=float(spec.get("initialDelaySeconds") or 0), declared=True)


def workload_spec(revision: Resource, env: dict[str, str]) -> WorkloadSpec:
    meta = revision["metadata"]
    annotations = meta.get("annotations", {})
    spec = revision["spec"]
    if len(spec["containers"]) > 1:
        raise SpecError("spec.containers: wisp runs one container per revision; sidecars "
                        f"({', '.join(str(c.get('name', '?')) for c in spec['containers'][1:])}) are not supported")
    container = spec["containers"][0]
    image = str(container.get("image", ""))
    klass = workload_class(revision)
    if container.get("volumeMounts") or spec.get("volumes"):
        field = "spec.containers[0].volumeMounts" if container.get("volumeMounts") else "spec.volumes"
        if klass == "function":
            raise SpecError(f"{field}: volumes of functions are not supported by wisp yet (container instances "
                            "of a local directory have them); read Secrets and ConfigMaps through env or envFrom")

    directory: Path | None = None
    if is_local_image(image):
        base = Path(annotations.get(MANIFEST_DIR_ANNOTATION, "."))
        directory = (base / image).resolve()
        if not directory.is_dir():
            raise ImageMissing(f"spec.containers[0].image: {image} is not a directory (looked in {directory})")
    elif klass == "function":
        raise SpecError(
            f"spec.containers[0].image: a function needs a local code directory such as ./app, not {image!r}")
    if klass == "container" and directory is not None and not container.get("command"):
        raise SpecError("spec.containers[0].command: required when the image is a local directory "
                        "(there is no image entrypoint to run)")
    target = env.get("FUNCTION_TARGET") or annotations.get(FUNCTION_TARGET_ANNOTATION) or "main:handle"
    probe = readiness_probe(container.get("readinessProbe") or {})
    liveness, startup = (_probe(container[name]) if container.get(name) else None
                         for name in ("livenessProbe", "startupProbe"))
    return WorkloadSpec(
        revision=meta["name"], namespace=meta.get("namespace", "default"),
        workload_class="function" if klass == "function" else "container",
        directory=directory, image=image,
        command=[expand(str(c), env) for c in container.get("command", [])],
        args=[expand(str(a), env) for a in container.get("args", [])],
        env=env, function_target=target, probe=probe, liveness=liveness, startup=startup,
        timeout_seconds=float(spec.get("timeoutSeconds", 300) or 300),
        oci=OciOptions() if directory is not None else oci_options(revision, container),
        **(_local_process(container) if klass == "container" and directory is not None else {}),
        **_requests(container.get("resources") or {}),
    )


def _requests(resources: Mapping[str, Any]) -> dict[str, Any]:
    """resources.requests, what the machine must have free to place an instance (every workload class)."""
    asks = resources.get("requests") or {}
    try:
        return {"requests_cpu_millis": 0 if asks.get("cpu") is None else to_millicores(asks["cpu"]),
                "requests_memory": 0 if asks.get("memory") is None else to_bytes(asks["memory"])}
    except ValueError as exc:
        raise SpecError(f"spec.containers[0].resources.requests: {exc}") from None


def _local_process(container: Mapping[str, Any]) -> dict[str, Any]:
    """workingDir and the user of a local process (an OCI image's go to the engine through OciOptions)."""
    security = container.get("securityContext") or {}
    user, group = security.get("runAsUser"), security.get("runAsGroup")
    return {"working_dir": str(container["workingDir"]) if container.get("workingDir") else None,
            "run_as_user": None if user is None else int(user), "run_as_group": None if group is None else int(group),
            "limits": limits(container.get("resources") or {})}


def limits(resources: Mapping[str, Any]) -> Limits:
    """resources.limits.memory and .cpu, and the CPU request (a weight), as the cgroup gets them."""
    caps, asks = resources.get("limits") or {}, resources.get("requests") or {}
    try:
        memory = None if caps.get("memory") is None else to_bytes(caps["memory"])
        cpu = None if caps.get("cpu") is None else to_millicores(caps["cpu"])
        request = None if asks.get("cpu") is None else to_millicores(asks["cpu"])
    except ValueError as exc:
        raise SpecError(f"spec.containers[0].resources: {exc}") from None
    return Limits(memory=memory, cpu_millis=cpu, cpu_request_millis=request)
