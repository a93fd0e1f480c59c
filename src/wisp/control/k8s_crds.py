"""What Knative's vendored CRDs say about each kind wisp serves: names, categories, printer columns, subresources.

Discovery, Table output and OpenAPI all answer from here, so `kubectl` sees the names and columns a Knative
cluster would show. Kinds without a CRD (core v1, PodAutoscaler) take their names from `wisp.api.kinds`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.api.schemas import CRD_DIR


@dataclass(frozen=True)
class Column:
    """One additionalPrinterColumn (or a core kind's column written out the way kube-apiserver shows it)."""

    name: str
    type: str  # string | integer | number | boolean | date
    json_path: str  # a CRD's simple JSONPath; "" for columns computed in code (core kinds)
    description: str = ""
    priority: int = 0  # > 0: only with -o wide
    format: str = ""


@dataclass(frozen=True)
class KindInfo:
    kind: Kind
    singular: str
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    subresources: tuple[str, ...]  # "status" where the CRD declares it; "log" for pods
    columns: dict[str, tuple[Column, ...]]  # version → its printer columns ("" → every version)

    def columns_for(self, version: str) -> tuple[Column, ...]:
        return self.columns.get(version) or self.columns.get(self.kind.version) or self.columns.get("", ())


_NAME_DESCRIPTION = ("Name must be unique within a namespace. Is required when creating resources, although some "
                     "resources may allow a client to request the generation of an appropriate name automatically.")
NAME_COLUMN = Column("Name", "string", ".metadata.name", _NAME_DESCRIPTION, format="name")
AGE_COLUMN = Column("Age", "date", ".metadata.creationTimestamp")


@functools.cache
def _crds() -> dict[tuple[str, str], dict[str, Any]]:
    """(group, kind) → the CRD, for every vendored CRD file (read once; vendored, trusted text)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(Path(CRD_DIR).rglob("*.yaml")):
        with path.open(encoding="utf-8") as stream:
            for doc in yaml.load_all(stream, Loader=loader):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    spec = doc["spec"]
                    found[(spec["group"], spec["names"]["kind"])] = doc
    return found


def crd_for(kind: Kind) -> dict[str, Any] | None:
    return _crds().get((kind.group, kind.kind))


def _crd_columns(version: dict[str, Any]) -> tuple[Column, ...]:
    declared = version.get("additionalPrinterColumns") or []
    if not declared:  # what the API server shows for a CRD without columns
        return (NAME_COLUMN, AGE_COLUMN)
    return (NAME_COLUMN, *(Column(c["name"], c["type"], c["jsonPath"], c.get("description", ""),
                                  int(c.get("priority", 0)), c.get("format", "")) for c in declared))


# Knative's PodAutoscaler CRD (serving config/core/300-resources/podautoscaler.yaml) is not vendored: its columns.
_KPA_COLUMNS = (
    NAME_COLUMN,
    Column("DesiredScale", "integer", ".status.desiredScale"),
    Column("ActualScale", "integer", ".status.actualScale"),
    Column("Ready", "string", ".status.conditions[?(@.type=='Ready')].status"),
    Column("Reason", "string", ".status.conditions[?(@.type=='Ready')].reason"),
)


@functools.cache
def info(kind: Kind) -> KindInfo:
    crd = crd_for(kind)
    if crd is None:
        columns: dict[str, tuple[Column, ...]] = {"": _KPA_COLUMNS} if kind is k.POD_AUTOSCALER else {}
        subresources = ("log",) if kind is k.POD else ()
        return KindInfo(kind, kind.kind.lower(), kind.short_names, kind.categories, subresources, columns)
    spec = crd["spec"]
    names = spec["names"]
    by_version = {v["name"]: v for v in spec["versions"]}
    stored = by_version.get(kind.version) or spec["versions"][0]
    return KindInfo(
        kind,
        names.get("singular") or kind.kind.lower(),  # the API server defaults `singular` so
        tuple(names.get("shortNames") or ()),
        tuple(names.get("categories") or ()),
        ("status",) if "status" in (stored.get("subresources") or {}) else (),
        {name: _crd_columns(v) for name, v in by_version.items()} | {"": _crd_columns(stored)},
    )
