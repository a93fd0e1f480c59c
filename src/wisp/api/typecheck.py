"""Field types checked against a kind's OpenAPI v3 schema, as the API server checks a CRD's structural schema.

Checked here: each field's type (and integer format), and that every field is declared (kubectl's strict
field validation), with Knative's wording. Which fields are required, how values relate and what bounds
they keep is Knative's validation (validate_*.py), which runs on the well-typed rest — the way a Kubernetes
API server calls Knative's validating webhook after the schema check.
"""

from __future__ import annotations

import math
from typing import Any

from wisp.api.errors import FieldError

Schema = dict[str, Any]

_FORMAT_BOUNDS = {"int32": 2**31, "int64": 2**63}
_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int: a bool is an int in Python
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def json_type(value: object) -> str:
    """The JSON type name of a value (`null`, `boolean`, ...), or its Python type for what JSON lacks."""
    if value is None:
        return "null"
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def checked(value: object, schema: Schema, path: str = "") -> tuple[Any, list[FieldError]]:
    """(`value` without its wrongly typed fields, an error for each of them).

    A mapping entry of the wrong type is left out; a list with an item of the wrong type is left out whole
    (dropping one item would renumber the others). Knative's rules can then run on what remains, and their
    errors about what was left out are redundant (see `unrelated`).
    """
    errors: list[FieldError] = []
    kept = _check(value, schema, path, errors)
    return (None if kept is _DROP else kept), errors


def unrelated(errors: list[FieldError], schema_errors: list[FieldError]) -> list[FieldError]:
    """`errors` less those about a field the schema check refused, its ancestors or its descendants."""
    bad = [e.path for e in schema_errors]
    return [e for e in errors if not any(_related(e.path, b) for b in bad)]


def _related(a: str, b: str) -> bool:
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return long == short or not short or (long.startswith(short) and long[len(short)] in ".[")


class _Drop:
    """Marks a value left out of the checked copy."""


_DROP = _Drop()


def _check(value: object, schema: Schema, path: str, errors: list[FieldError]) -> Any:
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _is_int(value)):
            errors.append(FieldError(path, f"must be of type integer or string, got {json_type(value)}"))
            return _DROP
        return value
    expected = schema.get("type")
    if value is None and schema.get("nullable"):
        return value
    if expected is None:  # no type: anything goes (x-kubernetes-preserve-unknown-fields), but a null item
        return _without_null_items(value, path, errors)
    if expected == "object":
        return _object(value, schema, path, errors)
    if expected == "array":
        return _array(value, schema, path, errors)
    if not _is_scalar(value, expected):
        hint = " (quote it in YAML)" if expected == "string" and _is_scalar_like(value) else ""
        errors.append(FieldError(path, f"must be of type {expected}, got {json_type(value)}{hint}"))
        return _DROP
    bound = _FORMAT_BOUNDS.get(str(schema.get("format"))) if expected == "integer" else None
    if bound is not None and not -bound <= value < bound:  # type: ignore[operator]
        errors.append(FieldError(path, f"must fit in {schema['format']}: {value}"))
        return _DROP
    return value


def _object(value: object, schema: Schema, path: str, errors: list[FieldError]) -> Any:
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"must be of type object, got {json_type(value)}"))
        return _DROP
    properties: dict[str, Schema] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    open_ended = schema.get("x-kubernetes-preserve-unknown-fields") or extra is True
    kept: dict[Any, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            errors.append(FieldError(f"{path}[{key}]", f"keys must be strings, got {json_type(key)}"))
            continue
        if key in properties:
            item = _check(item, properties[key], f"{path}.{key}" if path else key, errors)
        elif isinstance(extra, dict):
            item = _check(item, extra, f"{path}[{key}]", errors)
        elif open_ended:
            item = _without_null_items(item, f"{path}.{key}" if path else key, errors)
        else:
            errors.append(FieldError(f"{path}.{key}" if path else key, "must not set the field(s)"))
            item = _DROP
        if item is not _DROP:
            kept[key] = item
    return kept


def _array(value: object, schema: Schema, path: str, errors: list[FieldError]) -> Any:
    if not isinstance(value, list):
        errors.append(FieldError(path, f"must be of type array, got {json_type(value)}"))
        return _DROP
    items = schema.get("items")
    if not isinstance(items, dict):
        return value
    kept = [_check(item, items, f"{path}[{index}]", errors) for index, item in enumerate(value)]
    return _DROP if any(item is _DROP for item in kept) else kept


def _without_null_items(value: object, path: str, errors: list[FieldError]) -> Any:
    """An untyped value as it is, unless a list in it holds a null (mapping nulls were pruned before)."""
    stack: list[tuple[object, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, f"{where}[{k}]") for k, v in item.items())
        elif isinstance(item, list):
            for index, child in enumerate(item):
                if child is None:
                    errors.append(FieldError(f"{where}[{index}]", "must not be null"))
                    return _DROP
                stack.append((child, f"{where}[{index}]"))
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_scalar(value: object, expected: str) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "integer":
        return _is_int(value)
    if expected == "number":
        return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)  # type: ignore[arg-type]
    if expected == "boolean":
        return isinstance(value, bool)
    return True  # a type this checker does not know: the schema, not the value, is off


def _is_scalar_like(value: object) -> bool:
    return isinstance(value, bool | int | float)
