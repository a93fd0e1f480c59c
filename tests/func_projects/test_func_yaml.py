"""func.yaml → Knative Service: each field lands where `func deploy` puts it, and bad input names its field."""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wisp.api import bounded_yaml, func_project
from wisp.api.errors import ManifestError
from wisp.api.loader import load_paths
from wisp.api.validation import validate

from .conftest import func_yaml, project

FULL = """\
    namespace: fns
    run:
      envs:
        - name: GREETING
          value: Bonjour
        - name: FROM_SHELL
          value: '{{ env:WISP_TEST_SHELL }}'
        - name: API_KEY
          value: '{{ secret:keys:api }}'
        - name: LEVEL
          value: '{{ configMap:settings:level }}'
        - value: '{{ secret:all-keys }}'
        - value: '{{configMap:all-settings}}'
    deploy:
      namespace: ignored-when-namespace-is-set
      annotations:
        team: payments
      labels:
        - key: tier
          value: gold
        - key: owner
          value: ana
      healthEndpoints:
        readiness: /ready-now
      options:
        scale: {min: 1, max: 5, metric: rps, target: 2.5, utilization: 70}
        resources:
          requests: {cpu: 100m}
          limits: {concurrency: 4, memory: 256Mi}
      subscriptions:
        - source: default
          filters: {type: order.created}
    """


def service_of(tmp_path: Path, extra: str = "", environ: dict[str, str] | None = None) -> dict[str, Any]:
    directory = project(tmp_path, "http", "hello", extra=extra)
    docs = load_paths([directory], environ=environ if environ is not None else {"WISP_TEST_SHELL": "shell"})
    assert docs[0].resource["kind"] == "Service"
    return docs[0].resource


def test_every_field_lands_on_the_service(tmp_path: Path) -> None:
    directory = project(tmp_path, "http", "hello", extra=FULL)
    resources = [d.resource for d in load_paths([directory], environ={"WISP_TEST_SHELL": "shell"})]
    svc, trigger = resources
    assert svc["metadata"]["name"] == "hello" and svc["metadata"]["namespace"] == "fns"
    assert svc["metadata"]["labels"] == {"tier": "gold", "owner": "ana"}
    assert svc["metadata"]["annotations"]["team"] == "payments"
    template = svc["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if k.startswith("autoscaling.")} == {
        "autoscaling.knative.dev/min-scale": "1",
        "autoscaling.knative.dev/max-scale": "5",
        "autoscaling.knative.dev/metric": "rps",
        "autoscaling.knative.dev/target": "2.5",
        "autoscaling.knative.dev/target-utilization-percentage": "70",
    }
    assert annotations["wisp.dev/workload-class"] == "function" and annotations["team"] == "payments"
    assert re.fullmatch(r"[0-9a-f]{64}", annotations[func_project.SOURCE_DIGEST_ANNOTATION])
    assert template["metadata"]["labels"] == {"tier": "gold", "owner": "ana"}
    spec = template["spec"]
    assert spec["containerConcurrency"] == 4
    container = spec["containers"][0]
    assert container["env"] == [
        {"name": "GREETING", "value": "Bonjour"},
        {"name": "FROM_SHELL", "value": "shell"},
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "api"}}},
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
    ]
    assert container["envFrom"] == [{"secretRef": {"name": "all-keys"}}, {"configMapRef": {"name": "all-settings"}}]
    assert container["readinessProbe"] == {"httpGet": {"path": "/ready-now"}}
    assert container["livenessProbe"] == {"httpGet": {"path": "/health/liveness"}}
    assert container["resources"] == {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}}
    assert trigger["kind"] == "Trigger" and trigger["metadata"] == {"name": "hello-function-trigger-0",
                                                                     "namespace": "fns"}
    assert trigger["spec"]["broker"] == "default"
    assert trigger["spec"]["filter"] == {"attributes": {"type": "order.created"}}
    assert trigger["spec"]["subscriber"]["ref"]["name"] == "hello"
    # What wisp's admission would say about them: nothing.
    for resource in resources:
        assert validate(copy.deepcopy(resource)) == []


