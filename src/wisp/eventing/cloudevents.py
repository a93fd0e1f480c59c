"""CloudEvents over HTTP: parse binary, structured and batched requests; encode binary or structured.

Events are `cloudevents.v1.http.CloudEvent` (the 1.x API kept in cloudevents 2.x; architecture.md: machine
facts), so the function runtime and the dispatchers here speak the same type. Parsing is our own rather than `from_http`
because we must name every missing required attribute (callers answer 400 with them) and must not invent
an `id` or `time` the sender never sent.
"""

from __future__ import annotations

import base64
import functools
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
# Context attributes are Strings, URIs or Timestamps, all strings in JSON; an extension may also be a Boolean
# or an Integer (CloudEvents type system). Anything else (a float, an object) has no CloudEvents type.
_STRING_ATTRIBUTES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time", "schemaurl",
     "datacontentencoding"}
)  # fmt: skip
_MEDIA_TYPE = re.compile(r"[\x20-\x7e]*")
# In a UTF-8 JSON body, where a lone surrogate could come from: a `\u` escape, or 0xED (an encoded surrogate's lead).
_SURROGATE_SOURCES = re.compile(rb"\\u|\xed")
# JSON deeper than this is refused (structured) or kept as bytes (data): Python's json recurses per level,
# and an event decoded near the top of the stack may be encoded again much deeper in it.
MAX_JSON_DEPTH = 100
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


def _checked_event(attributes: dict[str, Any], data: Any) -> CloudEvent:
    """The event of attributes this module has checked already (names valid, so lowercase; the required ones
    present; a supported specversion): what `make_event` makes, without the SDK's constructor, which copies the
    attributes, checks the required ones again and makes a `time` for `make_event` to delete (~3 µs of a ~15 µs
    binary parse). Takes ownership of `attributes`."""
    event: CloudEvent = CloudEvent.__new__(CloudEvent)
    event._attributes = attributes
    event.data = data
    return event


def decode_data(body: bytes, content_type: str | None) -> Any:
    """Body → event data: JSON media types become Python values; anything else (or bad JSON) stays bytes."""
    if not body:
        return None
    if is_json_content_type(content_type):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return body
        return body if not _json_surely_fine(body) and _json_problem(data) else data
    return body


def _json_surely_fine(body: bytes) -> bool:
    """True when the JSON `json.loads` reads from `body` can hold neither a lone surrogate nor nesting past
    MAX_JSON_DEPTH, so `_json_problem` need not walk it: UTF-8 (`json.loads` reads UTF-16/32 when a byte order
    mark or a zero byte starts the body) with no lead byte of an encoded surrogate (0xED, which `json.loads`
    lets through) and no `\\u` escape, and fewer brackets than it takes to nest that deep."""
    return (
        (len(body) < MAX_JSON_DEPTH or body.count(b"[") + body.count(b"{") < MAX_JSON_DEPTH)
        and _SURROGATE_SOURCES.search(body) is None
        and b"\x00" not in body[:4]
        and body[:1] not in (b"\xfe", b"\xff")
    )


def _json_problem(value: Any) -> str | None:
    """Why decoded JSON cannot travel on as it is (too deep, or a lone surrogate from a `\\ud800` escape,
    which no UTF-8 text can carry), or None. Iterative."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"JSON nested more than {MAX_JSON_DEPTH} levels deep"
        if isinstance(item, str) and not _is_text(item):
            return "a string that is not valid Unicode (a lone surrogate)"
        if isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def _is_text(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _attribute_value(name: str, value: Any) -> Any:
    """A decoded attribute's value if the CloudEvents type system has a type for it; else CloudEventError."""
    if isinstance(value, str):
        if not _is_text(value):
            raise CloudEventError(f"CloudEvent attribute {name!r} is not valid Unicode text")
        if name == "datacontenttype" and not _MEDIA_TYPE.fullmatch(value):
            # It travels on as the Content-Type header in binary mode: no control characters in it.
            raise CloudEventError("CloudEvent attribute 'datacontenttype' must be a media type in printable ASCII")
        return value
    if name not in _STRING_ATTRIBUTES:
        if isinstance(value, bool) or (isinstance(value, int) and -(2**31) <= value < 2**31):
            return value
        raise CloudEventError(f"CloudEvent attribute {name!r} must be a string, a boolean or a 32-bit integer")
    raise CloudEventError(f"CloudEvent attribute {name!r} must be a string")


# What `json.dumps(data, separators=(",", ":"), ensure_ascii=False)` does, without a new encoder per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _json_bytes(data: Any) -> bytes:
    text = _COMPACT_JSON.encode(data)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: the escaped form is the same JSON value, in ASCII
        return json.dumps(data, separators=(",", ":")).encode()


def encode_data(data: Any, content_type: str | None) -> bytes:
    """Event data → body bytes; the inverse of `decode_data`."""
    if data is None:
        return b""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str) and not is_json_content_type(content_type):
        return data.encode("utf-8", "replace")  # a lone surrogate (no UTF-8 form) must not stop the event
    return _json_bytes(data)


