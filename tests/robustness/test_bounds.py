"""Bounds that keep one manifest from wedging the daemon, refused at apply with an error naming the field.

- min-, max- and initial-scale above `max-scale-limit` (config-autoscaler; wisp's embedded value is 100,
  the value of Knative's own docs example, since every instance runs on this one machine);
- a KafkaSource's `consumers` above 100 (all run in the daemon's process);
- environment variable names by Kubernetes' rule (printable ASCII but `=`), and no NUL where a process's
  environment, arguments or paths need C strings.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.robustness.valid_manifests import valid_manifest
from wisp.api.autoscaling.config import (
    ONE_MACHINE_SCALE_LIMIT,
    AutoscalerConfig,
    parse_config_autoscaler,
)
from wisp.api.defaults import apply_defaults
from wisp.api.errors import ManifestError
from wisp.api.loader import load_text
from wisp.api.validation import validate
from wisp.types import Resource

A = "autoscaling.knative.dev/"
ANNOTATIONS = "spec.template.metadata.annotations"
CONTAINER = "spec.template.spec.containers[0]"


def errors(resource: Resource, config: AutoscalerConfig | None = None) -> dict[str, str]:
    return {e.path: e.message for e in validate(apply_defaults(resource), autoscaler=config)}


def service(**annotations: str) -> Resource:
    res = valid_manifest("Service")
    res["spec"]["template"]["metadata"]["annotations"] = annotations
    return res


# -- scale ----------------------------------------------------------------------------------------------


def test_a_million_min_scale_is_refused_naming_the_limit() -> None:
    text = f"""
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {{name: greedy}}
spec:
  template:
    metadata:
      annotations:
        {A}min-scale: "1000000"
    spec:
      containers: [{{image: ./app}}]
