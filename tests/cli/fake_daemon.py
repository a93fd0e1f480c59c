"""A small real HTTP server speaking the control API contract with canned objects, for CLI tests.

It also plays the ingress (for `wisp send`): `/info` points the ingress at the same server.
"""

from __future__ import annotations

import copy
import socket
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from wisp.api import kinds
from wisp.api.errors import UnknownKindError
from wisp.api.kinds import Kind
from wisp.cli.render import resource_ref
from wisp.types import Resource


def status(code: int, reason: str, message: str, causes: Iterable[tuple[str, str]] = ()) -> JSONResponse:
    body: Resource = {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    found = [{"field": f, "message": m} for f, m in causes]
    if found:
        body["details"] = {"causes": found}
    return JSONResponse(body, status_code=code)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeDaemon:
    """Objects keyed by (plural, namespace, name); every request is recorded."""

    objects: dict[tuple[str, str, str], Resource] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    log_text: str = ""
    # apply answers 422 with these causes when a resource named "invalid" is applied
    invalid_causes: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    def add(self, *resources: Resource) -> None:
        for obj in resources:
            kind = kinds.lookup(obj["kind"])
            meta = obj["metadata"]
            self.objects[(kind.plural, meta.get("namespace", ""), meta["name"])] = obj

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    # -- the ASGI side -------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "DELETE"])])

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        self.requests.append(
            Recorded(
                request.method,
                path,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        if path == "/info":
            return JSONResponse({"ingress": self.url, "domain": "localhost", "version": "test"})
        if path == "/apply" and request.method == "POST":
            return self._apply((await request.json())["items"])
        if path == "/delete" and request.method == "POST":
            return self._delete_many((await request.json())["items"])
        if path.endswith("/logs"):
            return StreamingResponse(self._log_chunks(), media_type="text/plain")
        if request.method == "POST":  # the broker ingress: /{namespace}/{broker}
            return Response(status_code=202)
        return self._rest(request.method, path)

    async def _log_chunks(self) -> AsyncIterator[bytes]:
        for line in self.log_text.splitlines(keepends=True):
            yield line.encode()

    def _apply(self, items: list[Resource]) -> Response:
        if any(i["metadata"]["name"] == "invalid" for i in items):
            return status(422, "Invalid", "the manifest is invalid", self.invalid_causes)
        results = []
        for item in items:
            kind = kinds.lookup(item["kind"])
            key = (kind.plural, item["metadata"].get("namespace", "default"), item["metadata"]["name"])
            action = (
                "unchanged"
                if self.objects.get(key) == item
                else "configured"
                if key in self.objects
                else "created"
            )
            self.objects[key] = item
            results.append({"kind": item["kind"], "namespace": key[1], "name": key[2], "action": action})
        return JSONResponse({"items": results})

    def _delete_many(self, items: list[Resource]) -> Response:
        results = []
        for item in items:
            kind = kinds.lookup(item["kind"])
            key = (kind.plural, item["metadata"].get("namespace", "default"), item["metadata"]["name"])
            found = self.objects.pop(key, None)
            results.append(
                {
                    "kind": item["kind"],
                    "namespace": key[1],
                    "name": key[2],
                    "action": "deleted" if found else "not found",
                }
            )
        return JSONResponse({"items": results})

    def _rest(self, method: str, path: str) -> Response:
        parts = path.strip("/").split("/")
        try:
            if parts[0] == "api":
                group, version, rest = "", parts[1], parts[2:]
            else:
                group, version, rest = parts[1], parts[2], parts[3:]
            namespace = None
            if rest[0] == "namespaces" and len(rest) > 2:
                namespace, rest = rest[1], rest[2:]
            kind = kinds.for_path(group, version, rest[0])
        except (IndexError, UnknownKindError):
            return status(404, "NotFound", f"the server could not find the requested resource ({path})")
        if len(rest) == 1 and method == "GET":
            items = [
                copy.deepcopy(o)
                for (plural, ns, _), o in sorted(self.objects.items())
                if plural == kind.plural and (namespace is None or ns == namespace)
            ]
            return JSONResponse({"apiVersion": "v1", "kind": "List", "items": items})
        return self._one(method, kind, namespace or "", rest[1])

    def _one(self, method: str, kind: Kind, namespace: str, name: str) -> Response:
        key = (kind.plural, namespace, name)
        if key not in self.objects:
            return status(
                404, "NotFound", f'{kind.plural}{"." + kind.group if kind.group else ""} "{name}" not found'
            )
        if method == "DELETE":
            del self.objects[key]
            return JSONResponse(
                {
                    "apiVersion": "v1",
                    "kind": "Status",
                    "status": "Success",
                    "details": {"name": name, "kind": resource_ref(kind)},
                }
            )
        return JSONResponse(self.objects[key])


class ServerThread:
    """uvicorn on a pre-bound loopback socket: requests queue in the backlog until the loop serves them."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
