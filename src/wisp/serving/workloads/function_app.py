"""ASGI applications that serve a user's function with the `http` or `cloudevent` signature.

The signatures are in architecture.md: runtime contract.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cloudevents.v1.conversion import to_binary
from cloudevents.v1.exceptions import GenericException
from cloudevents.v1.http import CloudEvent, from_http
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from wisp.serving.workloads.signatures import Signature, is_async

REQUIRED_ATTRIBUTES = ("id", "source", "specversion", "type")
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


class HandlerResultError(TypeError):
    """A handler returned something outside its signature's closed set of return types."""


def to_response(result: Any) -> Response:
    """Map an `http` handler's return value to a Response: Response, str, bytes, dict/list, (body, status)."""
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], int):
        response = to_response(result[0])
        response.status_code = result[1]
        return response
    if isinstance(result, str):
        # A page is the common case for a str that starts like HTML (the seed's homepage function).
        head = result.lstrip()[:15].lower()
        if head.startswith(("<!doctype html", "<html")):
            return HTMLResponse(result)
        return PlainTextResponse(result)
    if isinstance(result, bytes | bytearray | memoryview):
        return Response(bytes(result), media_type="application/octet-stream")
    if isinstance(result, dict | list):
        return JSONResponse(result)
    if result is None:
        return Response(status_code=204)
    raise HandlerResultError(
        f"an http function must return a Response, str, bytes, dict, list or (body, status); "
        f"got {type(result).__name__}"
    )


def missing_attributes(headers: Mapping[str, str], body: bytes) -> list[str]:
    """Required CloudEvent attributes absent from a binary- or structured-mode request.

    Checked before parsing: the SDK's CloudEvent invents an `id` when there is none.
    Raises ValueError for a structured body that is not a JSON object.
    """
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == BATCH:
        raise ValueError("batched CloudEvents are not accepted by a function; send binary or structured mode")
    if content_type == STRUCTURED:
        try:
            parsed = json.loads(body)
        except ValueError as e:
            raise ValueError(f"structured CloudEvent body is not JSON: {e}") from None
        if not isinstance(parsed, dict):
            raise ValueError("structured CloudEvent body must be a JSON object")
        return [a for a in REQUIRED_ATTRIBUTES if not parsed.get(a)]
    return [a for a in REQUIRED_ATTRIBUTES if not headers.get(f"ce-{a}")]


def event_response(result: Any) -> Response:
    """A cloudevent handler's reply: a CloudEvent in binary mode, or 202 with no body for None."""
    if result is None:
        return Response(status_code=202)
    if isinstance(result, CloudEvent):
        headers, body = to_binary(result)
        if "content-type" not in headers and result.data is not None:
            data = result.data
            is_raw = isinstance(data, bytes | bytearray)
            headers["content-type"] = "application/octet-stream" if is_raw else "application/json"
        return Response(body or b"", status_code=200, headers=headers)
    raise HandlerResultError(
        f"a cloudevent function must return a CloudEvent or None; got {type(result).__name__}"
    )


async def _lifespan(receive: Receive, send: Send) -> None:
    """Functions have no startup work; answer the lifespan protocol so servers that send it are happy."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _log_exception(what: str) -> None:
    # The instance's stderr is its log file: the traceback goes there, never into the response.
    print(f"wisp: {what}", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)


class _FunctionApp:
    """Shared plumbing: lifespan, sync handlers in the thread pool, exceptions → 500."""

    def __init__(self, handler: Callable[[Any], Any]) -> None:
        self.handler = handler
        self.is_async = is_async(handler)

    async def call(self, arg: Any) -> Any:
        if self.is_async:
            return await self.handler(arg)
        return await run_in_threadpool(self.handler, arg)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets: not part of a function's signature; the server closes the connection
        request = Request(scope, receive)
        if not self.is_async:
            # A sync handler cannot await the body; read it here so request.body() is cached.
            await request.body()
        try:
            response = await self.handle(request)
        except Exception:
            _log_exception(f"error handling {request.method} {request.url.path}")
            response = PlainTextResponse("Internal Server Error", status_code=500)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        raise NotImplementedError


class HttpFunction(_FunctionApp):
    """Serves `handle(request) -> Response | str | bytes | dict | list | (body, status)`."""

    async def handle(self, request: Request) -> Response:
        return to_response(await self.call(request))


class CloudEventFunction(_FunctionApp):
    """Serves `handle(event: CloudEvent) -> CloudEvent | None`; a request that is no CloudEvent gets 400."""

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            missing = missing_attributes(headers, body)
            if missing:
                return PlainTextResponse(
                    f"missing required CloudEvent attributes: {', '.join(missing)}", status_code=400
                )
            event = from_http(headers, body)
        except (ValueError, GenericException) as e:
            return PlainTextResponse(f"invalid CloudEvent: {e}", status_code=400)
        return event_response(await self.call(event))


def build_app(target: Any, signature: Signature) -> ASGIApp:
    """The ASGI app that serves `target` with the given signature."""
    if signature == "asgi":
        app: Callable[[Scope, Receive, Send], Awaitable[None]] = target
        return app
    if signature == "cloudevent":
        return CloudEventFunction(target)
    return HttpFunction(target)
