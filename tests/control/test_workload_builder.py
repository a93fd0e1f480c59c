"""Revision → instance environment and WorkloadSpec, table-driven.

The environment follows Kubernetes' container rules: every `envFrom` source in order (a later source wins a
duplicate key, `prefix` prepended), then `env` in order (a later entry wins, and `env` beats `envFrom`);
`valueFrom` reads one key of a Secret (base64 `data`) or ConfigMap; `optional` turns a missing source or key into
"unset" instead of an error. Knative's runtime contract adds K_SERVICE, K_CONFIGURATION and K_REVISION last.
"""

from __future__ import annotations

import base64
import copy
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from wisp.api.names import (
    CONFIGURATION_LABEL,
    FUNCTION_TARGET_ANNOTATION,
    MANIFEST_DIR_ANNOTATION,
    SERVICE_LABEL,
    WORKLOAD_CLASS_ANNOTATION,
)
from wisp.control.env_expansion import expand
from wisp.control.workload_builder import (
    SpecError,
    instance_env,
    workload_class,
    workload_spec,
)
from wisp.serving.workloads.types import Probe
from wisp.types import Resource

NAMESPACE = "team"
CONTRACT = ("PATH", "K_SERVICE", "K_CONFIGURATION", "K_REVISION")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str, data: dict[str, str] | None = None, string_data: dict[str, str] | None = None) -> Resource:
    out: Resource = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE}}
    if data is not None:
        out["data"] = {key: b64(value) for key, value in data.items()}
    if string_data is not None:
        out["stringData"] = string_data
    return out


def config_map(name: str, data: dict[str, str]) -> Resource:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NAMESPACE},
            "data": data}


SECRETS = {
    "db": secret("db", {"USER": "admin", "PASSWORD": "s3cret", "SHARED": "from-secret"}),
    "plain": secret("plain", string_data={"TOKEN": "tok"}),
    "both": secret("both", {"TOKEN": "old"}, string_data={"TOKEN": "new"}),  # the API server's merge: stringData
}
CONFIG_MAPS = {
    "settings": config_map("settings", {"MODE": "prod", "SHARED": "from-config", "LEVEL": "info"}),
    "more": config_map("more", {"LEVEL": "debug"}),
}


class Lookups:
    """Secrets and ConfigMaps by name, in NAMESPACE only; records what was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str]] = []

    def secret(self, namespace: str, name: str) -> Resource | None:
        self.asked.append(("Secret", namespace, name))
        return SECRETS.get(name) if namespace == NAMESPACE else None

    def config_map(self, namespace: str, name: str) -> Resource | None:
        self.asked.append(("ConfigMap", namespace, name))
        return CONFIG_MAPS.get(name) if namespace == NAMESPACE else None


def revision(container: dict[str, Any] | None = None, annotations: dict[str, str] | None = None,
             labels: dict[str, str] | None = None, **spec: Any) -> Resource:
    meta: dict[str, Any] = {"name": "hello-00001", "namespace": NAMESPACE,
                            "labels": {SERVICE_LABEL: "hello", CONFIGURATION_LABEL: "hello"}
                            if labels is None else labels}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "metadata": meta,
            "spec": {"containers": [{"image": "registry.example/app:1", **(container or {})}], **spec}}


def env_of(container: dict[str, Any], extra: dict[str, str] | None = None,
           inherited: dict[str, str] | None = None) -> dict[str, str]:
    lookups = Lookups()
    return instance_env(revision(container), lookups.secret, lookups.config_map, extra or {}, inherited or {})


def declared(env: dict[str, str]) -> dict[str, str]:
    """The environment less the runtime contract's own variables."""
    return {key: value for key, value in env.items() if key not in CONTRACT}


# -- environment precedence --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvCase:
    name: str
    container: dict[str, Any]
    env: dict[str, str]
    extra: dict[str, str] = field(default_factory=dict)


