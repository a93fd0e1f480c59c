"""OTLP trace payloads ⇄ wisp spans: protobuf (`ExportTraceServiceRequest`) and OTLP/JSON.

OTLP/JSON is not protobuf's canonical JSON: ids are hex rather than base64, enums are integers, and
64-bit integers may come as strings. So the JSON side is decoded by hand.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from wisp.observability.spans import KINDS, STATUS_CODES, UNKNOWN_SERVICE, Span

_HEX = frozenset("0123456789abcdef")


@dataclass
class Decoded:
    spans: list[Span] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < 5:
            self.errors.append(reason)


def _hex_id(raw: str, length: int) -> str | None:
    text = raw.lower()
    if len(text) != length or not _HEX.issuperset(text) or text == "0" * length:
        return None
    return text


# --- protobuf -> spans -----------------------------------------------------------------------------------


def _any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()  # JSON-safe, as OTLP/JSON spells bytes
    return getattr(value, which)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in pairs}


def _enum_name(names: Sequence[str], value: int, default: str) -> str:
    return names[value] if 0 <= value < len(names) else default


def decode_protobuf(payload: bytes) -> Decoded:
    """Spans of a serialized ExportTraceServiceRequest; raises ValueError if it is malformed."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(payload)
    except Exception as exc:  # protobuf's DecodeError, whose module has no type stubs here
        raise ValueError(f"not a protobuf ExportTraceServiceRequest: {exc}") from exc
    out = Decoded()
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or UNKNOWN_SERVICE)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for ps in scope_spans.spans:
                trace_id = _hex_id(ps.trace_id.hex(), 32)
                span_id = _hex_id(ps.span_id.hex(), 16)
                if trace_id is None or span_id is None:
                    out.reject(f"span {ps.name!r}: invalid trace or span id")
                    continue
                out.spans.append(Span(
                    trace_id=trace_id, span_id=span_id,
                    parent_span_id=_hex_id(ps.parent_span_id.hex(), 16) if ps.parent_span_id else None,
                    name=ps.name, service=service,
                    start_ns=ps.start_time_unix_nano, end_ns=ps.end_time_unix_nano,
                    kind=_enum_name(KINDS, ps.kind, "UNSPECIFIED"),
                    attributes=_attributes(ps.attributes),
                    status_code=_enum_name(STATUS_CODES, ps.status.code, "UNSET"),
                    status_message=ps.status.message, scope=scope,
                ))
    return out


# --- OTLP/JSON -> spans ----------------------------------------------------------------------------------


def _json_any(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return None
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])  # int64 arrives as a string in OTLP/JSON
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "bytesValue" in value:
        return str(value["bytesValue"])  # already base64
    if "arrayValue" in value:
        return [_json_any(v) for v in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return _json_attributes((value["kvlistValue"] or {}).get("values", []))
    return None


def _json_attributes(pairs: Any) -> dict[str, Any]:
    if not isinstance(pairs, list):
        return {}
    return {str(kv.get("key", "")): _json_any(kv.get("value")) for kv in pairs if isinstance(kv, Mapping)}


def _json_enum(raw: Any, names: Sequence[str], prefix: str, default: str) -> str:
    if isinstance(raw, int):
        return _enum_name(names, raw, default)
    if isinstance(raw, str):  # some producers send the enum's name
        name = raw.removeprefix(prefix)
        return name if name in names else default
    return default


def decode_json(body: Any) -> Decoded:
    """Spans of an OTLP/JSON ExportTraceServiceRequest (already parsed with json.loads); raises ValueError if its
    shape is wrong."""
    if not isinstance(body, Mapping):
        raise ValueError("the body must be a JSON object")
    out = Decoded()
    for rs in body.get("resourceSpans") or []:
        if not isinstance(rs, Mapping):
            raise ValueError("resourceSpans[] must be objects")
        resource = _json_attributes((rs.get("resource") or {}).get("attributes"))
        service = str(resource.get("service.name") or UNKNOWN_SERVICE)
        # instrumentationLibrarySpans: the pre-1.0 name some older SDKs still send.
        for ss in (rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []):
            scope_obj = ss.get("scope") or ss.get("instrumentationLibrary") or {}
            scope = str(scope_obj.get("name", ""))
            for js in ss.get("spans") or []:
                _decode_json_span(js, service, scope, out)
    return out


def _decode_json_span(js: Any, service: str, scope: str, out: Decoded) -> None:
    if not isinstance(js, Mapping):
        out.reject("a span is not an object")
        return
    name = str(js.get("name", ""))
    trace_id = _hex_id(str(js.get("traceId", "")), 32)
    span_id = _hex_id(str(js.get("spanId", "")), 16)
    if trace_id is None or span_id is None:
        out.reject(f"span {name!r}: invalid traceId or spanId")
        return
    try:
        start_ns, end_ns = int(js.get("startTimeUnixNano", 0)), int(js.get("endTimeUnixNano", 0))
    except (TypeError, ValueError):
        out.reject(f"span {name!r}: start/end times must be integers")
        return
    parent = js.get("parentSpanId")
    status = js.get("status") or {}
    out.spans.append(Span(
        trace_id=trace_id, span_id=span_id,
        parent_span_id=_hex_id(str(parent), 16) if parent else None,
        name=name, service=service, start_ns=start_ns, end_ns=end_ns,
        kind=_json_enum(js.get("kind"), KINDS, "SPAN_KIND_", "UNSPECIFIED"),
        attributes=_json_attributes(js.get("attributes")),
        status_code=_json_enum(status.get("code"), STATUS_CODES, "STATUS_CODE_", "UNSET"),
        status_message=str(status.get("message", "")), scope=scope,
    ))


# --- spans -> protobuf (export) --------------------------------------------------------------------------


def _to_any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list | tuple):
        out = AnyValue()
        out.array_value.values.extend(_to_any(v) for v in value)
        return out
    if isinstance(value, Mapping):
        out = AnyValue()
        out.kvlist_value.values.extend(_to_kvs(value))
        return out
    return AnyValue(string_value="" if value is None else str(value))


def _to_kvs(attributes: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_to_any(value)) for key, value in attributes.items()]


def encode_protobuf(spans: Iterable[Span]) -> bytes:
    """A serialized ExportTraceServiceRequest: one ResourceSpans per service, one ScopeSpans per scope."""
    grouped: dict[str, dict[str, list[Span]]] = {}
    for span in spans:
        grouped.setdefault(span.service, {}).setdefault(span.scope, []).append(span)
    request = ExportTraceServiceRequest()
    for service, scopes in grouped.items():
        rs = ResourceSpans(resource=Resource(attributes=_to_kvs({"service.name": service})))
        for scope, members in scopes.items():
            ss = ScopeSpans(scope=InstrumentationScope(name=scope))
            ss.spans.extend(_to_proto_span(s) for s in members)
            rs.scope_spans.append(ss)
        request.resource_spans.append(rs)
    payload: bytes = request.SerializeToString()
    return payload


def _to_proto_span(span: Span) -> ProtoSpan:
    kind = KINDS.index(span.kind) if span.kind in KINDS else 0
    code = STATUS_CODES.index(span.status_code) if span.status_code in STATUS_CODES else 0
    return ProtoSpan(
        trace_id=bytes.fromhex(span.trace_id), span_id=bytes.fromhex(span.span_id),
        parent_span_id=bytes.fromhex(span.parent_span_id) if span.parent_span_id else b"",
        name=span.name, kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=span.start_ns, end_time_unix_nano=span.end_ns,
        attributes=_to_kvs(span.attributes),
        status=Status(code=code, message=span.status_message),  # type: ignore[arg-type]
    )
