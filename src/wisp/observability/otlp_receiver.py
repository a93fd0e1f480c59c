"""OTLP/HTTP trace receiver: `POST /v1/traces` in protobuf or JSON, spans go into the SpanStore.

Apps point their standard exporter at the control API (`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:8001`),
which posts to `{endpoint}/v1/traces`. Responses follow the OTLP/HTTP spec: 200 with an
ExportTraceServiceResponse (in the request's encoding), `partialSuccess` when some spans were rejected,
400 with a google.rpc.Status for a malformed payload, 415 for other content types.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wisp.observability.otlp_codec import Decoded, decode_json, decode_protobuf
from wisp.observability.spans import SpanStore

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
DEFAULT_BODY_LIMIT = 16 * 1024 * 1024

# Told how many spans each export carried and how many were rejected (metrics); optional.
ReceiveObserver = Callable[[int, int], None]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def rpc_status(code: int, message: str) -> bytes:
    """A serialized google.rpc.Status {code = 1, message = 2}, written by hand: two fields do not warrant
    importing googleapis-common-protos, which has no type stubs."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


class _TooLarge(Exception):
    pass


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("", "identity"):
        data = body
    elif encoding == "gzip":
        data = gzip.decompress(body)
    elif encoding == "deflate":
        data = zlib.decompress(body)
    else:
        raise ValueError(f"unsupported Content-Encoding {encoding!r}")
    if len(data) > limit:
        raise _TooLarge
    return data


def _error(status: int, message: str, as_protobuf: bool) -> Response:
    if as_protobuf:
        return Response(rpc_status(3, message), status, media_type=PROTOBUF)
    return Response(json.dumps({"code": 3, "message": message}), status, media_type=JSON)


def _success(decoded: Decoded, as_protobuf: bool) -> Response:
    response = ExportTraceServiceResponse()
    message = "; ".join(decoded.errors)
    if decoded.rejected:
        response.partial_success.rejected_spans = decoded.rejected
        response.partial_success.error_message = message
    if as_protobuf:
        payload: bytes = response.SerializeToString()
        return Response(payload, 200, media_type=PROTOBUF)
    body: dict[str, object] = {}
    if decoded.rejected:
        body["partialSuccess"] = {"rejectedSpans": str(decoded.rejected), "errorMessage": message}
    return Response(json.dumps(body), 200, media_type=JSON)


def otlp_routes(
    store: SpanStore, body_limit: int = DEFAULT_BODY_LIMIT, observer: ReceiveObserver | None = None
) -> list[Route]:
    """Routes to mount on the control API's Starlette app (at its root, so the path is exactly /v1/traces)."""

    async def receive_traces(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        as_protobuf = content_type == PROTOBUF
        if not as_protobuf and content_type != JSON:
            return _error(415, f"Content-Type must be {PROTOBUF} or {JSON}, not {content_type or 'absent'!r}",
                          False)
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > body_limit:
                return _error(413, f"payload is larger than {body_limit} bytes", as_protobuf)
        encoding = request.headers.get("content-encoding", "").strip().lower()
        try:
            payload = _decompress(bytes(raw), encoding, body_limit)
        except _TooLarge:
            return _error(413, f"payload is larger than {body_limit} bytes once decompressed", as_protobuf)
        except (ValueError, OSError, zlib.error) as exc:
            return _error(400, f"cannot decompress the payload: {exc}", as_protobuf)
        try:
            decoded = decode_protobuf(payload) if as_protobuf else decode_json(json.loads(payload))
        except (ValueError, TypeError, AttributeError) as exc:
            return _error(400, f"malformed ExportTraceServiceRequest: {exc}", as_protobuf)
        if decoded.spans:
            store.add(decoded.spans)
        if observer is not None:
            observer(len(decoded.spans), decoded.rejected)
        return _success(decoded, as_protobuf)

    return [Route("/v1/traces", receive_traces, methods=["POST"])]