def var(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def secret_key(name: str, secret_name: str, key: str, optional: bool | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret_name, "key": key}
    if optional is not None:
        ref["optional"] = optional
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def config_key(name: str, map_name: str, key: str, optional: bool | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": map_name, "key": key}
    if optional is not None:
        ref["optional"] = optional
    return {"name": name, "valueFrom": {"configMapKeyRef": ref}}


ENV_CASES = [
    EnvCase("nothing declared", {}, {}),
    EnvCase("literal values", {"env": [var("A", "1"), var("B", "two")]}, {"A": "1", "B": "two"}),
    EnvCase("a value left out is the empty string", {"env": [{"name": "EMPTY"}]}, {"EMPTY": ""}),
    EnvCase("a later env entry wins", {"env": [var("A", "1"), var("A", "2")]}, {"A": "2"}),
    EnvCase("envFrom a config map", {"envFrom": [{"configMapRef": {"name": "settings"}}]},
            {"MODE": "prod", "SHARED": "from-config", "LEVEL": "info"}),
    EnvCase("envFrom a secret, decoded", {"envFrom": [{"secretRef": {"name": "db"}}]},
            {"USER": "admin", "PASSWORD": "s3cret", "SHARED": "from-secret"}),
    EnvCase("envFrom a secret's stringData", {"envFrom": [{"secretRef": {"name": "plain"}}]}, {"TOKEN": "tok"}),
    EnvCase("envFrom with a prefix", {"envFrom": [{"prefix": "DB_", "secretRef": {"name": "db"}}]},
            {"DB_USER": "admin", "DB_PASSWORD": "s3cret", "DB_SHARED": "from-secret"}),
    EnvCase("a later envFrom source wins",
            {"envFrom": [{"configMapRef": {"name": "settings"}}, {"configMapRef": {"name": "more"}},
                         {"secretRef": {"name": "db"}}]},
            {"MODE": "prod", "LEVEL": "debug", "SHARED": "from-secret", "USER": "admin", "PASSWORD": "s3cret"}),
    EnvCase("env beats envFrom, whatever the order in the manifest",
            {"env": [var("LEVEL", "warn")], "envFrom": [{"configMapRef": {"name": "settings"}}]},
            {"MODE": "prod", "SHARED": "from-config", "LEVEL": "warn"}),
    EnvCase("an optional envFrom source that is missing is skipped",
            {"envFrom": [{"secretRef": {"name": "nope", "optional": True}},
                         {"configMapRef": {"name": "nope", "optional": True}}]}, {}),
    EnvCase("secretKeyRef", {"env": [secret_key("DB_PASS", "db", "PASSWORD")]}, {"DB_PASS": "s3cret"}),
    EnvCase("secretKeyRef into stringData", {"env": [secret_key("T", "plain", "TOKEN")]}, {"T": "tok"}),
    EnvCase("stringData over data, as Kubernetes merges them",
            {"env": [secret_key("T", "both", "TOKEN")], "envFrom": [{"prefix": "E_", "secretRef": {"name": "both"}}]},
            {"T": "new", "E_TOKEN": "new"}),
    EnvCase("configMapKeyRef", {"env": [config_key("M", "settings", "MODE")]}, {"M": "prod"}),
    EnvCase("valueFrom beats envFrom",
            {"envFrom": [{"configMapRef": {"name": "settings"}}], "env": [secret_key("MODE", "db", "USER")]},
            {"MODE": "admin", "SHARED": "from-config", "LEVEL": "info"}),
    EnvCase("optional refs to a missing secret, config map or key leave the variable unset",
            {"env": [secret_key("A", "nope", "X", optional=True), secret_key("B", "db", "NOPE", optional=True),
                     config_key("C", "nope", "X", optional=True), config_key("D", "settings", "NOPE", optional=True)]},
            {}),
    EnvCase("an unset optional ref does not remove an envFrom value",
            {"envFrom": [{"configMapRef": {"name": "settings"}}],
             "env": [config_key("MODE", "settings", "NOPE", optional=True)]},
            {"MODE": "prod", "SHARED": "from-config", "LEVEL": "info"}),
    EnvCase("wisp's extra variables", {}, {"OTEL_SERVICE_NAME": "hello"}, {"OTEL_SERVICE_NAME": "hello"}),
    EnvCase("declared variables beat wisp's extra ones", {"env": [var("OTEL_SERVICE_NAME", "mine")]},
            {"OTEL_SERVICE_NAME": "mine"}, {"OTEL_SERVICE_NAME": "hello"}),
    EnvCase("the runtime contract cannot be overridden",
            {"env": [var("K_SERVICE", "x"), var("K_REVISION", "x"), var("K_CONFIGURATION", "x")]}, {}),
]


@pytest.mark.parametrize("case", ENV_CASES, ids=lambda c: c.name)
def test_instance_env(case: EnvCase) -> None:
    env = env_of(case.container, case.extra)
    assert declared(env) == case.env
    assert (env["K_SERVICE"], env["K_CONFIGURATION"], env["K_REVISION"]) == ("hello", "hello", "hello-00001")


def test_sources_are_looked_up_in_the_revisions_namespace() -> None:
    lookups = Lookups()
    container = {"envFrom": [{"secretRef": {"name": "db"}}, {"configMapRef": {"name": "settings"}}],
                 "env": [secret_key("A", "plain", "TOKEN"), config_key("B", "more", "LEVEL")]}
    instance_env(revision(container), lookups.secret, lookups.config_map, {}, {})
    assert lookups.asked == [("Secret", NAMESPACE, "db"), ("ConfigMap", NAMESPACE, "settings"),
                             ("Secret", NAMESPACE, "plain"), ("ConfigMap", NAMESPACE, "more")]


@pytest.mark.parametrize(("container", "message"), [
    pytest.param({"envFrom": [{"secretRef": {"name": "nope"}}]},
                 'spec.containers[0].envFrom[0].secretRef: secret "nope" not found', id="envFrom: missing secret"),
    pytest.param({"envFrom": [{"secretRef": {"name": "db"}}, {"configMapRef": {"name": "nope", "optional": False}}]},
                 'spec.containers[0].envFrom[1].configMapRef: config map "nope" not found',
                 id="envFrom: missing config map"),
    pytest.param({"env": [var("A", "1"), secret_key("B", "nope", "X")]},
                 'spec.containers[0].env[1].valueFrom: secret "nope" not found', id="secretKeyRef: missing secret"),
    pytest.param({"env": [secret_key("B", "db", "NOPE")]},
                 'spec.containers[0].env[0].valueFrom: key "NOPE" not found in secret "db"',
                 id="secretKeyRef: missing key"),
    pytest.param({"env": [config_key("C", "nope", "X")]},
                 'spec.containers[0].env[0].valueFrom: config map "nope" not found',
                 id="configMapKeyRef: missing config map"),
    pytest.param({"env": [config_key("C", "settings", "NOPE", optional=False)]},
                 'spec.containers[0].env[0].valueFrom: key "NOPE" not found in config map "settings"',
                 id="configMapKeyRef: missing key"),
])
def test_a_missing_required_source_is_a_spec_error(container: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        env_of(container)
    assert str(caught.value) == message


def test_only_a_few_daemon_variables_are_inherited() -> None:
    inherited = {"HOME": "/home/u", "LANG": "C.UTF-8", "TZ": "UTC", "PATH": "/usr/bin",
                 "AWS_SECRET_ACCESS_KEY": "leak", "WISP_TOKEN": "leak"}
    env = env_of({}, inherited=inherited)
    assert declared(env) == {"HOME": "/home/u", "LANG": "C.UTF-8", "TZ": "UTC"}
    # `python` in a command is the Python wisp runs on, ahead of the inherited PATH.
    assert env["PATH"] == os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin"])


def test_path_without_an_inherited_one() -> None:
    assert env_of({})["PATH"] == os.pathsep.join([os.path.dirname(sys.executable), os.defpath])


def test_a_declared_path_wins() -> None:
    assert env_of({"env": [var("PATH", "/opt/bin")]})["PATH"] == "/opt/bin"


def test_the_contract_for_a_bare_revision() -> None:
    lookups = Lookups()
    env = instance_env(revision(labels={}), lookups.secret, lookups.config_map, {}, {})
    assert (env["K_SERVICE"], env["K_CONFIGURATION"], env["K_REVISION"]) == ("", "", "hello-00001")


def test_dependent_environment_variables_are_expanded() -> None:
    env = env_of({"env": [var("HOST", "db.local"), var("URL", "$(HOST):8080"), var("LITERAL", "$$(HOST)"),
                          var("UNKNOWN", "$(NOPE)")]})
    assert (env["URL"], env["LITERAL"], env["UNKNOWN"]) == ("db.local:8080", "$(HOST)", "$(NOPE)")


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("$(A)", "1", id="defined"),
    pytest.param("x$(A)y$(B)z", "x1y2z", id="several"),
    pytest.param("$(NOPE)", "$(NOPE)", id="undefined stays"),
    pytest.param("$$(A)", "$(A)", id="escaped"),
    pytest.param("$$$(A)", "$1", id="escape then reference"),
    pytest.param("$A $", "$A $", id="lone dollars"),
    pytest.param("$(A", "$(A", id="unclosed"),
    pytest.param("$()", "$()", id="empty name"),
])
def test_expansion(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}) == expected


