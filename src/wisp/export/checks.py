"""Every exported document checked before a file is written: Knative's own rules (the webhook, as wisp applies
them), the CRD's structural schema at the exported version exactly as Knative ships it (or Kubernetes' core
type), and nothing left that only means something on this machine."""

from __future__ import annotations

from typing import Any

from wisp.api import kinds
from wisp.api.defaults import apply_defaults
from wisp.api.errors import FieldError, UnknownKindError
from wisp.api.loader import is_local_image
from wisp.api.validation import validate
from wisp.export import openapi
from wisp.export.options import is_loopback_host
from wisp.types import Resource


def problems(doc: Resource) -> list[FieldError]:
    """Why a cluster would refuse `doc`, or what in it still points at this machine; [] when it is fine."""
    api_version, kind_name = doc.get("apiVersion"), doc.get("kind")
    for field, value in (("apiVersion", api_version), ("kind", kind_name)):
        if not isinstance(value, str) or not value:
            return [FieldError(field, "must be a non-empty string")]
    assert isinstance(api_version, str) and isinstance(kind_name, str)
    try:
        kind = kinds.for_manifest(api_version, kind_name)
    except UnknownKindError as e:
        known = any(k.kind == kind_name for k in kinds.ALL_KINDS)
        return [FieldError("apiVersion" if known else "kind", str(e))]
    version = api_version.rpartition("/")[2]
    if version not in openapi.served_versions(kind):
        return [FieldError("apiVersion", f"{api_version} is not served by Knative's CRD (served: "
                                         f"{', '.join(openapi.served_versions(kind))})")]
    errors = openapi.check(doc, openapi.schema_of(kind, version))
    errors += [e for e in validate(apply_defaults(doc)) if e not in errors]
    errors += leftovers(doc)
    return errors


def leftovers(value: Any, path: str = "") -> list[FieldError]:
    """Strings that name this machine, local `image:` directories and `wisp.dev/` keys."""
    found: list[FieldError] = []
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if str(key).startswith("wisp.dev/"):
                found.append(FieldError(f"{path}[{key}]", "wisp's own annotation or label, meaningless to Knative"))
            if key == "image" and isinstance(item, str):
                # A registry on localhost is the nodes' own (kind's local registry): only a directory is wrong.
                if is_local_image(item):
                    found.append(FieldError(sub, f"{item!r} is a directory on this machine, not an image"))
                continue
            found += leftovers(item, sub)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += leftovers(item, f"{path}[{i}]")
    elif isinstance(value, str) and _names_this_machine(value):
        found.append(FieldError(path, f"{value[:120]!r} names this machine, which a cluster cannot reach"))
    return found


def _names_this_machine(text: str) -> bool:
    lowered = text.lower()
    if "localhost" in lowered or "127.0.0.1" in lowered:
        return True
    return any(is_loopback_host(word.rsplit(":", 1)[0]) for word in lowered.replace(",", " ").split())
