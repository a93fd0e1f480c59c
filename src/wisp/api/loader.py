"""Reading manifests: files, directories and multi-document YAML into resource dicts."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import yaml

from wisp.api import bounded_yaml, func_project
from wisp.api.errors import FieldError, ManifestError
from wisp.api.names import MANIFEST_DIR_ANNOTATION
from wisp.types import Resource


@dataclass(frozen=True)
class LoadedDoc:
    """One resource read from a manifest, with where it came from."""

    resource: Resource
    source: str  # the file path, or a label such as "<stdin>"
    index: int  # the YAML document's position in its file, from 0
    directory: Path  # the directory relative image paths are resolved against

    @property
    def where(self) -> str:
        return f"{self.source} (document {self.index})"


def load_paths(paths: Sequence[Path], environ: Mapping[str, str] | None = None) -> list[LoadedDoc]:
    """Every resource in the given files and directories (recursively, `*.yaml`/`*.yml`, sorted). A directory
    holding `func.yaml` is a Knative Functions project: it becomes the Service `func deploy` would make, with
    `{{ env:NAME }}` taken from `environ` (default: this process's environment)."""
    docs: list[LoadedDoc] = []
    for file in _manifest_files(paths):
        if file.name == func_project.FUNC_YAML:
            directory = file.resolve().parent
            for resource in func_project.load(directory, os.environ if environ is None else environ):
                docs.append(LoadedDoc(resource, str(file), 0, directory))
            continue
        docs.extend(load_text(_read(file), str(file), directory=file.resolve().parent))
    return docs


def load_text(text: str, source: str = "<stdin>", directory: Path | None = None) -> list[LoadedDoc]:
    """Every resource in a YAML text; `directory` (default: the working directory) anchors local images."""
    base = (directory if directory is not None else Path.cwd()).resolve()
    try:
        raw_docs = bounded_yaml.load_all(text)
    except yaml.YAMLError as exc:
        raise ManifestError([FieldError("", _yaml_problem(exc))], _yaml_where(source, exc)) from exc
    docs: list[LoadedDoc] = []
    for index, raw in enumerate(raw_docs):
        if raw is None:
            continue  # an empty document, e.g. a trailing `---`
        where = f"{source} (document {index})"
        for resource in _expand(raw, where):
            docs.append(LoadedDoc(_with_manifest_dir(resource, base), source, index, base))
    return docs


def _read(file: Path) -> str:
    """A manifest file's text, reading no more than the size a manifest may have."""
    try:
        with file.open("rb") as stream:
            raw = stream.read(bounded_yaml.MAX_TEXT_BYTES + 1)
    except OSError as exc:
        raise ManifestError([FieldError("", f"cannot read: {exc.strerror or exc}")], str(file)) from exc
    if len(raw) > bounded_yaml.MAX_TEXT_BYTES:
        limit = bounded_yaml.MAX_TEXT_BYTES // (1024 * 1024)
        raise ManifestError([FieldError("", f"manifest is larger than {limit} MiB")], str(file))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError([FieldError("", f"not UTF-8 text: {exc.reason} at byte {exc.start}")], str(file)) from exc


def _manifest_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Manifest files; for a Knative Functions project, its func.yaml alone (its other YAML is the project's)."""
    for path in paths:
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")]
            projects = {p.parent for p in found if p.name == func_project.FUNC_YAML}
            yield from sorted(p for p in found if _outermost_project_file(p, projects))
        elif path.exists():
            yield path
        else:
            raise ManifestError([FieldError("", "no such file or directory")], str(path))


def _outermost_project_file(file: Path, projects: set[Path]) -> bool:
    """A plain manifest outside every project, or the func.yaml of a project not inside another."""
    if file.name == func_project.FUNC_YAML:
        return not any(d in projects for d in file.parent.parents)
    return not any(d in projects for d in file.parents)


def _expand(raw: object, where: str) -> list[Resource]:
    """The resources a document holds: itself, or the items of a `kind: List`."""
    if not isinstance(raw, dict):
        raise ManifestError(
            [
                FieldError(
                    "",
                    f"a manifest must be a mapping with apiVersion, kind and metadata, got {_kind_of(raw)}",
                )
            ],
            where,
        )
    if raw.get("kind") == "List" and "items" in raw:
        items = raw["items"]
        if not isinstance(items, list):
            raise ManifestError([FieldError("items", f"must be a list, got {_kind_of(items)}")], where)
        resources: list[Resource] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ManifestError(
                    [FieldError(f"items[{i}]", f"must be a mapping, got {_kind_of(item)}")], where
                )
            _check_identity(item, where, f"items[{i}]")
            resources.append(item)
        return resources
    _check_identity(raw, where, "")
    return [raw]


def _check_identity(doc: dict[str, Any], where: str, prefix: str) -> None:
    errors: list[FieldError] = []
    for field in ("apiVersion", "kind"):
        if not isinstance(doc.get(field), str) or not doc[field]:
            errors.append(FieldError(field, "missing field(s)"))
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        errors.append(FieldError("metadata", "missing field(s)" if meta is None else "must be a mapping"))
    elif not isinstance(meta.get("name"), str) or not meta["name"]:
        if meta.get("generateName"):
            errors.append(FieldError("metadata.generateName", "not supported by wisp: set metadata.name"))
        else:
            errors.append(FieldError("metadata.name", "missing field(s)"))
    if errors:
        raise ManifestError([e.nested(prefix) if prefix else e for e in errors], where)


def _with_manifest_dir(resource: Resource, directory: Path) -> Resource:
    """Record the manifest's directory when a container names a local directory as its image."""
    if not any(is_local_image(c.get("image")) for c in _containers(resource)):
        return resource
    meta = dict(resource["metadata"])
    if not isinstance(meta.get("annotations"), dict | None):
        return resource  # validation names the bad annotations field
    annotations = dict(meta.get("annotations") or {})
    annotations[MANIFEST_DIR_ANNOTATION] = str(directory)
    meta["annotations"] = annotations
    return {**resource, "metadata": meta}


def _containers(resource: Resource) -> list[dict[str, Any]]:
    spec = resource.get("spec")
    if not isinstance(spec, dict):
        return []
    pod = spec.get("template", {}).get("spec") if isinstance(spec.get("template"), dict) else spec
    containers = pod.get("containers") if isinstance(pod, dict) else None
    return [c for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []


def is_local_image(image: object) -> TypeGuard[str]:
    """`image:` names a directory on this machine (relative to the manifest, or absolute), not an OCI image."""
    return isinstance(image, str) and (image.startswith(("./", "../", "/")) or image in (".", ".."))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return f"invalid YAML: {context + ': ' if context else ''}{problem}"


def _yaml_where(source: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return source
    return f"{source}:{mark.line + 1}:{mark.column + 1}"


def _kind_of(value: object) -> str:
    return "null" if value is None else type(value).__name__
