"""Every field of every kind, given every JSON type it must not have: refused, naming the field.

The cases come from the schemas (wisp.api.schemas: Knative's vendored CRDs, completed with Kubernetes' types
where a CRD is silent), not from a hand-picked list. For each field path the sweep starts from a valid
manifest of the kind (tests/robustness/valid_manifests.py), sets the field — creating its parents when the
manifest lacks them — to each JSON type the schema does not allow, and runs what `apply` runs (defaults,
then validation). A non-null value of the wrong type must give an error naming the field or a parent; a null
must be either refused the same way or treated exactly as an absent field (Kubernetes prunes it), so that
no reconciler ever sees a None or a value of the wrong type.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.robustness.valid_manifests import kinds_with_manifests, valid_manifest
from wisp.api import kinds, schemas
from wisp.api.defaults import apply_defaults
from wisp.api.errors import FieldError, ManifestError
from wisp.api.validation import validate

Schema = dict[str, Any]

SAMPLES: dict[str, object] = {
    "null": None,
    "boolean": True,
    "integer": 7,
    "number": 1.5,
    "string": "x",
    "array": ["x"],
    "object": {"x": "y"},
}


@dataclass(frozen=True)
class Step:
    kind: str  # "prop", "key" (a map entry) or "index" (a list item)
    name: str = ""

    def render(self, first: bool) -> str:
        if self.kind == "prop":
            return self.name if first else f".{self.name}"
        return "[0]" if self.kind == "index" else f"[{self.name}]"


Path = tuple[Step, ...]


def render(path: Path) -> str:
    return "".join(step.render(i == 0) for i, step in enumerate(path))


def field_paths(schema: Schema, prefix: Path = (), open_schemas: frozenset[int] = frozenset()) -> Iterator[
    tuple[Path, Schema]
]:
    """Every field path of a schema with its sub-schema; a recursive schema (trigger filters) is entered once."""
    if prefix:
        yield prefix, schema
    if id(schema) in open_schemas:
        return
    inside = open_schemas | {id(schema)}
    for name, sub in (schema.get("properties") or {}).items():
        if not prefix and name == "status":
            continue  # never applied: the store drops it
        yield from field_paths(sub, (*prefix, Step("prop", name)), inside)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from field_paths(extra, (*prefix, Step("key", "k")), inside)
    items = schema.get("items")
    if isinstance(items, dict):
        yield from field_paths(items, (*prefix, Step("index")), inside)


def allowed_types(schema: Schema) -> set[str] | None:
    """The JSON types a field takes; None when it takes anything."""
    if schema.get("x-kubernetes-int-or-string"):
        return {"integer", "string"}
    expected = schema.get("type")
    if expected is None:
        return None
    return {"integer", "number"} if expected == "number" else {str(expected)}


def set_at(doc: Any, path: Path, value: object, *, absent: bool = False) -> None:
    """Set (or, with `absent`, delete) the field at `path`, creating parents the manifest lacks."""
    node = doc
    for step, after in itertools.pairwise(path):
        want: type = list if after.kind == "index" else dict
        if step.kind == "index":
            if not node:
                node.append(want())
            elif not isinstance(node[0], want):
                node[0] = want()
            node = node[0]
        else:
            if not isinstance(node.get(step.name), want):
                node[step.name] = want()
            node = node[step.name]
    last = path[-1]
    if last.kind == "index":
        node[:1] = [] if absent else [value]
    elif absent:
        node.pop(last.name, None)
    else:
        node[last.name] = value


def admit(doc: Any) -> tuple[Any, list[FieldError]]:
    """What `apply` does to a manifest: defaults, then validation (a ManifestError counts as its errors)."""
    try:
        defaulted = apply_defaults(doc)
        return defaulted, validate(defaulted)
    except ManifestError as exc:
        return None, exc.errors


def names(error_paths: list[str], field: str) -> bool:
    """Whether some error names `field` or one of its parents."""
    return any(p == field or field.startswith(p + ".") or field.startswith(p + "[") for p in error_paths)


def has_null(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(has_null(v) for v in value)
    return False


def cases(kind_name: str) -> Iterator[tuple[Path, object]]:
    """(field path, a value of a type the schema does not allow there) for every field of one kind."""
    kind = next(k for k in kinds.ALL_KINDS if k.kind == kind_name and not k.virtual)
    version = valid_manifest(kind_name)["apiVersion"].rpartition("/")[2]
    for path, sub in field_paths(schemas.schema_for(kind, version)):
        allowed = allowed_types(sub)
        if allowed is not None:
            yield from ((path, sample) for type_name, sample in SAMPLES.items() if type_name not in allowed)


def sweep(kind_name: str) -> tuple[int, list[str]]:
    """(cases run, what went wrong) for every field of one kind."""
    base = valid_manifest(kind_name)
    failures: list[str] = []
    count = 0
    for path, sample in cases(kind_name):
        count += 1
        field = render(path)
        doc = copy.deepcopy(base)
        set_at(doc, path, copy.deepcopy(sample))
        try:
            defaulted, errors = admit(doc)
        except Exception as exc:  # the point of the sweep: nothing but FieldError/ManifestError
            failures.append(f"{field} = {sample!r}: raised {type(exc).__name__}: {exc}")
            continue
        if names([e.path for e in errors], field):
            continue
        if sample is None and path[-1].kind != "index":
            # Accepted only as what it is in Kubernetes: the same object as without the field.
            without = copy.deepcopy(base)
            set_at(without, path, None, absent=True)
            if (defaulted, errors) == admit(without) and not has_null(defaulted):
                continue
            failures.append(f"{field} = null: not the same as absent ({[str(e) for e in errors]})")
            continue
        failures.append(f"{field} = {sample!r}: no error names the field: {[str(e) for e in errors]}")
    return count, failures


@pytest.mark.parametrize("kind_name", kinds_with_manifests())
def test_base_manifest_is_valid(kind_name: str) -> None:
    assert admit(valid_manifest(kind_name))[1] == []


def test_every_served_kind_is_swept() -> None:
    served = {k.kind for k in schemas.served_kinds()}
    assert served == set(kinds_with_manifests())


@pytest.mark.parametrize("kind", schemas.served_kinds(), ids=lambda k: k.kind)
def test_each_schema_can_be_served_as_openapi(kind: kinds.Kind) -> None:
    for version in kind.versions:
        json.dumps(schemas.schema_for(kind, version))  # no cycles, only JSON values


@pytest.mark.parametrize("kind_name", kinds_with_manifests())
def test_wrong_types_are_refused(kind_name: str) -> None:
    cases, failures = sweep(kind_name)
    assert cases >= 20, f"the schema of {kind_name} gave only {cases} cases"
    assert failures == [], f"{len(failures)} of {cases} cases:\n" + "\n".join(failures[:40])


def test_the_sweep_is_large() -> None:
    """Over ten thousand cases (11,064 today): the schemas' PodSpec alone has hundreds of fields."""
    assert sum(1 for kind_name in kinds_with_manifests() for _ in cases(kind_name)) > 10_000


