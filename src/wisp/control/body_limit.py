"""A request body limit for the control API, enforced while the body arrives (never buffering past it).

413 RequestEntityTooLarge with the API server's message (`Request entity too large: limit is 3145728`): a
declared Content-Length over the limit is refused before a byte of the body is read; a chunked body is counted
as it arrives and refused as soon as it passes the limit. The connection stays open and the server discards the
rest of the body as it comes: closing it under a client still sending would reset the connection and lose the
answer before most clients read it (they send the whole body first).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wisp.control.refusal import Refused

# The Kubernetes API server's default (--max-request-body-bytes is 3 MiB for most requests).
DEFAULT_LIMIT = 3 * 1024 * 1024


def too_large(limit: int) -> Refused:
    return Refused(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = DEFAULT_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _answer(send, too_large(self.limit))
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised inside the endpoint's read; the API's handler for Refused answers it.
                    raise too_large(self.limit)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send: Send, refused: Refused) -> None:
    body = refused.body()
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json"),
                                          (b"content-length", str(len(body)).encode())]
    start: dict[str, Any] = {"type": "http.response.start", "status": refused.code, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
