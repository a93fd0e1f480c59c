"""Spans as Zipkin v2 JSON (`POST /api/v2/spans`), for `config-tracing`'s `backend: zipkin`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wisp.observability.spans import Span

_KINDS = {"SERVER": "SERVER", "CLIENT": "CLIENT", "PRODUCER": "PRODUCER", "CONSUMER": "CONSUMER"}


def _tag(value: Any) -> str:
    # Zipkin tags are strings only.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def to_zipkin(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": span.trace_id,
        "id": span.span_id,
        "name": span.name,
        "timestamp": span.start_ns // 1000,  # microseconds since the epoch
        "duration": max(1, span.duration_ns // 1000),  # Zipkin takes 0 as "unknown"
        "localEndpoint": {"serviceName": span.service},
        "tags": {str(k): _tag(v) for k, v in span.attributes.items()},
    }
    if span.parent_span_id:
        out["parentId"] = span.parent_span_id
    kind = _KINDS.get(span.kind)
    if kind is not None:
        out["kind"] = kind
    if span.status_code == "ERROR":
        out["tags"]["error"] = span.status_message or "true"
    return out


def encode_zipkin(spans: Sequence[Span]) -> bytes:
    return json.dumps([to_zipkin(s) for s in spans], separators=(",", ":")).encode()