# -- the probe's own cases (issue 8), spelled out ------------------------------------------------------------

CONTAINER = ("spec", "template", "spec", "containers", 0)


@pytest.mark.parametrize(
    ("kind_name", "path", "field"),
    [
        ("Service", (*CONTAINER, "envFrom", 0, "prefix"), "spec.template.spec.containers[0].envFrom[0].prefix"),
        (
            "Service",
            (*CONTAINER, "readinessProbe", "httpGet", "path"),
            "spec.template.spec.containers[0].readinessProbe.httpGet.path",
        ),
        ("SinkBinding", ("spec", "subject", "name"), "spec.subject.name"),
    ],
)
def test_an_object_where_a_string_belongs(kind_name: str, path: tuple[Any, ...], field: str) -> None:
    doc = valid_manifest(kind_name)
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = {"not": "a string"}
    _, errors = admit(doc)
    assert [(e.path, e.message) for e in errors] == [(field, "must be of type string, got object")]


@pytest.mark.parametrize("kind_name", ["Service", "Configuration", "Revision", "KafkaSource", "Trigger"])
def test_spec_null_is_no_spec_and_refused(kind_name: str) -> None:
    doc = valid_manifest(kind_name)
    doc["spec"] = None
    _, errors = admit(doc)
    assert errors and all(e.path.startswith("spec") for e in errors), errors


@pytest.mark.parametrize("kind_name", ["Route", "Broker"])
def test_spec_null_where_spec_is_optional_is_an_empty_spec(kind_name: str) -> None:
    doc = valid_manifest(kind_name)
    doc["spec"] = None
    defaulted, errors = admit(doc)
    assert errors == []
    assert isinstance(defaulted["spec"], dict)  # never None for a reconciler