def test_defaults_and_deploy_namespace(tmp_path: Path) -> None:
    svc = service_of(tmp_path, "deploy:\n  namespace: team-a\n")
    assert svc["metadata"]["namespace"] == "team-a"
    container = svc["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"] == {"httpGet": {"path": "/health/readiness"}}
    assert "containerConcurrency" not in svc["spec"]["template"]["spec"]
    assert svc["metadata"]["annotations"]["wisp.dev/manifest-dir"] == str((tmp_path / "hello").resolve())
    assert validate(copy.deepcopy(svc)) == []


def test_changed_code_changes_the_template(tmp_path: Path) -> None:
    directory = project(tmp_path, "http", "hello")
    before = load_paths([directory])[0].resource["spec"]["template"]
    (directory / "function" / "func.py").write_text("def new(): ...\n")
    (directory / "function" / "__pycache__").mkdir(exist_ok=True)
    after = load_paths([directory])[0].resource["spec"]["template"]
    assert before != after
    (directory / "function" / "__pycache__" / "func.cpython-311.pyc").write_bytes(b"bytecode")
    (directory / "venv").mkdir()
    (directory / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (directory / ".git").mkdir()
    (directory / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert load_paths([directory])[0].resource["spec"]["template"] == after


def refused(tmp_path: Path, extra: str, environ: dict[str, str] | None = None, **head: str) -> list[str]:
    directory = tmp_path / "bad"
    directory.mkdir()
    text = func_yaml("bad", extra=extra)
    for key, value in head.items():
        text = re.sub(rf"^{key}: .*$", f"{key}: {value}", text, flags=re.M)
    (directory / "func.yaml").write_text(text)
    with pytest.raises(ManifestError) as info:
        load_paths([directory], environ=environ or {})
    assert info.value.where.endswith("func.yaml")
    return [str(e) for e in info.value.errors]


def test_runtime_other_than_python(tmp_path: Path) -> None:
    assert refused(tmp_path, "", runtime="go") == [
        "runtime: wisp runs Python functions; build an image for `runtime: go` and use a container Service"]


@pytest.mark.parametrize(("extra", "expected"), [
    ("deploy:\n  options:\n    scale:\n      min: -1\n", "deploy.options.scale.min: must be >= 0"),
    ("deploy:\n  options:\n    scale:\n      utilization: 120\n",
     "deploy.options.scale.utilization: must be <= 100"),
    ("deploy:\n  options:\n    scale:\n      metric: cpu\n",
     "deploy.options.scale.metric: must be one of concurrency, rps"),
    ("deploy:\n  options:\n    resources:\n      limits:\n        concurrency: many\n",
     "deploy.options.resources.limits.concurrency: must be of type integer"),
    ("run:\n  envs:\n    - name: 9bad\n      value: x\n", "run.envs[0].name: must match ^[-._a-zA-Z][-._a-zA-Z0-9]*$"),
    ("deploy:\n  surprise: 1\n", "deploy.surprise: unknown field"),
    ("run:\n  volumes:\n    - secret: s\n      path: /etc/s\n",
     "run.volumes: not supported by wisp yet: instances are processes on this machine; read Secrets and "
     "ConfigMaps through run.envs instead"),
    ("run:\n  envs:\n    - name: X\n      value: '{{ env:NOT_SET_ANYWHERE }}'\n",
     "run.envs[0].value: required local environment variable 'NOT_SET_ANYWHERE' is not set"),
    ("run:\n  envs:\n    - name: X\n      value: '{{ vault:a:b }}'\n",
     "run.envs[0].value: must be a value, {{ env:NAME }}, {{ secret:NAME:KEY }} or {{ configMap:NAME:KEY }}"),
    ("run:\n  envs:\n    - value: plain\n",
     "run.envs[0].value: without a name, must be {{ secret:NAME }} or {{ configMap:NAME }}"),
    # Knative's own rules on what func.yaml made, named by the func.yaml field.
    ("deploy:\n  options:\n    scale: {min: 5, max: 2}\n", "deploy.options.scale.max: must be >= min-scale"),
    ("deploy:\n  options:\n    resources:\n      limits:\n        concurrency: 5000\n",
     "deploy.options.resources.limits.concurrency: expected 0 <= 5000 <= 1000"),
    ("deploy:\n  options:\n    scale: {target: 0}\n", "deploy.options.scale.target: target 0 should be at least 0.01"),
])
def test_bad_fields_are_refused_with_their_path(tmp_path: Path, extra: str, expected: str) -> None:
    assert expected in refused(tmp_path, extra)


def test_what_the_cluster_settings_decide_is_left_to_admission(tmp_path: Path) -> None:
    """initial-scale 0 is allowed only where config-autoscaler says so: reading the project does not refuse it."""
    svc = service_of(tmp_path, "deploy:\n  annotations:\n    autoscaling.knative.dev/initial-scale: '0'\n")
    assert svc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/initial-scale"] == "0"


def test_missing_required_fields(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    directory.mkdir()
    (directory / "func.yaml").write_text("name: p\nruntime: python\n")
    with pytest.raises(ManifestError) as info:
        load_paths([directory])
    assert [str(e) for e in info.value.errors] == ["created: missing field(s)", "specVersion: missing field(s)"]


def test_a_directory_of_manifests_and_projects(tmp_path: Path) -> None:
    """A project found while walking a folder is read from its func.yaml; the YAML inside it is the project's."""
    project(tmp_path / "apps", "http", "hello")
    (tmp_path / "apps" / "hello" / "config.yaml").write_text("not: a manifest\n")
    (tmp_path / "apps" / "display.yaml").write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        data: {a: b}
        """))
    kinds = sorted((d.resource["kind"], d.resource["metadata"]["name"]) for d in load_paths([tmp_path / "apps"]))
    assert kinds == [("ConfigMap", "settings"), ("Service", "hello")]


# -- Hypothesis: any value of the wrong kind at any field of the schema is refused at that field's path ------

def _leaf_fields(schema: dict[str, Any], definitions: dict[str, Any], path: tuple[str, ...] = (),
                 depth: int = 0) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
    if depth > 4:
        return []
    found = []
    for name, sub in schema.get("properties", {}).items():
        resolved = definitions[sub["$ref"].rsplit("/", 1)[-1]] if "$ref" in sub else sub
        if resolved.get("type") == "object" and "properties" in resolved:
            found += _leaf_fields(resolved, definitions, (*path, name), depth + 1)
        elif resolved.get("type") in ("string", "integer", "number", "boolean"):
            found.append(((*path, name), resolved))
    return found


SCHEMA = func_project.schema()
LEAVES = _leaf_fields(SCHEMA, SCHEMA["definitions"])
WRONG = {  # a value of another JSON type than the field's
    "string": st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)),
    "integer": st.one_of(st.text(max_size=5), st.booleans(), st.floats(allow_nan=False).filter(lambda f: f % 1)),
    "number": st.one_of(st.text(max_size=5), st.booleans(), st.dictionaries(st.text(max_size=3), st.integers())),
    "boolean": st.one_of(st.text(max_size=5), st.integers(), st.none()),
}


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.data())
def test_a_wrong_value_anywhere_is_refused_at_its_path(data: st.DataObject) -> None:
    path, field_schema = data.draw(st.sampled_from(LEAVES))
    value = data.draw(WRONG[field_schema["type"]])
    doc: dict[str, Any] = bounded_yaml.load_all(func_yaml("fuzz"))[0]
    node = doc
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    errors = func_project.schema_errors(doc)
    assert [str(e) for e in errors if e.path == ".".join(path)] == [
        f"{'.'.join(path)}: must be of type {field_schema['type']}"], errors


def test_a_project_beyond_the_source_limits_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = project(tmp_path, "http", "big")
    monkeypatch.setattr(func_project, "MAX_SOURCE_FILES", 3)
    with pytest.raises(ManifestError, match="the project has more than 3 files"):
        load_paths([directory])
    monkeypatch.setattr(func_project, "MAX_SOURCE_FILES", 10_000)
    monkeypatch.setattr(func_project, "MAX_SOURCE_BYTES", 1024)
    (directory / "data.bin").write_bytes(b"x" * 4096)
    with pytest.raises(ManifestError, match="the project is larger than 0 MiB"):
        load_paths([directory])
