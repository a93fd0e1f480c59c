"""One gRPC health check (grpc.health.v1.Health/Check) over h2c, as the kubelet's grpc probe makes it: SERVING
is a pass; any other status, a gRPC error or no answer within the timeout is a failure. Spoken with `h2` directly
(the message is two protobuf fields, written and read by hand) so wisp needs no gRPC runtime."""

from __future__ import annotations

import asyncio
import contextlib

import h2.config
import h2.connection
import h2.events
import h2.exceptions

SERVING = 1  # grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING
MAX_SERVICE = 1024  # bytes of the service name (a Kubernetes probe's service is a short name)
MAX_ANSWER = 4096


def _request(service: str) -> bytes:
    """The gRPC message: a HealthCheckRequest with field 1 (service) when set, behind its 5-byte prefix."""
    name = service.encode()[:MAX_SERVICE]
    body = b"" if not name else b"\x0a" + _varint(len(name)) + name
    return b"\x00" + len(body).to_bytes(4, "big") + body


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def serving_status(message: bytes) -> int | None:
    """Field 1 (status, a varint) of a HealthCheckResponse after the 5-byte gRPC prefix; None if absent."""
    body, i = message[5:], 0
    while i < len(body):
        key = body[i]
        i += 1
        if key == 0x08:  # field 1, varint
            value, shift = 0, 0
            while i < len(body):
                byte = body[i]
                i += 1
                value |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    return value
            return None
        return None  # an unknown field first: not a response this check understands
    return None


async def grpc_health_check(port: int, service: str, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            return await _check(port, service)
    except (OSError, TimeoutError, h2.exceptions.H2Error):
        return False


async def _check(port: int, service: str) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", "/grpc.health.v1.Health/Check"),
                                   (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
                                   ("te", "trailers"), ("user-agent", "wisp-probe")])
        conn.send_data(stream, _request(service), end_stream=True)
        writer.write(conn.data_to_send())
        await writer.drain()
        answer, status = bytearray(), ""
        while True:
            data = await reader.read(65536)
            if not data:
                return False
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                    answer += event.data[: MAX_ANSWER - len(answer)]
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    for name, value in event.headers or []:
                        if name in ("grpc-status", b"grpc-status"):
                            status = value.decode() if isinstance(value, bytes) else str(value)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                    return status == "0" and serving_status(bytes(answer)) == SERVING
                elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    return False
            writer.write(conn.data_to_send())
            await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
