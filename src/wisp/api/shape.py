"""Rules on the plain-data shape of a manifest, before any schema: nesting depth, text, explicit nulls.

Manifests arrive as YAML (bounded by wisp.api.bounded_yaml) or as JSON bodies of the control API; both meet
the same depth bound here, so every later recursive walk (deepcopy, the validators, json) is safe.
"""

from __future__ import annotations

from typing import Any

from wisp.api.errors import FieldError

# Deeper than any Kubernetes object (a Service's probe header is 10 levels down), shallow enough that every
# recursive walk of a manifest stays far from Python's recursion limit.
MAX_DEPTH = 64


def shape_error(value: object, limit: int = MAX_DEPTH) -> FieldError | None:
    """The first of these problems, or None: nesting deeper than `limit` levels (the root and the leaf
    count), or a string or key that is not valid Unicode (a lone surrogate, which JSON's `\\ud800` escape
    can carry; Kubernetes' decoder replaces it, but nothing can encode it). Iterative."""
    stack: list[tuple[object, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        if depth > limit:
            return FieldError(path, f"nested more than {limit} levels deep")
        if isinstance(item, str) and not _is_unicode(item):
            return FieldError(path, "not valid Unicode text (a lone surrogate)")
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not _is_unicode(key):
                    return FieldError(path, "a key is not valid Unicode text (a lone surrogate)")
                stack.append((child, depth + 1, child_path))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))
    return None


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def without_nulls(value: Any) -> Any:
    """A copy of `value` with every null-valued mapping entry removed.

    The Kubernetes API server prunes explicit nulls of non-nullable fields before defaulting
    (PruneNonNullableNullsWithoutDefaults), and no field of wisp's kinds is nullable: `spec: null` means no
    spec. A null list item is kept, for validation to refuse, as the API server does. Call only on a value
    that passed `shape_error`.
    """
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value
