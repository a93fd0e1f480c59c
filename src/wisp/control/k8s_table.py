"""`kubectl get`'s server-side printing: objects → a meta.k8s.io/v1 Table.

Knative's kinds get their CRD's additionalPrinterColumns (evaluated as kube-apiserver's CRD table convertor
does: a missing value is an empty cell, `date` columns become ages, lists print as JSON); core kinds get the
columns kube-apiserver prints for them. Priority > 0 columns are what `-o wide` adds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.api.timestamps import human_duration, parse_timestamp
from wisp.control import k8s_crds, k8s_jsonpath
from wisp.control.k8s_crds import AGE_COLUMN, NAME_COLUMN, Column
from wisp.types import Resource

IncludeObject = Literal["None", "Metadata", "Object"]
INCLUDE_OBJECT_VALUES: tuple[IncludeObject, ...] = ("None", "Metadata", "Object")


def age(timestamp: Any, now: float) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    then = parse_timestamp(timestamp)
    return "<invalid>" if then is None else human_duration(now - then)


def _cell(column: Column, obj: Resource, now: float) -> Any:
    try:
        value = k8s_jsonpath.first(obj, column.json_path)
    except k8s_jsonpath.JSONPathError:
        return None
    if value is k8s_jsonpath.MISSING or value is None:
        return None
    if column.type == "date":
        return age(value, now)
    if column.type == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if column.type == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if column.type == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


# -- core kinds: the columns kube-apiserver prints --------------------------------------------------------

def _s(name: str, priority: int = 0) -> Column:
    return Column(name, "string", "", priority=priority)


_POD = (NAME_COLUMN, _s("Ready"), _s("Status"), Column("Restarts", "string", ""), _s("Age"),
        _s("IP", 1), _s("Node", 1), _s("Nominated Node", 1), _s("Readiness Gates", 1))
_NAMESPACE = (NAME_COLUMN, _s("Status"), _s("Age"))
_SECRET = (NAME_COLUMN, _s("Type"), Column("Data", "string", ""), _s("Age"))
_CONFIG_MAP = (NAME_COLUMN, Column("Data", "string", ""), _s("Age"))
_EVENT = (_s("Last Seen"), _s("Type"), _s("Reason"), _s("Object"), _s("Subobject", 1), _s("Source", 1),
          _s("Message"), _s("First Seen", 1), _s("Count", 1), Column("Name", "string", "", priority=1, format="name"))


def _pod_cells(pod: Resource, now: float) -> list[Any]:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    status = pod.get("status", {})
    return [pod["metadata"]["name"], f"{ready}/{len(statuses)}", status.get("phase", "Unknown"), str(restarts),
            age(pod["metadata"].get("creationTimestamp"), now), status.get("podIP") or "<none>",
            pod.get("spec", {}).get("nodeName") or "<none>", "<none>", "<none>"]


def _event_cells(event: Resource, now: float) -> list[Any]:
    involved = event.get("involvedObject", {})
    source = event.get("source", {})
    last = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp")
    return [age(last, now), event.get("type", ""), event.get("reason", ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}", involved.get("fieldPath", ""),
            ", ".join(v for v in (source.get("component"), source.get("host")) if v), event.get("message", ""),
            age(event.get("firstTimestamp") or last, now), str(event.get("count", 1)), event["metadata"]["name"]]


def _meta_age(obj: Resource, now: float) -> str:
    return age(obj["metadata"].get("creationTimestamp"), now)


def _namespace_cells(obj: Resource, now: float) -> list[Any]:
    return [obj["metadata"]["name"], obj.get("status", {}).get("phase", "Active"), _meta_age(obj, now)]


def _secret_cells(obj: Resource, now: float) -> list[Any]:
    return [obj["metadata"]["name"], obj.get("type") or "Opaque", str(len(obj.get("data") or {})),
            _meta_age(obj, now)]


def _config_map_cells(obj: Resource, now: float) -> list[Any]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [obj["metadata"]["name"], str(count), _meta_age(obj, now)]


Cells = Callable[[Resource, float], list[Any]]


def _core(kind: Kind) -> tuple[tuple[Column, ...], Cells] | None:
    return {
        k.POD: (_POD, _pod_cells), k.EVENT: (_EVENT, _event_cells), k.NAMESPACE: (_NAMESPACE, _namespace_cells),
        k.SECRET: (_SECRET, _secret_cells), k.CONFIG_MAP: (_CONFIG_MAP, _config_map_cells),
    }.get(kind)


def columns_for(kind: Kind, version: str) -> tuple[Column, ...]:
    core = _core(kind)
    if core is not None:
        return core[0]
    return k8s_crds.info(kind).columns_for(version) or (NAME_COLUMN, AGE_COLUMN)


def _row_object(obj: Resource, include: IncludeObject) -> dict[str, Any] | None:
    if include == "Object":
        return obj
    if include == "Metadata":
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}
    return None


def render_table(kind: Kind, items: list[Resource], include_object: IncludeObject = "Metadata", *,
                 now: float, version: str | None = None, list_metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of `items` (already what the API would return for them: Secrets redacted)."""
    core = _core(kind)
    columns = columns_for(kind, version or kind.version)
    rows: list[dict[str, Any]] = []
    for obj in items:
        cells = core[1](obj, now) if core is not None else [_cell(c, obj, now) for c in columns]
        row: dict[str, Any] = {"cells": cells}
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    definitions = [{"name": c.name, "type": c.type, "format": c.format, "description": c.description,
                    "priority": c.priority} for c in columns]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": dict(list_metadata or {}),
            "columnDefinitions": definitions, "rows": rows}
