"""The CloudEvents codec under arbitrary requests: events, or CloudEventError (which callers answer with 400).

Binary, structured and batched modes get arbitrary headers and bodies. Whatever the codec accepts, it must
also be able to send on — in binary and in structured mode, as a broker or a dispatcher does — and read
back the same event: an event taken at the ingress but impossible to encode would be retried forever.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wisp.eventing.cloudevents import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    CloudEventError,
    encode,
    parse_request,
)

FUZZ = settings(
    max_examples=300,
    deadline=5000,  # generous under load: a blow-up (exponential backtracking, deep recursion) takes far longer
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ATTRIBUTES = ["id", "source", "specversion", "type", "subject", "time", "dataschema", "datacontenttype", "ext1",
              "data", "data_base64", "Bad", "with-dash", "", "é", "id\n"]  # fmt: skip
CONTENT_TYPES = [
    "application/json", "text/plain", STRUCTURED_CONTENT_TYPE, BATCH_CONTENT_TYPE, "text/json",
    f"{STRUCTURED_CONTENT_TYPE}; charset=utf-8", "application/xml", "application/vnd.x+json", "", ";", "\x00",
]  # fmt: skip

texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["1.0", "0.3", "2.0", "", "%", "%zz", "%0A", "%00", "a%20b", "\ud800", "caf%C3%A9", "%C3"]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=12,
)
structured = st.dictionaries(st.sampled_from(ATTRIBUTES), json_values, max_size=8)
valid_structured = st.fixed_dictionaries(
    {"specversion": st.sampled_from(["1.0", "0.3"]), "id": texts, "source": texts, "type": texts},
    optional={"subject": json_values, "time": json_values, "ext1": json_values, "data": json_values,
              "data_base64": json_values, "datacontenttype": st.sampled_from(CONTENT_TYPES)},
)  # fmt: skip


def _json_body(value: Any) -> bytes:
    return json.dumps(value).encode()  # Python's json writes NaN, lone surrogates: a sender could too


bodies = st.one_of(
    st.binary(max_size=64),
    st.one_of(structured, valid_structured, json_values).map(_json_body),
    st.lists(st.one_of(structured, valid_structured), max_size=3).map(_json_body),
    st.sampled_from([b"[" * 100_000, b'{"a":' * 50_000, b"\xff\xfe", b"null", b"1e999999", b"9" * 5000]),
)
header_names = st.one_of(st.sampled_from([f"ce-{a}" for a in ATTRIBUTES] + ["Ce-Id", "CE-TYPE"]), st.text(max_size=8))
headers = st.dictionaries(header_names, texts, max_size=8)
binary_headers = st.fixed_dictionaries(
    {"ce-id": texts, "ce-source": texts, "ce-specversion": st.sampled_from(["1.0", "0.3"]), "ce-type": texts},
    optional={"ce-subject": texts, "ce-time": texts, "ce-ext1": texts, "content-type": st.sampled_from(CONTENT_TYPES)},
)  # fmt: skip


def _forms(event: CloudEvent) -> None:
    """An accepted event goes out in both modes as valid HTTP, and comes back as the same event."""
    for fmt in ("binary", "structured"):
        out_headers, body = encode(event, fmt)  # type: ignore[arg-type]
        assert isinstance(body, bytes)
        for name, value in out_headers.items():
            assert name.isascii() and name == name.strip() and name, name
            assert value.isascii() and not any(c in value for c in "\r\n\x00"), (name, value)
        (again,) = parse_request(out_headers, body)
        # Binary mode carries every attribute as text; the encoder labels JSON data it sends untyped.
        sent = {name: _text(event[name]) for name in event}
        if "datacontenttype" not in sent and "datacontenttype" in again:
            sent["datacontenttype"] = again["datacontenttype"]
        assert {name: _text(again[name]) for name in again} == sent


def _text(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _check(request_headers: dict[str, str], body: bytes) -> None:
    try:
        events = parse_request(request_headers, body)
    except CloudEventError as exc:
        assert str(exc)
        return
    for event in events:
        _forms(event)


@FUZZ
@given(headers, bodies, st.sampled_from([*CONTENT_TYPES, None]))
def test_arbitrary_requests(request_headers: dict[str, str], body: bytes, content_type: str | None) -> None:
    if content_type is not None:
        request_headers = {**request_headers, "content-type": content_type}
    _check(request_headers, body)


@FUZZ
@given(binary_headers, bodies)
def test_binary_mode(request_headers: dict[str, str], body: bytes) -> None:
    _check(request_headers, body)


@FUZZ
@given(valid_structured)
def test_structured_mode(event: dict[str, Any]) -> None:
    _check({"content-type": STRUCTURED_CONTENT_TYPE}, _json_body(event))


@FUZZ
@given(st.lists(st.one_of(valid_structured, structured, json_values), max_size=4))
def test_batched_mode(events: list[Any]) -> None:
    _check({"content-type": BATCH_CONTENT_TYPE}, _json_body(events))


@FUZZ
@given(st.one_of(bodies, json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"))))
def test_quick_json_check_never_passes_what_the_walk_refuses(body: bytes) -> None:
    """decode_data skips the walk over decoded JSON when a look at the bytes shows it cannot find anything."""
    from wisp.eventing.cloudevents import _json_problem, _json_surely_fine

    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return
    if _json_surely_fine(body):
        assert _json_problem(value) is None
