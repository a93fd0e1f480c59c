"""`wisp export`: manifests → what a Knative cluster takes, planned whole in memory and checked before a file
is written; then written to a fresh directory in one rename, so a failure leaves no partial output.

    OUT/*.yaml            one file per manifest file, `kubectl apply -f OUT` ready
    OUT/secrets.txt       a `kubectl create secret` line per Secret (its keys; never a value)
    OUT/NOTES.md          what changed that a reader should know
    OUT/build/NAME/       a build context per local code directory (`wisp build OUT`)
    OUT/build/index.json  the contexts and the images they become
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wisp.api import func_project
from wisp.api.defaults import apply_defaults
from wisp.api.errors import FieldError, ManifestError
from wisp.api.loader import LoadedDoc, load_paths
from wisp.api.validation import validate
from wisp.export import checks
from wisp.export.addresses import Addresses
from wisp.export.code import CodeError
from wisp.export.containerfile import DEFAULT_BASE_IMAGE
from wisp.export.context import TARGET, BuildContext, build_context
from wisp.export.entry_check import EntryPointError, check_entry_point, check_func_project
from wisp.export.options import ExportOptions
from wisp.export.translate import CodeUse, Translated, custom_domains, local_kafka, translate
from wisp.types import Resource

MARKER = ".wisp-export"  # an output directory wisp wrote, which a later export may replace
INDEX = "build/index.json"
# kubectl applies a directory's files in name order: the namespaces the others live in come first.
NAMESPACES_FILE = "0-namespaces.yaml"
# Namespaces a Knative cluster has already (cluster-wide settings such as config-autoscaler live there).
_EXISTING_NAMESPACES = frozenset({"default", "knative-serving", "knative-eventing", "kube-system", "kube-public"})


class ExportError(Exception):
    """An export refused; `where` names the document, each error its field path."""

    def __init__(self, message: str, errors: Sequence[FieldError] = ()) -> None:
        self.errors = list(errors)
        super().__init__(message + "".join(f"\n  {e}" for e in self.errors))


@dataclass
class Plan:
    files: dict[str, list[Resource]] = field(default_factory=dict)  # output file → documents
    contexts: list[BuildContext] = field(default_factory=list)
    secret_hints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan(paths: Sequence[Path], options: ExportOptions, *, base_image: str = DEFAULT_BASE_IMAGE) -> Plan:
    """Everything the export will write, checked; ManifestError / ExportError otherwise."""
    docs = load_paths(paths)
    for doc in docs:  # what wisp itself would refuse is refused here too, before any translation
        errors = validate(apply_defaults(doc.resource))
        if errors:
            raise ManifestError(errors, doc.where)
    addresses = Addresses(options, local_kafka(docs), custom_domains(docs))
    result = Plan()
    placed: list[tuple[LoadedDoc, str, Translated]] = []
    names = _file_names(docs)
    for doc in docs:
        translated = translate(doc, addresses)
        placed.append((doc, names[doc.source], translated))
        result.secret_hints += translated.secret_hints
        result.notes += translated.notes
    uses = [(doc, use) for doc, _, t in placed for use in t.code]
    if uses and not options.registry:
        doc, use = uses[0]
        raise ManifestError([FieldError(use.path, f"{_image(use)!r} is a local directory: "
                                                  "it becomes an image pushed to a registry; pass --registry "
                                                  "REGISTRY (e.g. ghcr.io/you)")], doc.where)
    result.contexts = _contexts(uses, options, base_image)
    for doc, file_name, translated in placed:
        for out_doc in translated.docs:
            errors = checks.problems(out_doc)
            if errors:
                meta = out_doc.get("metadata") or {}
                raise ExportError(f"{doc.where}: exported {out_doc.get('kind')}/{meta.get('name')} would not be "
                                  "accepted by Knative", errors)
        if translated.docs:
            result.files.setdefault(file_name, []).extend(translated.docs)
    _add_namespaces(result)
    return result


def _add_namespaces(result: Plan) -> None:
    """A Namespace for each namespace the documents use that a cluster does not have and none declares."""
    docs = [d for ds in result.files.values() for d in ds]
    declared = {str(d["metadata"]["name"]) for d in docs if d.get("kind") == "Namespace"}
    used = {str(d["metadata"]["namespace"]) for d in docs if d.get("metadata", {}).get("namespace")}
    missing = sorted(used - declared - _EXISTING_NAMESPACES)
    if missing:
        result.files = {NAMESPACES_FILE: [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                                          for name in missing], **result.files}


def _image(use: CodeUse) -> str:
    return str(use.container.get("image"))


def _contexts(uses: list[tuple[LoadedDoc, CodeUse]], options: ExportOptions,
              base_image: str) -> list[BuildContext]:
    """One build context per (directory, class, entry point or command); the images set in the documents."""
    by_key: dict[tuple[Any, ...], BuildContext] = {}
    taken: set[str] = set()
    for doc, use in uses:
        key = (use.code_dir, use.workload, use.target if use.workload == "function" else tuple(use.command))
        ctx = by_key.get(key)
        if ctx is None:
            if not use.code_dir.is_dir():
                raise ManifestError([FieldError(use.path, f"{use.code_dir} is not a directory")], doc.where)
            func = use.workload == "function" and func_project.is_project(use.code_dir)
            if use.workload == "function" and not func and not TARGET.match(use.target):
                raise ManifestError([FieldError(use.path, f"function target {use.target!r} must look like "
                                                          "'module:function'")], doc.where)
            name = use.service if use.service not in taken else f"{use.service}-{use.namespace}"
            taken.add(name)
            try:
                signature, workload, target = "", use.workload, use.target
                if func:
                    workload, target = "func", _invoke(use.code_dir)
                    signature = check_func_project(use.code_dir, target)
                elif use.workload == "function":
                    signature = check_entry_point(use.code_dir, use.target, use.env)
                ctx = build_context(name, use.code_dir, use.top, workload, target=target,
                                    command=use.command, drain_seconds=use.drain_seconds, base_image=base_image)
            except (EntryPointError, CodeError) as e:
                raise ManifestError([FieldError(use.path, str(e))], doc.where) from None
            ctx.signature = signature
            ctx.image = f"{options.registry}/{name}:{options.tag or ctx.digest()[:12]}"
            by_key[key] = ctx
        use.container["image"] = ctx.image
    return list(by_key.values())


def _invoke(project: Path) -> str:
    """func.yaml's `invoke` (checked by the loader when it read the project)."""
    return func_project.invoke(func_project.read(project))


