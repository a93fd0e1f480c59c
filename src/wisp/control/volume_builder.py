"""Revision → the files of its volumes and their mounts (what the kubelet would write for its pod): ConfigMap,
Secret, projected (ConfigMap, Secret and downward API items) and emptyDir volumes, resolved from the store."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from wisp.api.quantity import to_bytes
from wisp.serving.workloads.volumes import DEFAULT_MODE, Mount, Volume, VolumeFile, safe_relative
from wisp.types import Resource

Lookup = Callable[[str, str], Resource | None]  # (namespace, name) → Secret or ConfigMap


class VolumeError(Exception):
    """A volume cannot be made; the message names the field."""


def _config_map_data(cm: Resource) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return data


def secret_data(secret: Resource) -> dict[str, bytes]:
    """A Secret's values by key; `stringData` over `data`, as the API server merges them on write."""
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


def _mode(value: object, default: int) -> int:
    return value & 0o777 if isinstance(value, int) and not isinstance(value, bool) else default


Reader = Callable[[Resource], dict[str, bytes]]


def _keyed(source: Mapping[str, Any], name: str, what: str, lookup: Lookup, read: Reader, namespace: str,
           default_mode: int, path: str) -> list[VolumeFile]:
    """A ConfigMap's or Secret's keys as files: all of them, or the `items` asked for (key → path, mode)."""
    found = lookup(namespace, name)
    optional = bool(source.get("optional", False))
    if found is None:
        if optional:
            return []
        raise VolumeError(f'{path}: {what} "{name}" not found')
    data = read(found)
    items = source.get("items")
    if not items:
        return [VolumeFile(key, value, default_mode) for key, value in sorted(data.items())]
    files = []
    for i, item in enumerate(items):
        key, file_path = str(item.get("key", "")), str(item.get("path", ""))
        if not safe_relative(file_path):
            raise VolumeError(f"{path}.items[{i}].path: {file_path!r} must be a relative path without '..'")
        if key not in data:
            if optional:
                continue
            raise VolumeError(f'{path}.items[{i}].key: key "{key}" not found in {what} "{name}"')
        files.append(VolumeFile(file_path, data[key], _mode(item.get("mode"), default_mode)))
    return files


_POD_FIELDS = ("metadata.name", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.podIP",
               "status.hostIP")


def _downward(source: Mapping[str, Any], revision: Resource, default_mode: int, path: str) -> list[VolumeFile]:
    """The downward API items a revision's instances share: namespace, labels and annotations of the pod
    template. Fields of one pod (its name, IP, ...) differ per instance and are refused."""
    meta = revision["metadata"]
    files = []
    for i, item in enumerate(source.get("items") or []):
        ipath = f"{path}.items[{i}]"
        file_path = str(item.get("path", ""))
        if not safe_relative(file_path):
            raise VolumeError(f"{ipath}.path: {file_path!r} must be a relative path without '..'")
        if item.get("resourceFieldRef") is not None:
            raise VolumeError(f"{ipath}.resourceFieldRef: not supported by wisp yet")
        field = str((item.get("fieldRef") or {}).get("fieldPath", ""))
        value: str
        if field == "metadata.namespace":
            value = meta.get("namespace", "default")
        elif field in ("metadata.labels", "metadata.annotations"):
            values = meta.get(field.split(".")[1]) or {}
            value = "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
        elif field.startswith(("metadata.labels['", "metadata.annotations['")) and field.endswith("']"):
            kind, key = field[len("metadata."):-2].split("['", 1)
            value = str((meta.get(kind) or {}).get(key, ""))
        elif field in _POD_FIELDS:
            raise VolumeError(f"{ipath}.fieldRef.fieldPath: {field} differs per instance; wisp writes one volume "
                              "for all of a revision's instances, so it is not supported")
        else:
            raise VolumeError(f"{ipath}.fieldRef.fieldPath: {field!r} is not supported")
        files.append(VolumeFile(file_path, value.encode(), _mode(item.get("mode"), default_mode)))
    return files


