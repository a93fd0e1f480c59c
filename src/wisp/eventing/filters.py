"""Trigger filters: `spec.filter.attributes` and the `spec.filters` dialects, compiled to predicates.

Knative semantics: when `spec.filters` is non-empty it wins and `spec.filter` is ignored; a trigger with
neither matches every event. Attribute values compare as strings (the HTTP binding's representation).
The `cesql` dialect is wisp.api.cesql.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cloudevents.v1.http import CloudEvent

from wisp.api.cesql import CesqlSyntaxError, FilterError, Predicate, attribute_text, compile_cesql

__all__ = [
    "CesqlSyntaxError",
    "FilterError",
    "Predicate",
    "compile_cesql",
    "compile_filter",
    "compile_filters",
]


# -- dialects --------------------------------------------------------------------------------------------


def _string_map(obj: Any, path: str) -> dict[str, str]:
    if not isinstance(obj, Mapping) or not obj:
        raise FilterError(path, "must be a non-empty map of attribute names to values")
    out: dict[str, str] = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]+", name):
            raise FilterError(f"{path}[{name}]", "attribute names are lowercase letters and digits")
        if not isinstance(value, str):
            raise FilterError(f"{path}[{name}]", "must be a string")
        out[name] = value
    return out


def _match_all(pairs: dict[str, str], test: Callable[[str, str], bool]) -> Predicate:
    items = tuple(pairs.items())

    def predicate(event: CloudEvent) -> bool:
        for name, want in items:
            got = attribute_text(event, name)
            if got is None or not test(got, want):
                return False
        return True

    return predicate


def _attributes_filter(attributes: Any, path: str) -> Predicate:
    if attributes is None or attributes == {}:
        return lambda _event: True
    pairs = _string_map(attributes, path)
    # `""` only requires the attribute to be present (Knative's "any value").
    return _match_all(pairs, lambda got, want: want == "" or got == want)


def _compile_one(obj: Any, path: str) -> Predicate:
    if not isinstance(obj, Mapping) or not obj:
        raise FilterError(path, "must name exactly one dialect (exact, prefix, suffix, all, any, not, cesql)")
    if len(obj) != 1:
        raise FilterError(path, f"must name exactly one dialect, got {', '.join(sorted(obj))}")
    ((dialect, spec),) = obj.items()
    sub = f"{path}.{dialect}"
    if dialect == "exact":
        return _match_all(_string_map(spec, sub), lambda got, want: got == want)
    if dialect == "prefix":
        return _match_all(_string_map(spec, sub), lambda got, want: got.startswith(want))
    if dialect == "suffix":
        return _match_all(_string_map(spec, sub), lambda got, want: got.endswith(want))
    if dialect in ("all", "any"):
        if not isinstance(spec, Sequence) or isinstance(spec, str):
            raise FilterError(sub, "must be a list of filters")
        parts = [_compile_one(item, f"{sub}[{i}]") for i, item in enumerate(spec)]
        if dialect == "all":
            return lambda event: all(p(event) for p in parts)
        return lambda event: any(p(event) for p in parts)
    if dialect == "not":
        inner = _compile_one(spec, sub)
        return lambda event: not inner(event)
    if dialect == "cesql":
        if not isinstance(spec, str) or not spec.strip():
            raise FilterError(sub, "must be a non-empty CESQL expression")
        return compile_cesql(spec, path=sub)
    raise FilterError(path, f"unknown filter dialect {dialect!r}")


def compile_filters(filters: Sequence[Any], path: str = "spec.filters") -> Predicate:
    """The `spec.filters` list: every entry must match."""
    parts = [_compile_one(item, f"{path}[{i}]") for i, item in enumerate(filters)]
    return lambda event: all(p(event) for p in parts)


def compile_filter(trigger_spec: Mapping[str, Any]) -> Predicate:
    """A Trigger's `spec` → predicate over CloudEvents. Raises FilterError naming the bad field."""
    filters = trigger_spec.get("filters")
    if filters:
        if not isinstance(filters, Sequence) or isinstance(filters, str):
            raise FilterError("spec.filters", "must be a list of filters")
        return compile_filters(filters)
    legacy = trigger_spec.get("filter") or {}
    if not isinstance(legacy, Mapping):
        raise FilterError("spec.filter", "must be an object")
    return _attributes_filter(legacy.get("attributes"), "spec.filter.attributes")