def test_a_sink_bindings_k_sink_wins_over_the_containers() -> None:
    env = env_of({"env": [var("K_SINK", "http://stale")]}, extra={"K_SINK": "http://broker.team.svc"})
    assert env["K_SINK"] == "http://broker.team.svc"


# -- WorkloadSpec ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("annotations", "expected"), [
    pytest.param(None, "container", id="default"),
    pytest.param({WORKLOAD_CLASS_ANNOTATION: "function"}, "function", id="function"),
    pytest.param({WORKLOAD_CLASS_ANNOTATION: "container"}, "container", id="container"),
    pytest.param({WORKLOAD_CLASS_ANNOTATION: "lambda"}, "container", id="anything else is a container"),
])
def test_workload_class(annotations: dict[str, str] | None, expected: str) -> None:
    assert workload_class(revision(annotations=annotations)) == expected


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    return tmp_path


@dataclass(frozen=True)
class SpecCase:
    name: str
    revision: Resource
    env: dict[str, str]
    expected: dict[str, Any]  # WorkloadSpec fields; "directory" relative to the manifest dir


def local(container: dict[str, Any] | None = None, function: bool = False, **spec: Any) -> Resource:
    annotations = {MANIFEST_DIR_ANNOTATION: "<manifest-dir>"}
    if function:
        annotations[WORKLOAD_CLASS_ANNOTATION] = "function"
    return revision({"image": "./app", **(container or {})}, annotations=annotations, **spec)


