"""Taking CloudEvents in over HTTP at an addressable's own endpoint (a channel, a KafkaChannel, a JobSink): the
body read within a limit, parsed, and the 4xx that says why when it is not an event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from wisp.eventing.cloudevents import CloudEvent, CloudEventError, parse_request

ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def received_events(scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend,
                          max_body: int) -> list[CloudEvent] | None:
    """The request's events (binary, structured or batched); None once a 413 or 400 has been answered."""
    body = await read_asgi_body(receive, max_body)
    if body is None:
        await respond_text(send, 413, f"request body exceeds {max_body} bytes")
        return None
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        events = parse_request(headers, body, names_lowered=True)
    except CloudEventError as exc:
        await respond_text(send, 400, str(exc))
        return None
    if not events:
        await respond_text(send, 400, "no CloudEvent in the request")
        return None
    return events


async def read_asgi_body(receive: ASGIReceive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond_text(send: ASGISend, status: int, text: str,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    head = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})