def _volume(volume: Mapping[str, Any], revision: Resource, secrets: Lookup, config_maps: Lookup,
            path: str) -> Volume:
    name = str(volume.get("name", ""))
    namespace = revision["metadata"].get("namespace", "default")
    if "emptyDir" in volume:
        empty = volume.get("emptyDir") or {}
        limit = empty.get("sizeLimit")
        try:
            size = None if limit is None else to_bytes(limit)
        except ValueError as exc:
            raise VolumeError(f"{path}.emptyDir.sizeLimit: {exc}") from None
        return Volume(name, "emptyDir", size_limit=size)
    if "configMap" in volume:
        source = volume.get("configMap") or {}
        files = _keyed(source, str(source.get("name", "")), "config map", config_maps, _config_map_data, namespace,
                       _mode(source.get("defaultMode"), DEFAULT_MODE), f"{path}.configMap")
        return Volume(name, "configMap", tuple(files))
    if "secret" in volume:
        source = volume.get("secret") or {}
        files = _keyed(source, str(source.get("secretName", "")), "secret", secrets, secret_data, namespace,
                       _mode(source.get("defaultMode"), DEFAULT_MODE), f"{path}.secret")
        return Volume(name, "secret", tuple(files))
    projected = volume.get("projected") or {}
    default_mode = _mode(projected.get("defaultMode"), DEFAULT_MODE)
    files = []
    for i, item in enumerate(projected.get("sources") or []):
        spath = f"{path}.projected.sources[{i}]"
        if item.get("configMap") is not None:
            src = item["configMap"]
            files += _keyed(src, str(src.get("name", "")), "config map", config_maps, _config_map_data, namespace,
                            default_mode, f"{spath}.configMap")
        elif item.get("secret") is not None:
            src = item["secret"]
            files += _keyed(src, str(src.get("name", "")), "secret", secrets, secret_data, namespace, default_mode,
                            f"{spath}.secret")
        elif item.get("downwardAPI") is not None:
            files += _downward(item["downwardAPI"], revision, default_mode, f"{spath}.downwardAPI")
        else:
            raise VolumeError(f"{spath}.serviceAccountToken: there is no Kubernetes API server on one machine to "
                              "issue service account tokens")
    paths = [f.path for f in files]
    if len(set(paths)) != len(paths):
        raise VolumeError(f"{path}.projected: two sources write the same path")
    return Volume(name, "projected", tuple(files))


def volume_specs(revision: Resource, secrets: Lookup, config_maps: Lookup) -> tuple[tuple[Volume, ...],
                                                                                     tuple[Mount, ...]]:
    """The revision's volumes (with their files) and its container's mounts."""
    spec = revision["spec"]
    volumes = tuple(_volume(v, revision, secrets, config_maps, f"spec.volumes[{i}]")
                    for i, v in enumerate(spec.get("volumes") or []))
    container = spec["containers"][0]
    mounts = tuple(Mount(str(m.get("name", "")), str(m.get("mountPath", "")), bool(m.get("readOnly", False)),
                         str(m.get("subPath") or "")) for m in container.get("volumeMounts") or [])
    kinds = {v.name: v.kind for v in volumes}
    for i, mount in enumerate(mounts):
        mpath = f"spec.containers[0].volumeMounts[{i}]"
        if mount.sub_path and not safe_relative(mount.sub_path):
            raise VolumeError(f"{mpath}.subPath: {mount.sub_path!r} must be a relative path without '..'")
        if kinds.get(mount.volume) == "emptyDir" and (
                mount.sub_path or sum(1 for m in mounts if m.volume == mount.volume) > 1):
            raise VolumeError(f"{mpath}: an emptyDir is a tmpfs at one mountPath on wisp; a subPath of it or a "
                              "second mount of it is not supported yet")
    return volumes, mounts


def referenced(revision: Resource) -> tuple[set[str], set[str]]:
    """Names of the Secrets and ConfigMaps the revision's volumes show (a change to one updates the files)."""
    secrets, config_maps = set(), set()
    for volume in revision.get("spec", {}).get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        if isinstance(volume.get("secret"), dict):
            secrets.add(str(volume["secret"].get("secretName", "")))
        if isinstance(volume.get("configMap"), dict):
            config_maps.add(str(volume["configMap"].get("name", "")))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if isinstance(source, dict) and isinstance(source.get("secret"), dict):
                secrets.add(str(source["secret"].get("name", "")))
            if isinstance(source, dict) and isinstance(source.get("configMap"), dict):
                config_maps.add(str(source["configMap"].get("name", "")))
    return secrets, config_maps