SPEC_CASES = [
    SpecCase("an image", revision(), {}, {
        "workload_class": "container", "directory": None, "image": "registry.example/app:1", "command": [],
        "args": [], "function_target": "main:handle", "probe": Probe(), "timeout_seconds": 300}),
    SpecCase("a local container: its directory, command and args",
             local({"command": ["python", "-m", "app"], "args": ["--port", 8080]}), {},
             {"workload_class": "container", "directory": "app", "image": "./app",
              "command": ["python", "-m", "app"], "args": ["--port", "8080"]}),
    SpecCase("a function: its directory and the default target", local(function=True),
             {}, {"workload_class": "function", "directory": "app", "function_target": "main:handle"}),
    SpecCase("a function: target annotation",
             revision({"image": "./app"}, annotations={MANIFEST_DIR_ANNOTATION: "<manifest-dir>",
                                                       WORKLOAD_CLASS_ANNOTATION: "function",
                                                       FUNCTION_TARGET_ANNOTATION: "handler:run"}),
             {}, {"function_target": "handler:run"}),
    SpecCase("a function: FUNCTION_TARGET in the env beats the annotation",
             revision({"image": "./app"}, annotations={MANIFEST_DIR_ANNOTATION: "<manifest-dir>",
                                                       WORKLOAD_CLASS_ANNOTATION: "function",
                                                       FUNCTION_TARGET_ANNOTATION: "handler:run"}),
             {"FUNCTION_TARGET": "other:fn"}, {"function_target": "other:fn"}),
    SpecCase("an httpGet readiness probe", revision({"readinessProbe": {"httpGet": {"path": "/healthz"}}}), {},
             {"probe": Probe(http_path="/healthz", declared=True)}),
    SpecCase("httpGet without a path probes /", revision({"readinessProbe": {"httpGet": {"port": 8080}}}), {},
             {"probe": Probe(http_path="/", declared=True)}),
    SpecCase("a tcpSocket probe is the default TCP probe", revision({"readinessProbe": {"tcpSocket": {}}}), {},
             {"probe": Probe()}),
    SpecCase("timeoutSeconds", revision(timeoutSeconds=30), {}, {"timeout_seconds": 30.0}),
    SpecCase("timeoutSeconds 0 is the default", revision(timeoutSeconds=0), {}, {"timeout_seconds": 300.0}),
    SpecCase("the environment is passed through", revision(), {"A": "1"}, {"env": {"A": "1"}}),
    SpecCase("$(VAR) in command and args expands from the environment",
             local({"command": ["$(PYTHON)", "-m", "app"], "args": ["--port=$(PORT_X)", "$$(PORT_X)", "$(NOPE)"]}),
             {"PYTHON": "python3", "PORT_X": "9000"},
             {"command": ["python3", "-m", "app"], "args": ["--port=9000", "$(PORT_X)", "$(NOPE)"]}),
]


