"""Kubernetes' protobuf encoding of the core kinds wisp stores, decoded into their JSON form.

kubectl's typed clients (`kubectl create configmap|secret|namespace`) send `application/vnd.kubernetes.protobuf`
and do not fall back to JSON. The body is the magic `k8s\\0` and a `runtime.Unknown` (typeMeta = 1, raw = 2)
whose raw bytes are the object's message; field numbers are those of k8s.io/api/core/v1's generated.proto.
Only what these three kinds carry on create and update is read; a field wisp does not know is skipped, as a
protobuf reader does. Anything malformed is 400 BadRequest.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from wisp.control.refusal import bad_request

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

Fields = dict[int, list[int | bytes]]


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def fields(data: bytes) -> Fields:
    """Field number → its values in order (varints as ints, length-delimited as bytes; fixed ones skipped)."""
    out: Fields = {}
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            out.setdefault(number, []).append(value)
        elif wire == 2:
            size, at = _varint(data, at)
            if at + size > len(data):
                raise ValueError("truncated field")
            out.setdefault(number, []).append(data[at:at + size])
            at += size
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if at > len(data):
            raise ValueError("truncated field")
    return out


def _text(f: Fields, number: int) -> str | None:
    values = [v for v in f.get(number, []) if isinstance(v, bytes)]
    return values[-1].decode("utf-8") if values else None


def _texts(f: Fields, number: int) -> list[str]:
    return [v.decode("utf-8") for v in f.get(number, []) if isinstance(v, bytes)]


def _int(f: Fields, number: int) -> int | None:
    values = [v for v in f.get(number, []) if isinstance(v, int)]
    return values[-1] if values else None


def _map(f: Fields, number: int, value: Callable[[bytes], Any]) -> dict[str, Any] | None:
    if number not in f:
        return None
    out: dict[str, Any] = {}
    for entry in f[number]:
        if isinstance(entry, bytes):
            item = fields(entry)
            key = _text(item, 1) or ""
            raw = [v for v in item.get(2, []) if isinstance(v, bytes)]
            out[key] = value(raw[-1] if raw else b"")
    return out


def _owner(data: bytes) -> dict[str, Any]:
    f = fields(data)
    out: dict[str, Any] = {"apiVersion": _text(f, 5) or "", "kind": _text(f, 1) or "", "name": _text(f, 3) or "",
                           "uid": _text(f, 4) or ""}
    for number, name in ((6, "controller"), (7, "blockOwnerDeletion")):
        flag = _int(f, number)
        if flag is not None:
            out[name] = bool(flag)
    return out


def _metadata(data: bytes) -> dict[str, Any]:
    f = fields(data)
    meta: dict[str, Any] = {}
    for number, name in ((1, "name"), (2, "generateName"), (3, "namespace"), (6, "resourceVersion"), (5, "uid")):
        value = _text(f, number)
        if value:
            meta[name] = value
    for number, name in ((11, "labels"), (12, "annotations")):
        mapping = _map(f, number, lambda raw: raw.decode("utf-8"))
        if mapping:
            meta[name] = mapping
    owners = [_owner(v) for v in f.get(13, []) if isinstance(v, bytes)]
    if owners:
        meta["ownerReferences"] = owners
    finalizers = _texts(f, 14)
    if finalizers:
        meta["finalizers"] = finalizers
    return meta


def _config_map(f: Fields) -> dict[str, Any]:
    out: dict[str, Any] = {}
    data = _map(f, 2, lambda raw: raw.decode("utf-8"))
    binary = _map(f, 3, lambda raw: base64.b64encode(raw).decode())
    if data is not None:
        out["data"] = data
    if binary is not None:
        out["binaryData"] = binary
    if _int(f, 4) is not None:
        out["immutable"] = bool(_int(f, 4))
    return out


def _secret(f: Fields) -> dict[str, Any]:
    out: dict[str, Any] = {}
    data = _map(f, 2, lambda raw: base64.b64encode(raw).decode())
    string_data = _map(f, 4, lambda raw: raw.decode("utf-8"))
    if data is not None:
        out["data"] = data
    if string_data is not None:
        out["stringData"] = string_data
    if _text(f, 3):
        out["type"] = _text(f, 3)
    if _int(f, 5) is not None:
        out["immutable"] = bool(_int(f, 5))
    return out


def _namespace(f: Fields) -> dict[str, Any]:
    spec = [fields(v) for v in f.get(2, []) if isinstance(v, bytes)]
    finalizers = _texts(spec[-1], 1) if spec else []
    return {"spec": {"finalizers": finalizers}} if finalizers else {}


_KINDS: dict[str, Callable[[Fields], dict[str, Any]]] = {
    "ConfigMap": _config_map, "Secret": _secret, "Namespace": _namespace,
}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded ConfigMap, Secret or Namespace; Refused (400) for anything else."""
    if not body.startswith(MAGIC):
        raise bad_request("the protobuf body does not start with the Kubernetes magic number")
    try:
        unknown = fields(body[len(MAGIC):])
        type_meta = next((fields(v) for v in unknown.get(1, []) if isinstance(v, bytes)), {})
        api_version, kind = _text(type_meta, 1) or "", _text(type_meta, 2) or ""
        raw = next((v for v in unknown.get(2, []) if isinstance(v, bytes)), b"")
        decoder = _KINDS.get(kind)
        if api_version != "v1" or decoder is None:
            raise bad_request(f"protobuf bodies are read for v1 ConfigMap, Secret and Namespace only, not "
                              f"{api_version or '?'} {kind or '?'}: send JSON")
        obj = fields(raw)
        meta = next((_metadata(v) for v in obj.get(1, []) if isinstance(v, bytes)), {})
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, **decoder(obj)}
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the protobuf body cannot be decoded: {exc}") from None
