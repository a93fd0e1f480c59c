"""A YAML document pasted into the console, read as `wisp apply -f FILE` reads a file (the same bounded loader)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wisp.api import bounded_yaml
from wisp.api.errors import FieldError, ManifestError
from wisp.api.loader import load_text
from wisp.api.names import MANIFEST_DIR_ANNOTATION

SOURCE = "<console>"
# Never a directory local images could be resolved against: the page has no directory of its own.
_NOWHERE = Path("/nonexistent/wisp-console")


def parse_manifests(text: str) -> list[dict[str, Any]]:
    """The resources in `text`. `image: ./dir` needs the directory of a manifest file, which a pasted document
    does not have: refused, unless the object already says where it came from (re-applying what the console
    showed keeps the `wisp.dev/manifest-dir` annotation)."""
    docs = load_text(text, SOURCE, directory=_NOWHERE)
    items: list[dict[str, Any]] = []
    for doc in docs:
        resource = doc.resource
        annotations = resource["metadata"].get("annotations") or {}
        if annotations.get(MANIFEST_DIR_ANNOTATION) == str(_NOWHERE.resolve()):
            original = _original_dir(text, doc.index)
            if original is None:
                raise ManifestError([FieldError("spec.template.spec.containers[].image",
                                                "a local directory image needs `wisp apply -f FILE`: a document "
                                                "pasted into the console has no directory to resolve it against")],
                                    doc.where)
            resource = {**resource, "metadata": {**resource["metadata"],
                                                 "annotations": {**annotations, MANIFEST_DIR_ANNOTATION: original}}}
        items.append(resource)
    return items


def _original_dir(text: str, index: int) -> str | None:
    """The manifest-dir annotation the document itself carried, if any (the loader overwrote it)."""
    raw = bounded_yaml.load_all(text)[index]
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    value = annotations.get(MANIFEST_DIR_ANNOTATION) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) and value.startswith("/") else None