def _check_required(attributes: Mapping[str, Any]) -> None:
    missing = [name for name in REQUIRED_ATTRIBUTES if attributes.get(name) in (None, "")]
    if missing:
        raise MissingAttributesError(missing)
    if str(attributes["specversion"]) not in SUPPORTED_SPECVERSIONS:
        raise CloudEventError(f"unsupported CloudEvent specversion {attributes['specversion']!r}")


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@functools.lru_cache(maxsize=1024)
def _known_valid_name(name: str) -> None:
    """validate_attribute_name, each name matched once (an error is not cached; bounded: names come from senders)."""
    validate_attribute_name(name)


def _parse_binary(headers: dict[str, str], body: bytes) -> CloudEvent:
    attributes: dict[str, Any] = {}
    for name, value in headers.items():
        if name.startswith("ce-"):
            attr = name[3:]
            _known_valid_name(attr)
            if "%" in value:
                value = unquote(value)
            if value.isascii() and attr != "datacontenttype":
                attributes[attr] = value  # the common case, inline: ASCII text is a valid String
            else:
                attributes[attr] = _attribute_value(attr, value)
    content_type = headers.get("content-type")
    if content_type:
        attributes["datacontenttype"] = _attribute_value("datacontenttype", content_type)
    _check_required(attributes)
    return _checked_event(attributes, decode_data(body, content_type))


def event_from_dict(obj: Any) -> CloudEvent:
    """One structured-mode JSON object → CloudEvent (`data_base64` becomes bytes)."""
    if not isinstance(obj, dict):
        raise CloudEventError("a structured CloudEvent must be a JSON object")
    problem = _json_problem(obj)
    if problem:
        raise CloudEventError(f"structured CloudEvent holds {problem}")
    attributes: dict[str, Any] = {}
    for name, value in obj.items():
        if name in ("data", "data_base64") or value is None:
            continue  # a null attribute is an absent one (JSON event format)
        validate_attribute_name(name)
        attributes[name] = _attribute_value(name, value)
    _check_required(attributes)
    data: Any = None
    if "data_base64" in obj and obj["data_base64"] is not None:
        try:
            data = base64.b64decode(obj["data_base64"], validate=True)
        except (ValueError, TypeError) as exc:
            raise CloudEventError(f"invalid data_base64: {exc}") from exc
    elif "data" in obj:
        data = obj["data"]
    return _checked_event(attributes, data)


def event_from_json(body: bytes | str) -> CloudEvent:
    """A structured-mode body → CloudEvent."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CloudEventError(f"structured CloudEvent is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise CloudEventError(f"structured CloudEvent is nested more than {MAX_JSON_DEPTH} levels deep") from exc
    return event_from_dict(obj)


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def parse_request(headers: Mapping[str, str], body: bytes, *, names_lowered: bool = False) -> list[CloudEvent]:
    """Every CloudEvent in an HTTP request: binary (`ce-` headers), structured, or batched mode.
    `names_lowered`: the caller has lowercased the header names already (a dict it made), so they are not again."""
    lowered = headers if names_lowered and isinstance(headers, dict) else _lower_headers(headers)
    media = _media_type(lowered)
    if media == BATCH_CONTENT_TYPE:
        try:
            items = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CloudEventError(f"batched CloudEvents are not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise CloudEventError(f"batched CloudEvents are nested more than {MAX_JSON_DEPTH} levels deep") from exc
        if not isinstance(items, list):
            raise CloudEventError("batched CloudEvents must be a JSON array")
        return [event_from_dict(item) for item in items]
    if media == STRUCTURED_CONTENT_TYPE:
        return [event_from_json(body)]
    return [_parse_binary(lowered, body)]


def parse_event(headers: Mapping[str, str], body: bytes, *, names_lowered: bool = False) -> CloudEvent:
    """Exactly one CloudEvent from a request (binary or structured; a batch is an error here)."""
    events = parse_request(headers, body, names_lowered=names_lowered)
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
    return _json_bytes(event_to_dict(event))


def encode(event: CloudEvent, fmt: EventFormat = "binary") -> tuple[dict[str, str], bytes]:
    """(headers, body) of an HTTP message carrying `event` in binary (default) or structured mode."""
    content_type = event.get("datacontenttype")
    # In binary mode the data's media type becomes Content-Type, and a receiver reads `application/cloudevents*`
    # there as structured or batched mode (HTTP binding §3.1): such an event can travel only structured.
    if fmt == "structured" or str(content_type or "").strip().lower().startswith("application/cloudevents"):
        return {"content-type": STRUCTURED_CONTENT_TYPE}, event_to_json(event)
    headers: dict[str, str] = {}
    data = event.get_data()
    for name, value in event.get_attributes().items():
        if name == "datacontenttype":
            continue
        text = value if type(value) is str else _attribute_text(value)
        if not (text.isascii() and text.isprintable() and "%" not in text):  # else quote() returns it as it is
            # errors="replace": an event built elsewhere may hold a lone surrogate, which has no UTF-8 form.
            text = quote(text, safe=_HEADER_SAFE, errors="replace")
        headers[f"ce-{name}"] = text
    if content_type:
        headers["content-type"] = str(content_type)
    elif data is not None and not isinstance(data, bytes | bytearray | memoryview):
        headers["content-type"] = "application/json"
    return headers, encode_data(data, content_type)
