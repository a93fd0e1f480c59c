"""PATCH bodies applied to a stored object, by Content-Type, as the Kubernetes API server applies them.

- `application/merge-patch+json`: RFC 7386 (a null removes a field, an object merges, anything else replaces).
- `application/json-patch+json`: RFC 6902 through `jsonpatch`, `test` included; a body that is not a list of
  operations is 400 BadRequest, an operation that cannot be applied (missing path, failed test) 422 Invalid.
- `application/strategic-merge-patch+json`: for the core kinds (Secret, ConfigMap, Namespace), what kubectl
  sends them: a merge patch plus the directives `$patch` (replace/delete/merge), `$retainKeys`,
  `$setElementOrder/…` and `$deleteFromPrimitiveList/…`; `metadata.finalizers` merge as a set and
  `metadata.ownerReferences` by `uid`, as ObjectMeta's patch strategies say. Custom resources (Knative's kinds)
  refuse it with 415, as the API server does for every CRD.
Server-side apply (`application/apply-patch+yaml`) is k8s_apply.py.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from wisp.api.kinds import Kind
from wisp.control.refusal import Refused, bad_request

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
MAX_OPERATIONS = 10_000  # JSON patch operations in one request (the API server's limit)

# ObjectMeta's list patch strategies (patchStrategy=merge): the merge key, or None for a set of scalars.
_MERGED_LISTS: dict[tuple[str, ...], str | None] = {
    ("metadata", "finalizers"): None,
    ("metadata", "ownerReferences"): "uid",
}


def unsupported(kind: Kind, content_type: str) -> Refused:
    accepted = [JSON, MERGE, APPLY] if kind.group else [JSON, MERGE, APPLY, STRATEGIC]
    return Refused(415, "UnsupportedMediaType",
                   f"the body of the request was in an unknown format - accepted media types include: "
                   f"{', '.join(accepted)}")


def apply_patch(kind: Kind, content_type: str, current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """`current` with `patch` applied (a new object; `current` is left as it was)."""
    try:
        if content_type == MERGE:
            if not isinstance(patch, dict):
                raise bad_request("a merge patch must be a JSON object")
            result = merge_patch(current, patch)
        elif content_type == JSON:
            result = json_patch(current, patch)
        elif content_type == STRATEGIC:
            if kind.group:
                raise unsupported(kind, content_type)
            if not isinstance(patch, dict):
                raise bad_request("a strategic merge patch must be a JSON object")
            result = strategic_merge(current, patch, ())
        else:
            raise unsupported(kind, content_type)
    except RecursionError:
        raise bad_request("the patch nests too deeply") from None
    if not isinstance(result, dict):
        raise Refused(422, "Invalid", "the patch does not leave an object")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: Any) -> Any:
    """RFC 6902: every operation applies, or none does."""
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch: a JSON patch "
                          "must be a list of operations")
    if len(operations) > MAX_OPERATIONS:
        raise Refused(422, "RequestEntityTooLarge",
                      f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(operations)}")
    for index, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
            raise bad_request(f"operation {index} of the JSON patch must be an object with string op and path")
        if op["op"] not in ("add", "remove", "replace", "move", "copy", "test"):
            raise bad_request(f'operation {index}: unexpected kind of operation "{op["op"]}"')
        if op["op"] in ("add", "replace", "test") and "value" not in op:
            raise bad_request(f'operation {index} ({op["op"]} {op["path"]}): missing value')
        if op["op"] in ("move", "copy") and not isinstance(op.get("from"), str):
            raise bad_request(f'operation {index} ({op["op"]} {op["path"]}): missing from')
    try:
        return jsonpatch.JsonPatch(operations).apply(copy.deepcopy(target))
    except jsonpatch.JsonPatchTestFailed as exc:
        raise Refused(422, "Invalid", f"the test operation failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise Refused(422, "Invalid", f"the JSON patch could not be applied: {exc}") from None
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise Refused(422, "Invalid", f"the JSON patch could not be applied: {exc}") from None


def strategic_merge(target: Any, patch: dict[str, Any], path: tuple[str, ...]) -> Any:
    """A strategic merge patch on a map (the subset ObjectMeta and the core kinds wisp holds need)."""
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    body = {k: v for k, v in patch.items() if not k.startswith("$")}
    if directive == "replace":
        return _without_directives(body)
    if directive not in (None, "merge"):
        raise bad_request(f"unknown patch type: {directive!r} in the strategic merge patch at {_dotted(path)}")
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.partition("/")[2]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [item for item in result[field] if item not in value]
    for key, value in body.items():
        where = (*path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value, where)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and where in _MERGED_LISTS:
            result[key] = _merge_list(result.get(key), value, _MERGED_LISTS[where])
        else:
            result[key] = _without_directives(value)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current: Any, patch: list[Any], key: str | None) -> list[Any]:
    items = list(current) if isinstance(current, list) else []
    if key is None:  # a set of scalars: union, in order
        return items + [v for v in patch if v not in items]
    for entry in patch:
        if not isinstance(entry, dict) or key not in entry:
            raise bad_request(f"map: {entry!r} does not contain declared merge key: {key}")
        at = next((i for i, item in enumerate(items) if isinstance(item, dict) and item.get(key) == entry[key]),
                  None)
        if entry.get("$patch") == "delete":
            if at is not None:
                del items[at]
        elif at is None:
            items.append(_without_directives(entry))
        else:
            items[at] = strategic_merge(items[at], entry, ())
    return items


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_without_directives(v) for v in value]
    return value


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path) or "the top level"