"""
    (doc,) = load_text(text)
    found = errors(doc.resource)
    path = f"{ANNOTATIONS}[{A}min-scale]"
    assert list(found) == [path]
    assert "expected 0 <= 1000000 <= 100" in found[path]
    assert "max-scale-limit" in found[path]


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("min-scale", "100", True),
        ("min-scale", "101", False),
        ("minScale", "101", False),
        ("max-scale", "100", True),
        ("max-scale", "101", False),
        ("max-scale", "0", False),  # 0 is "unlimited", which a limit forbids (Knative's rule)
        ("initial-scale", "100", True),
        ("initial-scale", "101", False),
        ("initial-scale", "9223372036854775807", False),
    ],
)
def test_scale_annotations_within_the_embedded_limit(key: str, value: str, ok: bool) -> None:
    found = errors(service(**{A + key: value}))
    assert (found == {}) is ok, found
    if not ok:
        assert list(found) == [f"{ANNOTATIONS}[{A}{key}]"]


def test_the_embedded_limit_is_one_hundred() -> None:
    assert ONE_MACHINE_SCALE_LIMIT == 100
    assert AutoscalerConfig().max_scale_limit == 100
    assert parse_config_autoscaler({}).max_scale_limit == 100


def test_an_operator_may_raise_the_limit() -> None:
    config = parse_config_autoscaler({"max-scale-limit": "1000", "max-scale": "1000"})
    assert errors(service(**{A + "min-scale": "500", A + "max-scale": "800"}), config) == {}
    assert list(errors(service(**{A + "min-scale": "5000"}), config)) == [f"{ANNOTATIONS}[{A}min-scale]"]


def test_an_operator_may_restore_knatives_unbounded_defaults() -> None:
    config = parse_config_autoscaler({"max-scale-limit": "0", "max-scale": "0"})
    assert errors(service(**{A + "min-scale": "1000000", A + "max-scale": "0"}), config) == {}


def test_config_autoscaler_is_bounded_by_its_own_limit() -> None:
    with pytest.raises(ManifestError) as info:
        parse_config_autoscaler({"initial-scale": "200"})
    assert [e.path for e in info.value.errors] == ["data[initial-scale]"]
    with pytest.raises(ManifestError) as info:
        parse_config_autoscaler({"max-scale-limit": "10"})  # max-scale (100) above it: Knative's rule
    assert [e.path for e in info.value.errors] == ["data[max-scale]"]


# -- KafkaSource consumers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consumers", "ok"),
    [(1, True), (12, True), (100, True), (101, False), (12345, False), (0, False), (-1, False), (2**40, False)],
)
def test_kafka_source_consumers_are_bounded(consumers: int, ok: bool) -> None:
    res = valid_manifest("KafkaSource")
    res["spec"]["consumers"] = consumers
    found = errors(res)
    assert (found == {}) is ok, found
    if not ok:
        assert list(found) == ["spec.consumers"]


def test_consumers_error_is_clear() -> None:
    res = valid_manifest("KafkaSource")
    res["spec"]["consumers"] = 12345
    assert errors(res)["spec.consumers"].startswith("expected 1 <= 12345 <= 100")


# -- environment -------------------------------------------------------------------------------------------


def _env(name: Any, value: str = "v") -> Resource:
    res = valid_manifest("Service")
    res["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": name, "value": value}]
    return res


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("TARGET", True),
        ("my.var-name", True),  # Kubernetes no longer asks for a C identifier (1.24+)
        ("1ST", True),
        ("WITH SPACE", True),
        ("A=B", False),
        ("=", False),
        ("NUL\x00", False),
        ("TAB\t", False),
        ("NEWLINE\n", False),
        ("DEL\x7f", False),
        ("héllo", False),
        ("", False),
    ],
)
def test_env_names_follow_kubernetes(name: str, ok: bool) -> None:
    found = errors(_env(name))
    assert (found == {}) is ok, found
    if not ok:
        assert list(found) == [f"{CONTAINER}.env[0].name"]


def test_env_name_error_is_kubernetes_wording_and_not_mangled() -> None:
    resource = apply_defaults(_env("A=B"))
    assert resource["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"] == "A=B"
    (error,) = validate(resource)
    assert "printable ASCII characters other than '='" in error.message


@pytest.mark.parametrize("prefix", ["A=", "X\x00", "\n"])
def test_env_from_prefix_follows_the_same_rule(prefix: str) -> None:
    res = valid_manifest("Service")
    res["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"prefix": prefix, "configMapRef": {"name": "c"}}]
    assert list(errors(res)) == [f"{CONTAINER}.envFrom[0].prefix"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("env", [{"name": "A", "value": "a\x00b"}]), ("command", ["run\x00"]), ("args", ["\x00"]),
     ("workingDir", "/srv\x00"), ("image", "./app\x00")],
)
def test_nul_where_exec_needs_c_strings(field: str, value: object) -> None:
    res = valid_manifest("Service")
    res["spec"]["template"]["spec"]["containers"][0][field] = value
    found = errors(res)
    assert len(found) == 1, found
    (path,) = found
    assert path.startswith(f"{CONTAINER}.{field}")
    assert "NUL" in found[path]


# -- wisp's own annotations, read by the revision reconciler ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [("0", True), ("10", True), ("1000000", True), ("1000001", False), ("-1", False), ("ten", False),
     ("1e3", False), ("١٢", False), ("", False)],
)  # fmt: skip
def test_queue_depth_must_be_an_integer_the_throttler_can_use(value: str, ok: bool) -> None:
    found = errors(service(**{"wisp.dev/queue-depth": value}))
    assert (found == {}) is ok, found
    if not ok:
        assert list(found) == [f"{ANNOTATIONS}[wisp.dev/queue-depth]"]


@pytest.mark.parametrize("key", ["wisp.dev/function-target", "wisp.dev/manifest-dir"])
def test_no_nul_in_annotations_that_become_arguments_or_paths(key: str) -> None:
    assert list(errors(service(**{key: "main\x00:handle"}))) == [f"{ANNOTATIONS}[{key}]"]
    res = valid_manifest("Service")
    res["metadata"]["annotations"][key] = "/srv\x00"  # the loader writes the manifest dir on the Service
    assert list(errors(res)) == [f"metadata.annotations[{key}]"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [('{"domain":"barrage.demo.knative.top","path":"/*"}', True), ('{"domain":"Demo.Example.COM"}', True),
     ("[" * 5000 + "]" * 5000, False), ('{"path": "/*"}', False), ('{"domain": "a b"}', False), ("{", False),
     ('"domain"', False)],
)  # fmt: skip
def test_the_seed_domain_annotation_must_name_a_domain(value: str, ok: bool) -> None:
    key = "fc.revision.serving.knative.aliyun.com/domain"
    res = valid_manifest("Service")
    res["metadata"]["annotations"][key] = value
    found = errors(res)
    assert (found == {}) is ok, found
    if not ok:
        assert list(found) == [f"metadata.annotations[{key}]"]
