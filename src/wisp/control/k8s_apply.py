"""Server-side apply and `metadata.managedFields`: which manager set which field, as the API server records it.

The subset wisp keeps (enough for `kubectl apply --server-side`, controllers using apply, and `kubectl get
-o yaml --show-managed-fields` to read sensibly):
- fields are tracked to their leaves in maps; every list is atomic (one field), which is what a custom resource
  gets when its CRD declares no `x-kubernetes-list-type` (Knative's do not);
- `status`, and the metadata the server owns, are not tracked;
- an apply takes the fields of its configuration; one owned by another manager with a different value is a
  conflict, 409 with a cause per field, unless `force` moves it to the applier; a field the applier set
  before and left out now is removed when no other manager owns it;
- create, update and the other patches (operation `Update`) take the fields they changed from whoever had them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from wisp.api.bounded_yaml import load_all
from wisp.api.kinds import Kind
from wisp.api.timestamps import rfc3339
from wisp.control.refusal import Refused, bad_request

Path = tuple[str, ...]

# Metadata that the server owns or that names the object: never anyone's field.
_UNTRACKED_METADATA = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                                 "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"})
MAX_MANAGER = 128  # characters, the API server's limit for fieldManager


def leaves(obj: Any, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every tracked field of an object with its value: map entries to their leaves, lists whole."""
    if not isinstance(obj, dict) or (prefix and not obj):
        if prefix:
            yield prefix, obj
        return
    for key, value in obj.items():
        if not prefix and key in ("apiVersion", "kind", "status"):
            continue
        if prefix == ("metadata",) and key in _UNTRACKED_METADATA:
            continue
        yield from leaves(value, (*prefix, key))


