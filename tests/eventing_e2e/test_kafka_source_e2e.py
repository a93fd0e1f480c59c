"""The seed's KafkaSource through the real daemon and the real (Tansu) Kafka, delivering to a function Service."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.serving.harness import running_daemon, service, write_function
from wisp.api import kinds as k
from wisp.types import Resource

from .helpers import RECORDING_FUNCTION, WISP, new_topic, produce, read_lines, unique

pytestmark = pytest.mark.timeout(120)

# The distributed-tracing extension may ride along (architecture.md: tracing); nothing else may be added.
TRACING = {"traceparent", "tracestate"}


def seed_kafka_source(name: str, bootstrap: str, topics: str, sink_service: str) -> Resource:
    """The seed's manifest shape: v1alpha1, topics as a comma-separated string, the sink an object
    reference itself, and the three k8s.aliyun.com delivery annotations."""
    return {
        "apiVersion": "sources.knative.dev/v1alpha1", "kind": "KafkaSource",
        "metadata": {"name": name, "namespace": "default", "annotations": {
            "k8s.aliyun.com/req-timeout": "60", "k8s.aliyun.com/retry-count": "5",
            "k8s.aliyun.com/retry-interval": "2"}},
        "spec": {"consumerGroup": unique("seed-consumer"), "bootstrapServers": bootstrap, "topics": topics,
                 "sink": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": sink_service,
                          "namespace": "default"}},
    }


def delivered(count: int) -> Any:
    return lambda r: r.get("status", {}).get("deliveryStats", {}).get("delivered", 0) >= count


async def wisp_get(api: str, kind: str, name: str) -> dict[str, Any]:
    """What a user sees with `wisp get KIND NAME -o json`."""
    proc = await asyncio.create_subprocess_exec(
        str(WISP), "--api", api, "get", kind, name, "-o", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_seed_kafka_source_delivers_exact_cloudevents(kafka_bootstrap: str, tmp_path: Path) -> None:
    first, second = await new_topic(kafka_bootstrap), await new_topic(kafka_bootstrap)
    events_file = tmp_path / "events.jsonl"
    code = write_function(tmp_path / "processor", RECORDING_FUNCTION)
    sink = service("barrage-process", code, container={"env": [{"name": "EVENTS_FILE", "value": str(events_file)}]})
    source = seed_kafka_source("barrage", kafka_bootstrap, f"{first}, {second}", "barrage-process")

    async with running_daemon(tmp_path / "state", kafka=kafka_bootstrap) as h:
        h.apply(sink, source)
        await h.ready("barrage-process")
        ready = await h.ready("barrage", kind=k.KAFKA_SOURCE)
        # Knative reports a Service sink by its cluster-local address.
        assert ready["status"]["sinkUri"].startswith("http://barrage-process.default.svc.cluster.local")

        stamp = 1_700_000_000_123
        await produce(kafka_bootstrap, first, [
            {"key": b"user-7", "value": b'{"msg": "hello"}', "timestamp_ms": stamp,
             "headers": [("Lane-ID", b"3"), ("x_custom.Header", b"v")]},
            {"key": b"ignored", "value": b'{"a": 1}', "headers": [
                ("ce_specversion", b"1.0"), ("ce_id", b"evt-1"), ("ce_source", b"/my/producer"),
                ("ce_type", b"com.example.barrage"), ("ce_subject", b"room-1"),
                ("ce_time", b"2024-01-02T03:04:05Z"), ("ce_myext", b"x"), ("content-type", b"application/json")]},
        ])
        await produce(kafka_bootstrap, second, [{"value": b"plain text", "timestamp_ms": stamp}])
        status = (await h.wait_for(k.KAFKA_SOURCE, "default", "barrage", delivered(3), timeout=30))["status"]
        assert status["deliveryStats"]["retried"] == 0 and status["deliveryStats"]["dropped"] == 0

        # Knative's id names no topic: the two topics' first records share "partition:0/offset:0".
        got = {(line["attributes"]["source"], line["attributes"]["id"]): line for line in read_lines(events_file)}
        source_of = {topic: f"/apis/v1/namespaces/default/kafkasources/barrage#{topic}" for topic in (first, second)}
        assert sorted(got) == sorted([(source_of[first], "partition:0/offset:0"), ("/my/producer", "evt-1"),
                                      (source_of[second], "partition:0/offset:0")])
        plain = got[(source_of[first], "partition:0/offset:0")]
        attrs = {a: v for a, v in plain["attributes"].items() if a not in TRACING}
        assert attrs == {
            "specversion": "1.0", "id": "partition:0/offset:0",
            "source": source_of[first],
            "type": "dev.knative.kafka.event", "subject": "partition:0#0", "time": "2023-11-14T22:13:20.123Z",
            "key": "user-7", "kafkaheaderlaneid": "3", "kafkaheaderxcustomheader": "v",
            "datacontenttype": "application/json",
        }
        assert plain["data"] == {"msg": "hello"}

        passthrough = got[("/my/producer", "evt-1")]
        assert {a: v for a, v in passthrough["attributes"].items() if a not in TRACING} == {
            "specversion": "1.0", "id": "evt-1", "source": "/my/producer", "type": "com.example.barrage",
            "subject": "room-1", "time": "2024-01-02T03:04:05Z", "myext": "x", "datacontenttype": "application/json",
        }
        assert passthrough["data"] == {"a": 1}

        other = got[(source_of[second], "partition:0/offset:0")]
        assert other["data"] == "plain text"
        assert "datacontenttype" not in other["attributes"]  # not JSON: the raw bytes, no invented type

        shown = await wisp_get(h.api, "kafkasource", "barrage")
        conditions = {c["type"]: c["status"] for c in shown["status"]["conditions"]}
        assert conditions["Ready"] == "True"
        assert shown["status"]["deliveryStats"]["delivered"] == 3

        # The counters keep moving with new records.
        await produce(kafka_bootstrap, first, [{"value": b'{"n": 2}'}, {"value": b'{"n": 3}'}])
        await h.wait_for(k.KAFKA_SOURCE, "default", "barrage", delivered(5), timeout=60)
        assert (await wisp_get(h.api, "kafkasource", "barrage"))["status"]["deliveryStats"]["delivered"] == 5
