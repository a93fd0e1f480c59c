"""Validation shared by every kind (names, metadata, Knative's error messages) and the core v1 kinds."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any

from wisp.api.errors import FieldError
from wisp.types import Resource

Errors = list[FieldError]

_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?\Z")  # \Z: `$` would allow a trailing newline
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+\Z")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")

SECRET_VALUE_OMITTED = "<value omitted>"

_OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences", "finalizers",
    "managedFields", "selfLink",
})  # fmt: skip

# -- Knative's messages (knative.dev/pkg/apis field_error.go), so users can search for them ---------------


def missing(path: str) -> FieldError:
    return FieldError(path, "missing field(s)")


def disallowed(path: str, why: str = "") -> FieldError:
    return FieldError(path, "must not set the field(s)" + (f": {why}" if why else ""))


def invalid(value: object, path: str, details: str = "") -> FieldError:
    return FieldError(path, f"invalid value: {value}" + (f": {details}" if details else ""))


def out_of_bounds(value: object, lower: object, upper: object, path: str) -> FieldError:
    return FieldError(path, f"expected {lower} <= {value} <= {upper}")


def join(prefix: str, field: str) -> str:
    """`prefix.field`, or `prefix[key]` when `field` is already a `[key]`."""
    if not prefix:
        return field
    return f"{prefix}{'' if field.startswith('[') else '.'}{field}"


def nest(errors: Iterable[FieldError], prefix: str) -> Errors:
    return [e.nested(prefix) for e in errors]


# -- type checks; each returns the value when it has the right shape, else records an error ---------------


def as_mapping(value: object, path: str, errs: Errors) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        errs.append(FieldError(path, f"must be an object, got {type(value).__name__}"))
        return None
    return value


def as_list(value: object, path: str, errs: Errors) -> list[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        errs.append(FieldError(path, f"must be a list, got {type(value).__name__}"))
        return None
    return value


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_in(value: object, lower: int, upper: int | None, path: str, errs: Errors) -> None:
    """An optional integer within bounds (`upper` None: unbounded)."""
    if value is None:
        return
    if not is_int(value):
        errs.append(invalid(value, path, "must be an integer"))
    elif value < lower or (upper is not None and value > upper):  # type: ignore[operator]
        errs.append(out_of_bounds(value, lower, "∞" if upper is None else upper, path))


def string_in(value: object, path: str, errs: Errors, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            errs.append(missing(path))
        return None
    if not isinstance(value, str):
        errs.append(invalid(value, path, "must be a string"))
        return None
    return value


def unknown_fields(obj: Mapping[str, Any], allowed: Iterable[str], prefix: str) -> Errors:
    allowed_set = set(allowed)
    return [disallowed(join(prefix, key)) for key in obj if key not in allowed_set]


# -- names ---------------------------------------------------------------------------------------------


def dns1035_label(name: str) -> list[str]:
    problems = []
    if len(name) > 63:
        problems.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.match(name):
        problems.append(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
            "start with an alphabetic character, and end with an alphanumeric character"
        )
    return problems


def dns1123_label(name: str) -> list[str]:
    problems = []
    if len(name) > 63:
        problems.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(name):
        problems.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character"
        )
    return problems


def dns1123_subdomain(name: str) -> list[str]:
    problems = []
    if len(name) > 253:
        problems.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(name):
        problems.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character"
        )
    return problems


def qualified_name(key: str) -> list[str]:
    """A label or annotation key: optional DNS subdomain prefix, `/`, then a name of ≤63 characters."""
    prefix, _, name = key.rpartition("/")
    problems = dns1123_subdomain(prefix) if prefix else []
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', at most 63 characters, "
            "and must start and end with an alphanumeric character"
        )
    return problems


# -- metadata ------------------------------------------------------------------------------------------


def validate_metadata(res: Resource, *, name_check: str = "subdomain", namespaced: bool = True) -> Errors:
    """`metadata`: name (`label` DNS-1035, `label1123` or `subdomain`), namespace, labels, annotations."""
    errs: Errors = []
    meta = as_mapping(res.get("metadata"), "metadata", errs)
    if meta is None:
        return errs or [missing("metadata.name")]
    errs.extend(unknown_fields(meta, _OBJECT_META_FIELDS, "metadata"))
    if meta.get("generateName"):
        errs.append(FieldError("metadata.generateName", "not supported by wisp: set metadata.name"))
    name = string_in(meta.get("name"), "metadata.name", errs, required=not meta.get("generateName"))
    if name is not None:
        check = {"label": dns1035_label, "label1123": dns1123_label, "subdomain": dns1123_subdomain}[
            name_check
        ]
        errs.extend(invalid(name, "metadata.name", p) for p in check(name))
    namespace = string_in(meta.get("namespace"), "metadata.namespace", errs)
    if namespace is not None and namespaced:
        errs.extend(invalid(namespace, "metadata.namespace", p) for p in dns1123_label(namespace))
    for field in ("labels", "annotations"):
        values = as_mapping(meta.get(field), f"metadata.{field}", errs)
        for key, value in (values or {}).items():
            path = f"metadata.{field}[{key}]"
            if not isinstance(key, str) or qualified_name(key):
                errs.append(
                    FieldError(path, f"invalid key name {key!r}: " + "; ".join(qualified_name(str(key))))
                )
            elif not isinstance(value, str):
                errs.append(invalid(value, path, "must be a string (quote it in YAML)"))
    return errs


def string_map(value: object, path: str) -> dict[str, str]:
    """The string entries of an optional mapping (others are reported by validate_metadata)."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


