"""CloudEvents over HTTP: parse binary, structured and batched requests; encode binary or structured.

Events are `cloudevents.v1.http.CloudEvent` (the 1.x API kept in cloudevents 2.x, DESIGN §10), so the
function runtime and the dispatchers here speak the same type. Parsing is our own rather than `from_http`
because we must name every missing required attribute (callers answer 400 with them) and must not invent
an `id` or `time` the sender never sent.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import quote, unquote

from cloudevents.v1.http import CloudEvent

__all__ = [
    "BATCH_CONTENT_TYPE",
    "REQUIRED_ATTRIBUTES",
    "STRUCTURED_CONTENT_TYPE",
    "CloudEvent",
    "CloudEventError",
    "EventFormat",
    "MissingAttributesError",
    "decode_data",
    "encode",
    "encode_data",
    "event_from_dict",
    "event_from_json",
    "event_to_dict",
    "event_to_json",
    "is_json_content_type",
    "make_event",
    "parse_event",
    "parse_request",
    "validate_attribute_name",
]

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
REQUIRED_ATTRIBUTES: tuple[str, ...] = ("id", "source", "specversion", "type")
SUPPORTED_SPECVERSIONS = frozenset({"1.0", "0.3"})

EventFormat = Literal["binary", "structured"]

_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]+\Z")  # \Z: `$` would allow a trailing newline
# HTTP binding §3.1.3.2: characters outside printable ASCII (and '%' itself) travel percent-encoded.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


class CloudEventError(ValueError):
    """A request that does not carry a valid CloudEvent; HTTP callers answer 400 with `str(error)`."""


class MissingAttributesError(CloudEventError):
    """Required attributes absent; `missing` names them in spec order."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = tuple(missing)
        super().__init__(f"missing required CloudEvent attributes: {', '.join(self.missing)}")


def validate_attribute_name(name: str) -> None:
    """Attribute and extension names are lowercase letters and digits only (CloudEvents 1.0 §2)."""
    if not _ATTRIBUTE_NAME.match(name):
        raise CloudEventError(f"invalid CloudEvent attribute name {name!r}: must match ^[a-z0-9]+$")


def is_json_content_type(content_type: str | None) -> bool:
    """True for absent, `application/json`, `text/json` and any `+json` media type (the spec's JSON rule)."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def make_event(attributes: Mapping[str, Any], data: Any = None) -> CloudEvent:
    """A CloudEvent with exactly these attributes: the SDK's defaulted `time` is removed when not given."""
    event = CloudEvent(dict(attributes), data)
    if "time" not in attributes:
        del event["time"]
    return event


def decode_data(body: bytes, content_type: str | None) -> Any:
    """Body → event data: JSON media types become Python values; anything else (or bad JSON) stays bytes."""
    if not body:
        return None
    if is_json_content_type(content_type):
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return body
    return body


def encode_data(data: Any, content_type: str | None) -> bytes:
    """Event data → body bytes; the inverse of `decode_data`."""
    if data is None:
        return b""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str) and not is_json_content_type(content_type):
        return data.encode()
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _check_required(attributes: Mapping[str, Any]) -> None:
    missing = [name for name in REQUIRED_ATTRIBUTES if attributes.get(name) in (None, "")]
    if missing:
        raise MissingAttributesError(missing)
    if str(attributes["specversion"]) not in SUPPORTED_SPECVERSIONS:
        raise CloudEventError(f"unsupported CloudEvent specversion {attributes['specversion']!r}")


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _parse_binary(headers: dict[str, str], body: bytes) -> CloudEvent:
    attributes: dict[str, Any] = {}
    for name, value in headers.items():
        if name.startswith("ce-"):
            attr = name[3:]
            validate_attribute_name(attr)
            attributes[attr] = unquote(value)
    content_type = headers.get("content-type")
    if content_type:
        attributes["datacontenttype"] = content_type
    _check_required(attributes)
    return make_event(attributes, decode_data(body, content_type))


def event_from_dict(obj: Any) -> CloudEvent:
    """One structured-mode JSON object → CloudEvent (`data_base64` becomes bytes)."""
    if not isinstance(obj, dict):
        raise CloudEventError("a structured CloudEvent must be a JSON object")
    attributes: dict[str, Any] = {}
    for name, value in obj.items():
        if name in ("data", "data_base64"):
            continue
        validate_attribute_name(name)
        attributes[name] = value
    _check_required(attributes)
    data: Any = None
    if "data_base64" in obj and obj["data_base64"] is not None:
        try:
            data = base64.b64decode(obj["data_base64"], validate=True)
        except (ValueError, TypeError) as exc:
            raise CloudEventError(f"invalid data_base64: {exc}") from exc
    elif "data" in obj:
        data = obj["data"]
    return make_event(attributes, data)


def event_from_json(body: bytes | str) -> CloudEvent:
    """A structured-mode body → CloudEvent."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CloudEventError(f"structured CloudEvent is not valid JSON: {exc}") from exc
    return event_from_dict(obj)


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def parse_request(headers: Mapping[str, str], body: bytes) -> list[CloudEvent]:
    """Every CloudEvent in an HTTP request: binary (`ce-` headers), structured, or batched mode."""
    lowered = _lower_headers(headers)
    media = _media_type(lowered)
    if media == BATCH_CONTENT_TYPE:
        try:
            items = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CloudEventError(f"batched CloudEvents are not valid JSON: {exc}") from exc
        if not isinstance(items, list):
            raise CloudEventError("batched CloudEvents must be a JSON array")
        return [event_from_dict(item) for item in items]
    if media == STRUCTURED_CONTENT_TYPE:
        return [event_from_json(body)]
    return [_parse_binary(lowered, body)]


def parse_event(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Exactly one CloudEvent from a request (binary or structured; a batch is an error here)."""
    events = parse_request(headers, body)
    if len(events) != 1:
        raise CloudEventError(f"expected one CloudEvent, got a batch of {len(events)}")
    return events[0]


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def event_to_dict(event: CloudEvent) -> dict[str, Any]:
    """Structured-mode JSON object of an event (bytes data as `data_base64`)."""
    obj: dict[str, Any] = {name: _attribute_text(event[name]) for name in event}
    data = event.get_data()
    if isinstance(data, bytes | bytearray | memoryview):
        obj["data_base64"] = base64.b64encode(bytes(data)).decode()
    elif data is not None:
        obj["data"] = data
    return obj


def event_to_json(event: CloudEvent) -> bytes:
    return json.dumps(event_to_dict(event), separators=(",", ":"), ensure_ascii=False).encode()


def encode(event: CloudEvent, fmt: EventFormat = "binary") -> tuple[dict[str, str], bytes]:
    """(headers, body) of an HTTP message carrying `event` in binary (default) or structured mode."""
    if fmt == "structured":
        return {"content-type": STRUCTURED_CONTENT_TYPE}, event_to_json(event)
    headers: dict[str, str] = {}
    content_type = event.get("datacontenttype")
    data = event.get_data()
    for name in event:
        if name == "datacontenttype":
            continue
        headers[f"ce-{name}"] = quote(_attribute_text(event[name]), safe=_HEADER_SAFE)
    if content_type:
        headers["content-type"] = str(content_type)
    elif data is not None and not isinstance(data, bytes | bytearray | memoryview):
        headers["content-type"] = "application/json"
    return headers, encode_data(data, content_type)
