"""The manifest pipeline (load → defaults → validate) under arbitrary input: ManifestError or FieldErrors, never
another exception, never a hang; and what it accepts is what a reconciler can take.

Three sources of input: arbitrary text, YAML dumped from valid manifests and then damaged character by
character, and valid manifests with random subtrees replaced by arbitrary JSON-ish values (the shape a
control API body has).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness.valid_manifests import kinds_with_manifests, valid_manifest
from wisp.api.defaults import apply_defaults
from wisp.api.errors import FieldError, ManifestError
from wisp.api.loader import load_text
from wisp.api.validation import validate

FUZZ = settings(
    max_examples=250,
    deadline=5000,  # generous under load: a blow-up (exponential backtracking, deep recursion) takes far longer
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities too
    st.text(max_size=12),
    st.sampled_from(["", "0", "-1", "true", "null", "a=b", "\x00", "\ud800", "x" * 70, "PT1S", "* * * * *"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4),
    ),
    max_leaves=20,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


@st.composite
def damaged_manifests(draw: st.DrawFn) -> Any:
    """A valid manifest of some kind with a few subtrees replaced, removed or added."""
    doc: Any = valid_manifest(draw(st.sampled_from(kinds_with_manifests())))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths[1:]))  # never the root: a manifest is an object
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "remove":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.text(max_size=8))] = draw(json_values)
        else:
            parent[path[-1]] = draw(json_values)
    return doc


_YAML_BITS = ["&a ", "*a", "<<: *a", "[", "]", "{", "}", ": ", "- ", "\n", "  ", "---\n", "!!binary ", "!!set ",
              "? ", "|\n", "'", '"', "\\x00", "~", "!!python/object:os.system ", "\t", "#"]  # fmt: skip


@st.composite
def damaged_yaml(draw: st.DrawFn) -> str:
    """YAML dumped from a valid manifest, then edited at random places with YAML's special characters."""
    text = yaml.safe_dump(valid_manifest(draw(st.sampled_from(kinds_with_manifests()))), sort_keys=False)
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        cut = draw(st.integers(min_value=0, max_value=4))
        text = text[:at] + draw(st.sampled_from(_YAML_BITS)) + text[at + cut :]
    return text


def _admit(resource: Any) -> list[FieldError]:
    """What `apply` does to one document; asserts what an accepted object must be."""
    assert isinstance(resource, dict)
    before = copy.deepcopy(resource)
    defaulted = apply_defaults(resource)
    assert _same(resource, before), "apply_defaults must not change its argument"
    errors = validate(defaulted)
    assert all(isinstance(e, FieldError) for e in errors)
    if not errors:
        applied = {k: v for k, v in defaulted.items() if k != "status"}  # the store drops status on apply
        assert not _has_null(applied), "an accepted object carries no null: a reconciler would meet None"
        json.dumps(defaulted)  # the store can write it
        assert apply_defaults(defaulted) == defaulted, "defaulting an accepted object again changes nothing"
    return errors


def _same(a: Any, b: Any) -> bool:
    return repr(a) == repr(b)  # not ==: a NaN is never equal to itself


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def _load_and_admit(text: str) -> None:
    try:
        docs = load_text(text)
    except ManifestError as exc:
        assert exc.errors
        return
    for doc in docs:
        _admit(doc.resource)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    _load_and_admit(text)


@FUZZ
@given(damaged_yaml())
def test_damaged_yaml(text: str) -> None:
    _load_and_admit(text)


@FUZZ
@given(damaged_manifests())
def test_damaged_manifests(resource: Any) -> None:
    _admit(resource)
    validate(resource)  # also straight, without defaults (a stored object being re-checked)


@FUZZ
@given(st.dictionaries(st.sampled_from(["apiVersion", "kind", "metadata", "spec", "data", "status"]), json_values))
def test_arbitrary_objects(resource: dict[str, Any]) -> None:
    _admit(resource)


@FUZZ
@given(
    st.sampled_from(kinds_with_manifests()),
    st.dictionaries(st.sampled_from(["metadata", "spec", "data", "stringData", "status"]), json_values),
)
def test_arbitrary_objects_of_each_kind(kind: str, body: dict[str, Any]) -> None:
    resource = valid_manifest(kind)
    resource.update(body)
    _admit(resource)