# -- core kinds ----------------------------------------------------------------------------------------


def validate_secret(res: Resource) -> Errors:
    errs = validate_metadata(res)
    errs.extend(
        unknown_fields(res, ("apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"), "")
    )
    string_in(res.get("type"), "type", errs)
    data = as_mapping(res.get("data"), "data", errs)
    for key, value in (data or {}).items():
        path = f"data[{key}]"
        if not _CONFIG_KEY.match(str(key)):
            errs.append(
                FieldError(
                    path,
                    f"invalid key name {key!r}: must consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
        elif not isinstance(value, str) or not _is_base64(value):
            # Never quote a Secret's value back, not even a malformed one: errors reach logs and terminals.
            errs.append(invalid(SECRET_VALUE_OMITTED, path, "must be base64-encoded (use stringData for plain text)"))
    return errs


def validate_config_map(res: Resource) -> Errors:
    errs = validate_metadata(res)
    errs.extend(
        unknown_fields(res, ("apiVersion", "kind", "metadata", "data", "binaryData", "immutable"), "")
    )
    data = as_mapping(res.get("data"), "data", errs) or {}
    binary = as_mapping(res.get("binaryData"), "binaryData", errs) or {}
    for field, values in (("data", data), ("binaryData", binary)):
        for key, value in values.items():
            path = f"{field}[{key}]"
            if not _CONFIG_KEY.match(str(key)):
                errs.append(
                    FieldError(
                        path,
                        f"invalid key name {key!r}: must consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
            elif not isinstance(value, str):
                errs.append(invalid(_shorten(value), path, "must be a string (quote it in YAML)"))
            elif field == "binaryData" and not _is_base64(value):
                errs.append(invalid(_shorten(value), path, "must be base64-encoded"))
    errs.extend(
        FieldError(f"data[{key}]", "duplicate key: also in binaryData") for key in data.keys() & binary
    )
    return errs


def validate_namespace(res: Resource) -> Errors:
    errs = validate_metadata(res, name_check="label1123", namespaced=False)
    errs.extend(unknown_fields(res, ("apiVersion", "kind", "metadata", "spec"), ""))
    return errs


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _shorten(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
