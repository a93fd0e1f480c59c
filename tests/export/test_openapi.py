"""The structural check against Knative's CRDs, as the API server makes it."""

from __future__ import annotations

from wisp.api import kinds
from wisp.export import openapi
from wisp.export.checks import problems


def _paths(doc: dict) -> list[str]:  # type: ignore[type-arg]
    return [e.path for e in problems(doc)]


def test_the_crd_versions_served_are_the_vendored_ones() -> None:
    assert openapi.served_versions(kinds.KAFKA_SOURCE) == ("v1beta1", "v1")
    assert openapi.served_versions(kinds.DOMAIN_MAPPING) == ("v1beta1",)
    assert openapi.served_versions(kinds.SECRET) == ("v1",)


def test_a_version_knative_does_not_serve_is_refused() -> None:
    doc = {"apiVersion": "sources.knative.dev/v1alpha1", "kind": "KafkaSource", "metadata": {"name": "s"},
           "spec": {"bootstrapServers": ["k:9092"], "topics": ["t"], "consumerGroup": "g",
                    "sink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "x"}}}}
    assert _paths(doc) == ["apiVersion"]


def test_required_enum_and_types_as_the_crd_says() -> None:
    source = {"apiVersion": "sources.knative.dev/v1", "kind": "KafkaSource", "metadata": {"name": "s"},
              "spec": {"topics": ["t"], "consumerGroup": "g", "initialOffset": "sometime",
                       "consumers": "three", "sink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "x"}}}}
    errors = openapi.check(source, openapi.schema_of(kinds.KAFKA_SOURCE, "v1"))
    assert {e.path for e in errors} >= {"spec.bootstrapServers", "spec.consumers"}
    assert any(e.path == "spec.bootstrapServers" and e.message == "Required value" for e in errors)
    schema = {"type": "object", "properties": {"policy": {"type": "string", "enum": ["linear", "exponential"]},
                                               "name": {"type": "string", "pattern": "^[a-z]+$"},
                                               "n": {"type": "integer", "format": "int32"}}}
    assert [e.path for e in openapi.check({"policy": "fixed", "name": "A1", "n": 2**31}, schema)] == [
        "policy", "name", "n"]
    assert openapi.check({"policy": "linear", "name": "ab", "n": 5}, schema) == []


def test_core_kinds_take_kubernetes_types() -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": 1},
                  "extra": True}
    assert set(_paths(config_map)) >= {"data[a]", "extra"}
    assert _paths({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}) == []
