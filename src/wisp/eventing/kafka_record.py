"""Kafka record → CloudEvent, exactly as Knative's KafkaSource maps it (architecture.md: eventing semantics). Pure.

A record that already is a CloudEvent (Kafka protocol binding: `ce_` headers, or a structured
`application/cloudevents+json` value) passes unchanged; any other record becomes a
`dev.knative.kafka.event`. Nothing in a payload can make this raise: a broken CloudEvent record is mapped
as a plain record instead.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from wisp.eventing.cloudevents import (
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    CloudEventError,
    decode_data,
    event_from_json,
    make_event,
    validate_attribute_name,
)

__all__ = [
    "KAFKA_EVENT_TYPE",
    "KafkaRecord",
    "apply_overrides",
    "kafka_source_uri",
    "plain_record_event",
    "record_cloudevent",
    "record_to_event",
]

log = logging.getLogger(__name__)

KAFKA_EVENT_TYPE = "dev.knative.kafka.event"
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


class KafkaRecord(Protocol):
    """What the mapping needs of a record (aiokafka's ConsumerRecord has these)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...  # milliseconds since the epoch
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


def kafka_source_uri(namespace: str, name: str, topic: str) -> str:
    return f"/apis/v1/namespaces/{namespace}/kafkasources/{name}#{topic}"


def _text(value: bytes | None) -> str:
    """Header/key bytes as text; non-UTF-8 bytes travel base64 so nothing is lost."""
    if value is None:
        return ""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(value).decode()


def _timestamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _header_map(record: KafkaRecord) -> dict[str, bytes]:
    # Later duplicates win, as a map-shaped binding would read them.
    return {name.lower(): value for name, value in (record.headers or ())}


def record_cloudevent(record: KafkaRecord) -> CloudEvent | None:
    """The CloudEvent a record already carries (binary `ce_` headers or structured value), else None."""
    headers = _header_map(record)
    content_type = _text(headers["content-type"]) if "content-type" in headers else None
    try:
        if content_type and content_type.split(";", 1)[0].strip().lower() == STRUCTURED_CONTENT_TYPE:
            return event_from_json(record.value or b"")
        attributes: dict[str, Any] = {}
        for name, value in headers.items():
            if name.startswith("ce_"):
                attr = name[3:]
                validate_attribute_name(attr)
                attributes[attr] = _text(value)
        if not attributes:
            return None
        if content_type:
            attributes["datacontenttype"] = content_type
        for required in ("id", "source", "specversion", "type"):
            if not attributes.get(required):
                raise CloudEventError(f"missing required attribute {required}")
        return make_event(attributes, decode_data(record.value or b"", content_type))
    except CloudEventError as exc:
        log.warning(
            "record %s-%d@%d looks like a CloudEvent but is not one (%s); delivering it as a plain record",
            record.topic,
            record.partition,
            record.offset,
            exc,
        )
        return None


def plain_record_event(record: KafkaRecord, namespace: str, name: str) -> CloudEvent:
    """Knative's mapping of a record that is not a CloudEvent."""
    p, o = record.partition, record.offset
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"partition:{p}/offset:{o}",
        "source": kafka_source_uri(namespace, name, record.topic),
        "type": KAFKA_EVENT_TYPE,
        "subject": f"partition:{p}#{o}",
    }
    if record.timestamp is not None and record.timestamp >= 0:
        attributes["time"] = _timestamp(record.timestamp)
    if record.key is not None:
        attributes["key"] = _text(record.key)
    headers = _header_map(record)
    for header, raw in record.headers or ():
        attributes["kafkaheader" + _NOT_ALNUM.sub("", header.lower())] = _text(raw)
    if "traceparent" in headers:
        # Continue the producer's trace (architecture.md: tracing): the distributed-tracing extension.
        attributes["traceparent"] = _text(headers["traceparent"])
        if "tracestate" in headers:
            attributes["tracestate"] = _text(headers["tracestate"])
    value = record.value
    data: Any = None
    if value:
        content_type = _text(headers["content-type"]) if "content-type" in headers else None
        if content_type and "cloudevents" in content_type.lower():
            content_type = None  # a broken CloudEvent: sending that type would make the sink misparse it
        if content_type:
            attributes["datacontenttype"] = content_type
            data = decode_data(value, content_type)
        else:
            try:
                data = json.loads(value)
                attributes["datacontenttype"] = "application/json"
            except (ValueError, UnicodeDecodeError):
                data = value  # not JSON: delivered as the raw bytes
    return make_event(attributes, data)


def apply_overrides(event: CloudEvent, extensions: Mapping[str, str] | None) -> CloudEvent:
    """`ceOverrides.extensions`: set (or replace) these extension attributes."""
    for key, value in (extensions or {}).items():
        validate_attribute_name(key)
        event[key] = str(value)
    return event


def record_to_event(
    record: KafkaRecord, namespace: str, name: str, ce_overrides: Mapping[str, str] | None = None
) -> CloudEvent:
    """The event a KafkaSource `namespace/name` sends for `record`."""
    event = record_cloudevent(record)
    if event is None:
        event = plain_record_event(record, namespace, name)
    return apply_overrides(event, ce_overrides)