def _get(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


class _Missing:
    pass


_MISSING = _Missing()


def _set(obj: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        child = obj.get(key)
        if not isinstance(child, dict):
            child = obj[key] = {}
        obj = child
    obj[path[-1]] = copy.deepcopy(value)


def _remove(obj: dict[str, Any], path: Path) -> None:
    parents: list[tuple[dict[str, Any], str]] = []
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return
        parents.append((node, key))
        node = node[key]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    for parent, key in reversed(parents):  # maps left empty by the removal go too
        if parent[key] == {} and parent is not obj:
            del parent[key]
        else:
            break


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in sorted(paths):
        node = out
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return out


def from_fields_v1(fields: Any, prefix: Path = ()) -> set[Path]:
    """The leaf paths of a FieldsV1 set ("." entries and list keys, which wisp does not write, are skipped)."""
    out: set[Path] = set()
    if not isinstance(fields, dict):
        return out
    children = [(k, v) for k, v in fields.items() if isinstance(k, str) and k.startswith("f:")]
    if not children:
        if prefix:
            out.add(prefix)
        return out
    for key, value in children:
        out |= from_fields_v1(value, (*prefix, key[2:]))
    return out


def _entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    managed = obj.get("metadata", {}).get("managedFields")
    return [e for e in managed if isinstance(e, dict)] if isinstance(managed, list) else []


def _covers(owned: set[Path], path: Path) -> bool:
    """True when `path` or one of its ancestors is in `owned` (a leaf there)."""
    return any(path[:i] in owned for i in range(1, len(path) + 1))


def _overlaps(owned: set[Path], path: Path) -> set[Path]:
    """The owned paths that are `path`, under it or above it."""
    return {p for p in owned if p[:len(path)] == path or path[:len(p)] == p}


def _entry(manager: str, operation: str, kind: Kind, paths: set[Path], now: float) -> dict[str, Any]:
    return {"manager": manager, "operation": operation, "apiVersion": kind.api_version, "time": rfc3339(now),
            "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)}


def _rebuilt(old: list[dict[str, Any]], sets: dict[tuple[str, str], set[Path]], changed: tuple[str, str],
             fresh: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries in their order, `changed` replaced by `fresh` (appended when new), empty ones dropped."""
    out: list[dict[str, Any]] = []
    for entry in old:
        key = (str(entry.get("manager")), str(entry.get("operation")))
        if key == changed:
            continue
        paths = sets.get(key, set())
        if paths:
            out.append({**entry, "fieldsV1": to_fields_v1(paths)} if paths != from_fields_v1(
                entry.get("fieldsV1")) else entry)
    if from_fields_v1(fresh["fieldsV1"]):
        out.append(fresh)
    return out


def manager_from(params: dict[str, str], user_agent: str) -> str:
    """fieldManager, or (for updates) the User-Agent's product as the API server derives it."""
    manager = params.get("fieldManager") or user_agent.split("/", 1)[0].strip() or "unknown"
    if len(manager) > MAX_MANAGER:
        raise bad_request(f"fieldManager: Too long: may not be more than {MAX_MANAGER} bytes")
    return manager


def record_update(kind: Kind, before: dict[str, Any] | None, after: dict[str, Any], manager: str,
                  now: float) -> None:
    """Give `manager` (operation Update) the fields that differ between `before` and `after`; in place."""
    old_entries = _entries(before) if before is not None else []
    new_values = dict(leaves(after))
    old_values = dict(leaves(before)) if before is not None else {}
    changed = {p for p, v in new_values.items() if old_values.get(p, _MISSING) != v}
    removed = {p for p in old_values if p not in new_values}
    sets = {(str(e.get("manager")), str(e.get("operation"))): from_fields_v1(e.get("fieldsV1"))
            for e in old_entries}
    for key, owned in sets.items():
        for path in changed | removed:
            owned -= _overlaps(owned, path)
        sets[key] = owned
    mine = (manager, "Update")
    mine_now = {p for p in sets.get(mine, set()) if p in new_values} | changed
    if not changed and not removed:
        after.setdefault("metadata", {})["managedFields"] = old_entries
        if not old_entries:
            after["metadata"].pop("managedFields", None)
        return
    entries = _rebuilt(old_entries, sets, mine, _entry(manager, "Update", kind, mine_now, now))
    meta = after.setdefault("metadata", {})
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


def server_side_apply(kind: Kind, current: dict[str, Any] | None, config: dict[str, Any], manager: str,
                      force: bool, now: float, settle: Callable[[dict[str, Any]], dict[str, Any]] = lambda o: o,
                      ) -> dict[str, Any]:
    """The object after `manager` applies `config` (current is None: it is created); Refused 409 on conflicts.

    `settle` is admission (defaults, validation) of the merged object: a field conflicts only when the applied
    object, once settled, changes a value another manager set (a list given without the defaults the server
    fills in is the same list)."""
    applied = dict(leaves(config))
    if current is None:
        result = settle(copy.deepcopy(config))
        result.setdefault("metadata", {})["managedFields"] = [_entry(manager, "Apply", kind, set(applied), now)]
        return result
    entries = _entries(current)
    sets = {(str(e.get("manager")), str(e.get("operation"))): from_fields_v1(e.get("fieldsV1")) for e in entries}
    mine = (manager, "Apply")
    candidates = {(other, operation, held) for (other, operation), owned in sets.items() if (other, operation) != mine
                  for path in applied for held in _overlaps(owned, path)}
    merged = copy.deepcopy(current)
    merged.pop("status", None)
    before = sets.get(mine, set())
    others = set().union(*(owned for key, owned in sets.items() if key != mine)) if sets else set()
    for path in before - set(applied):
        if not _covers(others, path) and not any(p[:len(path)] == path for p in others):
            _remove(merged, path)
    for path, value in applied.items():
        _set(merged, path, value)
    for key in ("apiVersion", "kind"):
        if key in config:
            merged[key] = config[key]
    for name in ("labels", "annotations"):  # a map the applier emptied is gone, as a field of nobody's
        if merged.get("metadata", {}).get(name) == {}:
            del merged["metadata"][name]
    result = settle(merged)
    conflicts = sorted(c for c in candidates if _get(current, c[2]) != _get(result, c[2]))
    if conflicts and not force:
        raise _conflict(kind, conflicts)
    for other, operation, held in conflicts:  # forced: the applier takes them; unchanged values stay shared
        sets[(other, operation)].discard(held)
    sets[mine] = set(applied)
    fresh = _entry(manager, "Apply", kind, set(applied), now)
    if before == set(applied):
        fresh = next((e for e in entries if (e.get("manager"), e.get("operation")) == mine), fresh)
    result.setdefault("metadata", {})["managedFields"] = _rebuilt(entries, sets, mine, fresh)
    if "status" in current:
        result["status"] = current["status"]
    return result


def _conflict(kind: Kind, conflicts: list[tuple[str, str, Path]]) -> Refused:
    def field(path: Path) -> str:
        return "." + ".".join(path)

    def who(manager: str, operation: str) -> str:
        return f'conflict with "{manager}"' + (f" using {kind.api_version}" if operation == "Update" else "")

    unique = sorted(set(conflicts))
    count = len(unique)
    lines = [f"{who(m, o)}: {field(p)}" for m, o, p in unique]
    message = f"Apply failed with {count} conflict{'s' if count > 1 else ''}: " + (
        lines[0] if count == 1 else "\n" + "\n".join(lines))
    causes = [{"reason": "FieldManagerConflict", "message": who(m, o), "field": field(p)} for m, o, p in unique]
    return Refused(409, "Conflict", message, {"causes": causes})


def parse_apply_body(body: bytes) -> dict[str, Any]:
    """The applied configuration: YAML (JSON is YAML), one object, bounded by the YAML loader's limits."""
    try:
        docs = [d for d in load_all(body.decode("utf-8")) if d is not None]
    except UnicodeDecodeError:
        raise bad_request("the apply configuration is not UTF-8") from None
    except yaml.YAMLError as exc:
        raise bad_request(f"error decoding YAML: {exc}") from None
    except RecursionError:
        raise bad_request("error decoding YAML: it nests too deeply") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise bad_request("the apply configuration must be one object")
    return dict(docs[0])
