"""Admission: default and validate a batch of manifests against the store, all or nothing."""

from __future__ import annotations

from wisp.api.defaults import apply_defaults
from wisp.api.errors import FieldError, ManifestError, UnknownKindError
from wisp.api.kinds import Kind, for_manifest
from wisp.api.validation import validate, validate_update
from wisp.store import Store
from wisp.types import Resource


def describe(resource: Resource) -> str:
    meta = resource.get("metadata") or {}
    name = meta.get("name", "?") if isinstance(meta, dict) else "?"
    return f"{resource.get('kind', '?')}/{name}"


def admit(items: list[Resource], store: Store) -> list[tuple[Kind, Resource]]:
    """Every item defaulted and validated, or a ManifestError naming every bad field of the first bad item."""
    admitted: list[tuple[Kind, Resource]] = []
    for index, raw in enumerate(items):
        where = f"item {index} ({describe(raw)})"
        if not isinstance(raw, dict):
            raise ManifestError([FieldError("", "must be an object")], where)
        try:
            kind = for_manifest(str(raw.get("apiVersion", "")), str(raw.get("kind", "")))
        except UnknownKindError as exc:
            raise ManifestError([FieldError("kind", str(exc))], where) from None
        resource = apply_defaults(raw)
        errors = validate(resource)
        meta = resource.get("metadata", {})
        if not errors:
            current = store.get(kind, meta.get("namespace", "default"), meta.get("name", ""))
            if current is not None:
                errors = validate_update(current, resource)
        if errors:
            raise ManifestError(errors, where)
        admitted.append((kind, resource))
    return admitted
