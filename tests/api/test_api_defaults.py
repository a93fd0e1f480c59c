"""Defaulting, as Knative's mutating webhooks do it."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from wisp.api.defaults import apply_defaults
from wisp.types import Resource


def service(**template_meta: Any) -> Resource:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "hello"},
        "spec": {"template": {"metadata": template_meta, "spec": {"containers": [{"image": "./hello"}]}}},
    }


def test_service_template_gets_knative_defaults() -> None:
    out = apply_defaults(service())
    assert out["metadata"]["namespace"] == "default"
    spec = out["spec"]["template"]["spec"]
    assert spec["containerConcurrency"] == 0
    assert spec["timeoutSeconds"] == 300
    assert spec["enableServiceLinks"] is False
    (container,) = spec["containers"]
    assert container["name"] == "user-container"
    assert container["readinessProbe"] == {"successThreshold": 1, "tcpSocket": {"port": 0}}
    assert out["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]


def test_defaulting_is_pure() -> None:
    original = service()
    snapshot = copy.deepcopy(original)
    apply_defaults(original)
    assert original == snapshot


def test_given_values_are_kept() -> None:
    res = service()
    spec = res["spec"]["template"]["spec"]
    spec.update(containerConcurrency=5, timeoutSeconds=30)
    spec["containers"][0].update(name="app", readinessProbe={"httpGet": {"path": "/healthz"}})
    out = apply_defaults(res)["spec"]["template"]["spec"]
    assert (out["containerConcurrency"], out["timeoutSeconds"]) == (5, 30)
    assert out["containers"][0]["name"] == "app"
    assert out["containers"][0]["readinessProbe"] == {"httpGet": {"path": "/healthz"}, "successThreshold": 1}


def test_traffic_entries_get_latest_revision() -> None:
    res = service()
    res["spec"]["traffic"] = [{"revisionName": "hello-00001", "percent": 50}, {"percent": 50, "tag": "next"}]
    out = apply_defaults(res)
    assert out["spec"]["traffic"] == [
        {"revisionName": "hello-00001", "percent": 50, "latestRevision": False},
        {"percent": 50, "tag": "next", "latestRevision": True},
    ]


@pytest.mark.parametrize(
    ("service_annotations", "template_annotations", "expected"),
    [
        ({}, {}, "container"),
        ({"workload.serving.knative.aliyun.com/class": "fc"}, {}, "function"),
        ({}, {"workload.serving.knative.aliyun.com/class": "fc"}, "function"),
        ({"workload.serving.knative.aliyun.com/class": "eci"}, {}, "container"),
        (
            {"workload.serving.knative.aliyun.com/class": "fc"},
            {"wisp.dev/workload-class": "container"},
            "container",
        ),
        (
            {"wisp.dev/workload-class": "function"},
            {"workload.serving.knative.aliyun.com/class": "eci"},
            "function",
        ),
    ],
)
def test_workload_class_mapping(
    service_annotations: dict[str, str], template_annotations: dict[str, str], expected: str
) -> None:
    res = service(annotations=template_annotations)
    res["metadata"]["annotations"] = service_annotations
    out = apply_defaults(res)
    assert out["spec"]["template"]["metadata"]["annotations"]["wisp.dev/workload-class"] == expected


def test_kafka_source_v1alpha1_is_normalised_to_v1beta1() -> None:
    seed = {
        "apiVersion": "sources.knative.dev/v1alpha1",
        "kind": "KafkaSource",
        "metadata": {"name": "barrage", "namespace": "default"},
        "spec": {
            "bootstrapServers": "a:9092, b:9092,",
            "topics": "barrage-info",
            "sink": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "proc"},
        },
    }
    out = apply_defaults(seed)
    assert out["apiVersion"] == "sources.knative.dev/v1beta1"
    spec = out["spec"]
    assert spec["bootstrapServers"] == ["a:9092", "b:9092"]
    assert spec["topics"] == ["barrage-info"]
    assert spec["consumerGroup"] == "knative-kafka-source-barrage"
    assert (spec["initialOffset"], spec["consumers"], spec["ordering"]) == ("latest", 1, "ordered")
    assert spec["sink"] == {
        "ref": {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": "proc",
            "namespace": "default",
        }
    }


def test_kafka_source_consumer_group_prefers_uid() -> None:
    res = {
        "apiVersion": "sources.knative.dev/v1beta1",
        "kind": "KafkaSource",
        "metadata": {"name": "k", "uid": "1234"},
        "spec": {},
    }
    assert apply_defaults(res)["spec"]["consumerGroup"] == "knative-kafka-source-1234"


def test_broker_and_trigger_defaults() -> None:
    broker = apply_defaults(
        {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "b"}}
    )
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "MTChannelBasedBroker"
    kafka = apply_defaults(
        {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Broker",
            "metadata": {"name": "b", "annotations": {"eventing.knative.dev/broker.class": "Kafka"}},
        }
    )
    assert kafka["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "Kafka"
    trigger = apply_defaults(
        {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Trigger",
            "metadata": {"name": "t", "namespace": "ns"},
            "spec": {"subscriber": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "s"}}},
        }
    )
    assert trigger["spec"]["broker"] == "default"
    assert trigger["spec"]["subscriber"]["ref"]["namespace"] == "ns"


def test_ping_source_content_type_follows_data() -> None:
    def ping(data: str) -> Resource:
        return {
            "apiVersion": "sources.knative.dev/v1",
            "kind": "PingSource",
            "metadata": {"name": "p"},
            "spec": {"schedule": "*/2 * * * *", "data": data},
        }

    assert apply_defaults(ping('{"message": "hi"}'))["spec"]["contentType"] == "application/json"
    assert apply_defaults(ping("hello"))["spec"]["contentType"] == "text/plain"
    assert "timezone" not in apply_defaults(ping("x"))["spec"]


def test_secret_string_data_is_merged_into_data() -> None:
    res = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"a": base64.b64encode(b"old").decode(), "b": "Yg=="},
        "stringData": {"a": "new"},
    }
    out = apply_defaults(res)
    assert "stringData" not in out
    assert base64.b64decode(out["data"]["a"]) == b"new"
    assert out["data"]["b"] == "Yg=="


def test_namespace_and_core_service_are_left_alone() -> None:
    ns = apply_defaults({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    assert "namespace" not in ns["metadata"]
    core = apply_defaults({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {}})
    assert core["spec"] == {}