def _file_names(docs: list[LoadedDoc]) -> dict[str, str]:
    """Each manifest file's output name: its own, prefixed with its directory's name where two collide."""
    sources = sorted({d.source for d in docs})
    names: dict[str, str] = {}
    used: set[str] = set()
    for source in sources:
        path = Path(source)
        # A Knative Functions project's func.yaml becomes the project's Service: named after the project.
        name = f"{path.parent.name}.yaml" if path.name == func_project.FUNC_YAML else f"{path.stem}.yaml"
        if name in used or name == NAMESPACES_FILE:
            name = f"{path.parent.name}-{path.stem}.yaml"
        while name in used:
            name = f"x-{name}"
        used.add(name)
        names[source] = name
    return names


# -- writing -----------------------------------------------------------------------------------------------


def write(result: Plan, out: Path) -> None:
    """Write `result` to `out` whole, or nothing: staged beside it, then renamed into place."""
    out = out.absolute()
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / MARKER).exists())):
        raise ExportError(f"{out} exists and is not an earlier wisp export: choose a new output directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write_into(result, stage)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.rename(out, old / "x")
            os.rename(stage, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _write_into(result: Plan, stage: Path) -> None:
    (stage / MARKER).write_text("written by wisp export; a later export to this directory replaces it\n")
    for name, docs in result.files.items():
        text = "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in docs)
        (stage / name).write_text(text, encoding="utf-8")
    if result.secret_hints:
        (stage / "secrets.txt").write_text(
            "# Create these Secrets in the cluster with their real values (wisp exports no secret value):\n"
            + "".join(f"{line}\n" for line in result.secret_hints), encoding="utf-8")
    if result.notes:
        (stage / "NOTES.md").write_text("# What `wisp export` could not carry over as is\n\n"
                                        + "".join(f"- {n}\n" for n in result.notes), encoding="utf-8")
    index = []
    for ctx in result.contexts:
        root = stage / "build" / ctx.name
        for rel, data in ctx.files.items():
            file = root / rel
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
        (root / "deps").mkdir(exist_ok=True)
        index.append({"name": ctx.name, "context": f"build/{ctx.name}", "image": ctx.image, "workload": ctx.workload,
                      "signature": ctx.signature, "code": str(ctx.code_dir), "requirements": ctx.requirements_source})
    if index:
        (stage / INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


def export(paths: Sequence[Path], out: Path, options: ExportOptions, **kwargs: str) -> Plan:
    result = plan(paths, options, **kwargs)
    write(result, out)
    return result