def _resolve(resource: Resource, manifest_dir: Path) -> Resource:
    """A copy of the table's revision with the manifest-dir placeholder pointing at this test's directory."""
    resource = copy.deepcopy(resource)
    annotations = resource["metadata"].get("annotations", {})
    if annotations.get(MANIFEST_DIR_ANNOTATION) == "<manifest-dir>":
        annotations[MANIFEST_DIR_ANNOTATION] = str(manifest_dir)
    return resource


@pytest.mark.parametrize("case", SPEC_CASES, ids=lambda c: c.name)
def test_workload_spec(manifest_dir: Path, case: SpecCase) -> None:
    spec = workload_spec(_resolve(case.revision, manifest_dir), dict(case.env))
    assert (spec.revision, spec.namespace) == ("hello-00001", NAMESPACE)
    for name, want in case.expected.items():
        if name == "directory" and want is not None:
            want = (manifest_dir / want).resolve()
        assert getattr(spec, name) == want, name


@pytest.mark.parametrize(("resource", "message"), [
    pytest.param(revision(), "", id="(control) an image is fine"),
    pytest.param({**revision(), "spec": {"containers": [{"image": "a"}, {"image": "b", "name": "proxy"}]}},
                 "spec.containers: wisp runs one container per revision; sidecars (proxy) are not supported",
                 id="a sidecar"),
    pytest.param(revision({"volumeMounts": [{"name": "v", "mountPath": "/v"}]}),
                 "", id="a volume mount of an OCI image is accepted"),
    pytest.param(revision(volumes=[{"name": "v", "secret": {"secretName": "db"}}]),
                 "", id="a volume of an OCI image is accepted"),
    pytest.param(local(function=True, volumes=[{"name": "v", "secret": {"secretName": "db"}}]),
                 "spec.volumes: volumes of functions are not supported by wisp yet", id="a volume of a function"),
    pytest.param(local({"image": "./missing", "command": ["run"]}),
                 "spec.containers[0].image: ./missing is not a directory", id="a local image that is not a directory"),
    pytest.param(revision(annotations={WORKLOAD_CLASS_ANNOTATION: "function"}),
                 "spec.containers[0].image: a function needs a local code directory", id="a function from an image"),
    pytest.param(local(), "spec.containers[0].command: required when the image is a local directory",
                 id="a local container without a command"),
])
def test_workload_spec_refuses(manifest_dir: Path, resource: Resource, message: str) -> None:
    resource = _resolve(resource, manifest_dir)
    if not message:
        workload_spec(resource, {})
        return
    with pytest.raises(SpecError) as caught:
        workload_spec(resource, {})
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_local_image_is_relative_to_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "deploy" / "src").mkdir(parents=True)
    resource = revision({"image": "../deploy/src", "command": ["run"]},
                        annotations={MANIFEST_DIR_ANNOTATION: str(tmp_path / "manifests")})
    (tmp_path / "manifests").mkdir()
    assert workload_spec(resource, {}).directory == (tmp_path / "deploy" / "src").resolve()
