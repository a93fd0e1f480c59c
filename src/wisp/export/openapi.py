"""A manifest checked against a CRD's structural OpenAPI v3 schema, the way the Kubernetes API server checks a
custom resource before Knative's webhook sees it: types, integer formats, unknown fields (strict field
validation, as `kubectl apply` asks for), `required`, `enum` and `pattern`.

wisp's own validation (api/typecheck.py) checks types against *completed* schemas that also take the fields
older versions and the seed used; this one takes the CRD exactly as Knative ships it, so what passes here is
what the cluster accepts.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from wisp.api import schemas
from wisp.api.errors import FieldError
from wisp.api.kinds import Kind
from wisp.api.typecheck import json_type

Schema = dict[str, Any]

_FORMAT_BOUNDS = {"int32": 2**31, "int64": 2**63}
_MAX_ERRORS = 50  # a document wrong everywhere still gets a readable refusal


@functools.cache
def _raw_crd_versions(kind: Kind) -> dict[str, Schema]:
    """version → the vendored CRD's openAPIV3Schema, unchanged (only served versions)."""
    crd = schemas.crd_document(kind)
    return {v["name"]: v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v.get("served")}


def served_versions(kind: Kind) -> tuple[str, ...]:
    """The versions the cluster serves for `kind` (core kinds: v1)."""
    if not kind.group:
        return ("v1",)
    return tuple(_raw_crd_versions(kind))


def schema_of(kind: Kind, version: str) -> Schema:
    """The schema a cluster checks `kind` at `version` against: the CRD's, with Kubernetes' ObjectMeta (the API
    server checks metadata itself); core kinds take their Kubernetes types from wisp.api.schemas."""
    if not kind.group:
        return schemas.schema_for(kind)
    schema = dict(_raw_crd_versions(kind)[version])
    properties = dict(schema.get("properties") or {})
    properties["metadata"] = schemas.OBJECT_META
    properties.setdefault("apiVersion", schemas.STRING)
    properties.setdefault("kind", schemas.STRING)
    schema["properties"] = properties
    return schema


def check(value: object, schema: Schema, path: str = "") -> list[FieldError]:
    """Every structural problem of `value` against `schema`, each naming its field path."""
    errors: list[FieldError] = []
    _check(value, schema, path, errors)
    return errors[:_MAX_ERRORS]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check(value: object, schema: Schema, path: str, errors: list[FieldError]) -> None:
    if len(errors) >= _MAX_ERRORS:
        return
    if value is None:
        if not schema.get("nullable"):
            errors.append(FieldError(path, "must not be null"))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _is_int(value)):
            errors.append(FieldError(path, f"must be of type integer or string, got {json_type(value)}"))
        return
    for option in ("anyOf", "oneOf"):
        # Structural schemas use anyOf/oneOf only as value validation beside a declared type.
        if option in schema and "type" not in schema and not any(_fits(value, s) for s in schema[option]):
            errors.append(FieldError(path, f"matches none of the allowed forms ({option})"))
    expected = schema.get("type")
    if expected == "object":
        _object(value, schema, path, errors)
    elif expected == "array":
        _array(value, schema, path, errors)
    elif expected is not None:
        _scalar(value, schema, expected, path, errors)
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        errors.append(FieldError(path, f"unsupported value {value!r}: supported values: {allowed}"))


def _fits(value: object, schema: Schema) -> bool:
    probe: list[FieldError] = []
    _check(value, schema, "", probe)
    return not probe


def _object(value: object, schema: Schema, path: str, errors: list[FieldError]) -> None:
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"must be of type object, got {json_type(value)}"))
        return
    properties: dict[str, Schema] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    open_ended = schema.get("x-kubernetes-preserve-unknown-fields") or extra is True
    for key in schema.get("required") or ():
        if key not in value:
            errors.append(FieldError(_join(path, key), "Required value"))
    for key, item in value.items():
        if not isinstance(key, str):
            errors.append(FieldError(f"{path}[{key}]", f"keys must be strings, got {json_type(key)}"))
        elif key in properties:
            _check(item, properties[key], _join(path, key), errors)
        elif isinstance(extra, dict):
            _check(item, extra, f"{path}[{key}]", errors)
        elif not open_ended:
            errors.append(FieldError(_join(path, key), "field not declared in schema"))


def _array(value: object, schema: Schema, path: str, errors: list[FieldError]) -> None:
    if not isinstance(value, list):
        errors.append(FieldError(path, f"must be of type array, got {json_type(value)}"))
        return
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _check(item, items, f"{path}[{i}]", errors)


def _scalar(value: object, schema: Schema, expected: str, path: str, errors: list[FieldError]) -> None:
    if expected == "string":
        ok = isinstance(value, str)
    elif expected == "boolean":
        ok = isinstance(value, bool)
    elif expected == "integer":
        ok = _is_int(value)
    elif expected == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = True
    if not ok:
        errors.append(FieldError(path, f"must be of type {expected}, got {json_type(value)}"))
        return
    bound = _FORMAT_BOUNDS.get(str(schema.get("format"))) if expected == "integer" else None
    if bound is not None and isinstance(value, int) and not -bound <= value < bound:
        errors.append(FieldError(path, f"must fit in {schema['format']}: {value}"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and isinstance(value, str) and re.search(pattern, value) is None:
        errors.append(FieldError(path, f"must match the pattern {pattern!r}"))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
