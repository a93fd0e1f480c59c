"""What the pages are given: event flows from stored objects, and pasted YAML read like `wisp apply -f`."""

from __future__ import annotations

import pytest

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.api.names import MANIFEST_DIR_ANNOTATION
from wisp.console.apply_text import parse_manifests
from wisp.console.views import eventing_flows, service_row
from wisp.observability.metrics import SourceState


def _obj(kind: str, name: str, spec: dict, status: dict | None = None) -> dict:
    return {"kind": kind, "metadata": {"name": name, "namespace": "default"}, "spec": spec, "status": status or {}}


def test_flows_go_source_broker_trigger_subscriber_with_counters() -> None:
    to_broker = {"ref": {"kind": "Broker", "name": "default"}}
    source = _obj("KafkaSource", "orders", {"topics": ["orders"], "sink": to_broker},
                  {"conditions": [{"type": "Ready", "status": "True"}]})
    to_display = {"ref": {"kind": "Service", "name": "display"}}
    ping = _obj("PingSource", "tick", {"schedule": "* * * * *", "sink": to_display})
    broker = _obj("Broker", "default", {})
    trigger = _obj("Trigger", "big", {"broker": "default", "filter": {"attributes": {"type": "order.big"}},
                                      "subscriber": {"ref": {"kind": "Service", "name": "audit"}}},
                   {"subscriberUri": "http://audit.default.svc.cluster.local"})
    lonely = _obj("Broker", "empty", {})
    states = [SourceState("KafkaSource", "default", "orders", delivered=5, retried=1, dead_lettered=2, lag=7),
              SourceState("Trigger", "default", "big", delivered=3)]
    flows = eventing_flows({k.KAFKA_SOURCE: [source], k.PING_SOURCE: [ping], k.BROKER: [broker, lonely],
                            k.TRIGGER: [trigger]}, states)
    shapes = [[(hop["kind"], hop["name"]) for hop in flow] for flow in flows]
    assert shapes == [[("KafkaSource", "orders"), ("Broker", "default"), ("Trigger", "big"), ("Service", "audit")],
                      [("PingSource", "tick"), ("Service", "display")],
                      [("Broker", "empty")]]
    first = flows[0]
    assert first[0]["counters"] == {"delivered": 5, "retried": 1, "deadLettered": 2, "dropped": 0, "lag": 7}
    assert first[0]["detail"] == "topics: orders" and first[0]["ready"] == "True"
    assert first[2]["detail"] == "type=order.big" and first[2]["counters"]["delivered"] == 3
    assert first[3]["detail"] == "http://audit.default.svc.cluster.local"


def test_flows_through_a_channel_and_its_subscriptions() -> None:
    channel = _obj("InMemoryChannel", "orders", {})
    source = _obj("PingSource", "tick", {"schedule": "* * * * *",
                                         "sink": {"ref": {"kind": "InMemoryChannel", "name": "orders"}}})
    subscription = _obj("Subscription", "audit", {"channel": {"kind": "InMemoryChannel", "name": "orders"},
                                                  "subscriber": {"uri": "http://audit.example"}})
    lonely = _obj("Channel", "spare", {})
    flows = eventing_flows({k.PING_SOURCE: [source], k.IN_MEMORY_CHANNEL: [channel], k.CHANNEL: [lonely],
                            k.SUBSCRIPTION: [subscription]}, [])
    assert [[(hop["kind"], hop["name"]) for hop in flow] for flow in flows] == [
        [("PingSource", "tick"), ("InMemoryChannel", "orders"), ("Subscription", "audit"),
         ("URI", "http://audit.example")],
        [("Channel", "spare")]]


def test_a_service_row_takes_url_ready_and_traffic_from_status() -> None:
    service = {"metadata": {"name": "hello", "namespace": "default"}, "status": {
        "url": "http://hello.default.localhost:8080", "latestReadyRevisionName": "hello-00002",
        "conditions": [{"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": "<b>no</b>"}],
        "traffic": [{"revisionName": "hello-00001", "percent": 80}, {"revisionName": "hello-00002", "percent": 20,
                                                                      "tag": "canary"}]}}
    row = service_row(service, {"ready": 3, "desired": 4, "rps": 12.5}, 9.0)
    assert row["url"] == "http://hello.default.localhost:8080" and row["latestRevision"] == "hello-00002"
    assert (row["ready"], row["reason"], row["message"]) == ("False", "RevisionFailed", "<b>no</b>")
    assert [(t["revision"], t["percent"], t["tag"]) for t in row["traffic"]] == [
        ("hello-00001", 80, ""), ("hello-00002", 20, "canary")]
    assert (row["instances"], row["rps"], row["changedAt"]) == (3, 12.5, 9.0)


SERVICE = """apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
{annotations}spec:
  template:
    spec:
      containers:
        - image: {image}
"""


def test_pasted_yaml_is_read_as_a_file_would_be() -> None:
    [item] = parse_manifests(SERVICE.format(annotations="", image="ghcr.io/example/hello:1"))
    assert item["metadata"]["name"] == "hello"
    assert MANIFEST_DIR_ANNOTATION not in item["metadata"].get("annotations", {})
    with pytest.raises(ManifestError) as bad:
        parse_manifests("kind: [unclosed")
    assert "<console>:1" in str(bad.value)


def test_a_local_image_needs_a_manifest_directory_unless_the_object_already_names_one() -> None:
    with pytest.raises(ManifestError) as refused:
        parse_manifests(SERVICE.format(annotations="", image="./hello"))
    assert refused.value.errors[0].path == "spec.template.spec.containers[].image"
    kept = SERVICE.format(annotations=f"  annotations:\n    {MANIFEST_DIR_ANNOTATION}: /srv/app\n", image="./hello")
    [item] = parse_manifests(kept)
    assert item["metadata"]["annotations"][MANIFEST_DIR_ANNOTATION] == "/srv/app"
