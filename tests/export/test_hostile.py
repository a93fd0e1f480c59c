"""Generated hostile input: whatever it is, an export either refuses it with a field path or writes documents
that pass the CRD schemas and name nothing of this machine."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.export.conftest import APPS, DOMAIN, EXAMPLES, KAFKA, REGISTRY, read_export
from wisp.api.errors import FieldError, ManifestError
from wisp.export import checks
from wisp.export.addresses import Addresses
from wisp.export.export import ExportError, export, plan
from wisp.export.options import ExportOptions

OPTIONS = ExportOptions.parse(REGISTRY, KAFKA, DOMAIN, None, [])
_PLAN = plan([*EXAMPLES, APPS / "translations"], OPTIONS)
DOCS = [d for docs in _PLAN.files.values() for d in docs]
MAPS = ("annotations", "labels", "data", "matchLabels")
ANY_KEY = (*MAPS, "requests", "limits")  # objects whose every key is declared (resource names map to quantities)


def _leaves(value: Any, path: str = "") -> list[tuple[str, list[Any]]]:
    """(field path, key path) of every string leaf and every object that is not a string map."""
    found: list[tuple[str, list[Any]]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if key in MAPS:
                continue
            if isinstance(item, str):
                found.append((sub, [key]))
            found += [(p, [key, *k]) for p, k in _leaves(item, sub)]
    elif isinstance(value, list):
        for i, item in enumerate(value):
            sub = f"{path}[{i}]"
            found += [(sub, [i])] if isinstance(item, str) else []
            found += [(p, [i, *k]) for p, k in _leaves(item, sub)]
    return found


def _related(error_path: str, path: str) -> bool:
    # A map's key is named the Kubernetes way (`requests[cpu]`); the leaves here are walked with dots.
    error_path = re.sub(r"\[([^\]0-9][^\]]*)\]", r".\1", error_path)
    return error_path == path or error_path.startswith(path) or path.startswith(error_path)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_wrongly_typed_field_anywhere_is_refused_with_its_path(data: st.DataObject) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from(DOCS)))
    leaves = _leaves(doc)
    path, keys = data.draw(st.sampled_from(leaves))
    parent: Any = doc
    for key in keys[:-1]:
        parent = parent[key]
    parent[keys[-1]] = data.draw(st.sampled_from([{"x": 1}, [1, 2], True, 3.5]))
    errors = checks.problems(doc)
    assert any(_related(e.path, path) for e in errors), (path, errors)


@settings(max_examples=150, deadline=None)
@given(st.data(), st.from_regex(r"[a-zA-Z][a-zA-Z0-9]{0,12}", fullmatch=True))
def test_an_undeclared_field_anywhere_is_refused_with_its_path(data: st.DataObject, field: str) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from(DOCS)))
    objects = [("", [])] + [(p, k) for p, k in _object_paths(doc)]
    path, keys = data.draw(st.sampled_from(objects))
    target: Any = doc
    for key in keys:
        target = target[key]
    if field in target:
        return
    target[field] = "surprise"
    errors = checks.problems(doc)
    expected = f"{path}.{field}" if path else field
    assert any(e.path == expected for e in errors), (expected, errors)


def _object_paths(value: Any, path: str = "", keys: list[Any] | None = None) -> list[tuple[str, list[Any]]]:
    keys = keys or []
    found: list[tuple[str, list[Any]]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if key in ANY_KEY:
                continue  # maps take any key
            if isinstance(item, dict):
                found.append((sub, [*keys, key]))
            found += _object_paths(item, sub, [*keys, key])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                found.append((f"{path}[{i}]", [*keys, i]))
            found += _object_paths(item, f"{path}[{i}]", [*keys, i])
    return found


HOSTS = st.sampled_from(["127.0.0.1", "localhost", "127.8.9.1", "svc.default.localhost", "broker-ingress."
                         "knative-eventing.localhost", "a.b.c.localhost", "example.com", "db.prod", "[::1]",
                         "shop.example.localhost", "x.default.svc.cluster.local"])
PIECES = st.one_of(
    st.builds(lambda h, p: f"{h}:{p}", HOSTS, st.integers(1, 65535)),
    st.builds(lambda h, path: f"http://{h}:8080/{path}", HOSTS, st.from_regex(r"[a-z/]{0,10}", fullmatch=True)),
    st.builds(lambda h, r: f"http://127.0.0.1:8080/.wisp/route/{h}/{r}", HOSTS,
              st.from_regex(r"[a-z/]{0,10}", fullmatch=True)),
    st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=20),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=4), st.sampled_from([",", " ", ";", ""]))
def test_any_value_is_translated_or_refused_never_left_pointing_here(pieces: list[str], sep: str) -> None:
    addresses = Addresses(OPTIONS, ["127.0.0.1:9092"], ["shop.example.localhost"])
    errors: list[FieldError] = []
    value = addresses.value(sep.join(pieces), "env[0].value", errors)
    if errors:
        assert all(e.path == "env[0].value" for e in errors)
    else:
        assert checks.leftovers({"value": value}) == [], value


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.from_regex(r"[a-z0-9-]{1,70}", fullmatch=True),
    values=st.lists(st.one_of(PIECES, st.text(max_size=30)), max_size=4),
)
def test_a_generated_service_exports_whole_or_not_at_all(tmp_path: Path, name: str, values: list[str]) -> None:
    out = tmp_path / "out"
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "server.py").write_text("print('hi')\n")
    env = "".join(f"\n            - name: V{i}\n              value: {_quoted(v)}" for i, v in enumerate(values))
    (src / "svc.yaml").write_text(
        f"apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: '{name}'\nspec:\n  template:\n"
        f"    spec:\n      containers:\n        - image: ./\n          command: [python3, server.py]\n"
        f"          env:{env or ' []'}\n")
    try:
        export([src / "svc.yaml"], out, OPTIONS)
    except (ManifestError, ExportError) as e:
        assert not out.exists()
        assert str(e)
        return
    for docs in read_export(out).values():
        for doc in docs:
            assert checks.problems(doc) == []
    shutil.rmtree(out)


def _quoted(text: str) -> str:
    return json.dumps(text)
