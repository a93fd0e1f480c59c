"""Record → CloudEvent mapping edge cases (pure; the Kafka round trip is in test_kafka_source)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wisp.eventing.kafka_record import record_to_event


@dataclass
class Record:
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    key: bytes | None = None
    topic: str = "orders"
    partition: int = 3
    offset: int = 42
    timestamp: int = 0


def test_header_names_are_sanitised_and_traceparent_continued() -> None:
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = record_to_event(Record(b"plain", [("My-Header.1", b"v"), ("traceparent", tp.encode())]), "ns", "s")
    assert event["kafkaheadermyheader1"] == "v"
    assert event["traceparent"] == tp
    assert event["id"] == "partition:3/offset:42"
    assert event["subject"] == "partition:3#42"
    assert event["time"] == "1970-01-01T00:00:00.000Z"
    assert event.get_data() == b"plain"
    assert "datacontenttype" not in event


def test_incomplete_cloudevent_headers_fall_back_to_plain_mapping() -> None:
    event = record_to_event(Record(b"{}", [("ce_specversion", b"1.0"), ("ce_type", b"x")]), "ns", "s")
    assert event["type"] == "dev.knative.kafka.event"
    assert event["kafkaheadercespecversion"] == "1.0"


def test_broken_structured_value_falls_back_and_overrides_apply() -> None:
    headers = [("content-type", b"application/cloudevents+json")]
    event = record_to_event(Record(b"not json", headers), "ns", "s", {"env": "prod"})
    assert event["type"] == "dev.knative.kafka.event"
    assert event["env"] == "prod"
    assert "datacontenttype" not in event


def test_non_utf8_key_is_base64() -> None:
    event = record_to_event(Record(b"", key=b"\xff"), "ns", "s")
    assert event["key"] == "/w=="
    assert event.get_data() is None
