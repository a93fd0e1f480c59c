"""The CloudEvents HTTP codec: binary, structured and batched parsing; encoding round trips."""

from __future__ import annotations

import json

import pytest

from wisp.eventing.cloudevents import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    CloudEventError,
    MissingAttributesError,
    encode,
    make_event,
    parse_event,
    parse_request,
)

BINARY = {
    "ce-specversion": "1.0",
    "ce-id": "abc",
    "ce-source": "/my/source",
    "ce-type": "dev.example",
    "Content-Type": "application/json",
}


def test_binary_request_parses_attributes_and_json_data() -> None:
    event = parse_event({**BINARY, "ce-traceparent": "00-1-2-01"}, b'{"a": 1}')
    assert isinstance(event, CloudEvent)
    assert event["id"] == "abc"
    assert event["source"] == "/my/source"
    assert event["datacontenttype"] == "application/json"
    assert event["traceparent"] == "00-1-2-01"
    assert event.get_data() == {"a": 1}
    assert "time" not in event  # never invented


def test_binary_missing_attributes_are_all_named() -> None:
    with pytest.raises(MissingAttributesError) as info:
        parse_event({"ce-specversion": "1.0", "ce-type": "t"}, b"")
    assert info.value.missing == ("id", "source")
    assert "id, source" in str(info.value)


def test_plain_request_names_every_required_attribute() -> None:
    with pytest.raises(MissingAttributesError) as info:
        parse_event({"content-type": "text/plain"}, b"hello")
    assert info.value.missing == ("id", "source", "specversion", "type")


def test_non_json_data_stays_bytes() -> None:
    event = parse_event({**BINARY, "content-type": "application/octet-stream"}, b"\xff\x00")
    assert event.get_data() == b"\xff\x00"


def test_invalid_extension_name_is_rejected() -> None:
    with pytest.raises(CloudEventError, match="a-b"):
        parse_event({**BINARY, "ce-a-b": "x"}, b"")


def test_structured_request_with_data_base64() -> None:
    body = json.dumps(
        {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data_base64": "aGk=", "myext": "v"}
    ).encode()
    event = parse_event({"content-type": STRUCTURED_CONTENT_TYPE + "; charset=utf-8"}, body)
    assert event.get_data() == b"hi"
    assert event["myext"] == "v"


def test_structured_missing_attributes() -> None:
    with pytest.raises(MissingAttributesError) as info:
        parse_event({"content-type": STRUCTURED_CONTENT_TYPE}, b'{"specversion": "1.0", "id": "1"}')
    assert info.value.missing == ("source", "type")


def test_batch_request() -> None:
    items = [{"specversion": "1.0", "id": str(i), "source": "s", "type": "t", "data": i} for i in range(3)]
    events = parse_request({"content-type": BATCH_CONTENT_TYPE}, json.dumps(items).encode())
    assert [e["id"] for e in events] == ["0", "1", "2"]
    assert [e.get_data() for e in events] == [0, 1, 2]
    with pytest.raises(CloudEventError):
        parse_event({"content-type": BATCH_CONTENT_TYPE}, json.dumps(items).encode())


def test_binary_round_trip_keeps_attributes_and_bytes() -> None:
    event = make_event(
        {
            "specversion": "1.0",
            "id": "1",
            "source": "s",
            "type": "t",
            "datacontenttype": "text/plain",
            "subject": "héllo wörld",
        },
        b"raw text",
    )
    headers, body = encode(event)
    assert headers["content-type"] == "text/plain"
    assert body == b"raw text"
    assert all(v.isascii() for v in headers.values())
    back = parse_event(headers, body)
    assert back.get_attributes() == event.get_attributes()
    assert back.get_data() == b"raw text"


def test_structured_round_trip() -> None:
    event = make_event({"specversion": "1.0", "id": "1", "source": "s", "type": "t"}, {"k": [1, 2]})
    headers, body = encode(event, "structured")
    assert headers["content-type"] == STRUCTURED_CONTENT_TYPE
    back = parse_event(headers, body)
    assert back.get_attributes() == event.get_attributes()
    assert back.get_data() == {"k": [1, 2]}


def test_binary_json_data_gets_json_content_type() -> None:
    event = make_event({"specversion": "1.0", "id": "1", "source": "s", "type": "t"}, {"k": 1})
    headers, body = encode(event)
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"k": 1}


def test_parsed_event_is_what_make_event_makes() -> None:
    """The parsers build events without the SDK's constructor: the same attributes, data and type as make_event."""
    binary = parse_event({**BINARY, "ce-ext1": "caf%C3%A9"}, b'{"a": [1]}')
    structured = parse_event(
        {"content-type": STRUCTURED_CONTENT_TYPE},
        b'{"specversion": "1.0", "id": "abc", "source": "/s", "type": "t", "data": {"a": 1}}',
    )
    for event in (binary, structured):
        made = make_event(dict(event.get_attributes()), event.get_data())
        assert type(event) is CloudEvent
        assert event == made and list(event) == list(made)
    assert binary["ext1"] == "café"
    binary["subject"] = "s"  # still an ordinary, mutable event
    del binary["ext1"]
    assert "subject" in binary and "ext1" not in binary


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 99 + b"]" * 99,  # as deep as data may go
        b"[" * 100 + b"]" * 100,  # one level too deep: kept as bytes
        b'{"a": "\\ud800"}',  # an escaped lone surrogate: kept as bytes
        b'["\xed\xa0\x80"]',  # an encoded one (json.loads lets it through): kept as bytes
        '{"a": "\ud800"}'.encode("utf-16", "surrogatepass"),  # UTF-16, byte order mark first
        '["\ud800"]'.encode("utf-16-le", "surrogatepass"),  # UTF-16 without one: zero bytes first
        b'{"a": "\\u00e9", "b": "\xed\x95\x9c"}',  # escapes and 0xED that are fine: the slow check says so
        b'{"message": "hello, wisp"}',
    ],
)
def test_json_data_that_cannot_travel_stays_bytes(body: bytes) -> None:
    """The quick look at the body (skipping the walk over the decoded value) never lets through what the walk
    would refuse."""
    from wisp.eventing.cloudevents import _json_problem, _json_surely_fine

    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return
    problem = _json_problem(value)
    if _json_surely_fine(body):
        assert problem is None
    event = parse_event(BINARY, body)
    assert event.get_data() == (body if problem else value)


@pytest.mark.parametrize("value", ["plain", "", "a b~!", "50%", "tab\there", "é", "\x7f", "line\nbreak", "\ud800"])
def test_binary_header_values_quoted_as_by_quote(value: str) -> None:
    """Values sent as they are only when percent-encoding would leave them unchanged."""
    from urllib.parse import quote

    from wisp.eventing.cloudevents import _HEADER_SAFE

    event = make_event({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "subject": value})
    headers, _ = encode(event)
    assert headers["ce-subject"] == quote(value, safe=_HEADER_SAFE, errors="replace")
