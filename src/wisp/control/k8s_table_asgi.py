"""ASGI middleware: answer `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` (what `kubectl get` sends).

The API below it answers JSON as usual; a successful GET of a kind's collection or of one object is rewritten
into a Table (k8s_table.render_table). A watch (`?watch=1`) is rewritten event by event: each WatchEvent's
object becomes a one-row Table, as kube-apiserver sends them. Anything else (errors, logs, other paths,
clients that do not ask for a Table) passes through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wisp.api import kinds as k
from wisp.api.errors import UnknownKindError
from wisp.api.kinds import Kind
from wisp.control.k8s_table import INCLUDE_OBJECT_VALUES, IncludeObject, render_table
from wisp.store import json_text
from wisp.types import Clock

MAX_TABLE_SOURCE_BYTES = 256 * 1024 * 1024  # a list bigger than this is passed through as JSON
MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024


def wants_table(accept: str) -> bool:
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip() for p in part.split(";")[1:] if "=" in p}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return True
    return False


@dataclass(frozen=True)
class Target:
    kind: Kind
    version: str
    single: bool  # one object (GET .../{name}), not a collection


def target_of(path: str) -> Target | None:
    """The kind and version a resource path names, or None (discovery, subresources, other routes)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    if not 1 <= len(rest) <= 2:
        return None
    try:
        kind = k.for_path(group, version, rest[0])
    except UnknownKindError:
        return None
    return Target(kind, version, len(rest) == 2)


class TableNegotiation:
    def __init__(self, app: ASGIApp, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        headers = [(n, v) for n, v in scope["headers"]]
        accept = ", ".join(v.decode("latin-1") for n, v in headers if n == b"accept")
        target = target_of(scope["path"]) if wants_table(accept) else None
        if target is None:
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        include_value = (query.get("includeObject") or ["Metadata"])[0]
        include: IncludeObject = next((v for v in INCLUDE_OBJECT_VALUES if v == include_value), "Metadata")
        watching = (query.get("watch") or ["false"])[0].lower() in ("1", "true")
        # Below, the API answers plain JSON; uncompressed, so it can be read here.
        inner_headers = [(n, v) for n, v in headers if n not in (b"accept", b"accept-encoding")]
        inner_headers.append((b"accept", b"application/json"))
        inner_scope = {**scope, "headers": inner_headers}
        if watching:
            await self.app(inner_scope, receive, _WatchRewriter(send, target, include, self.clock))
        else:
            await self.app(inner_scope, receive, _BodyRewriter(send, target, include, self.clock))


def _set_header(headers: list[tuple[bytes, bytes]], name: bytes, value: bytes | None) -> list[tuple[bytes, bytes]]:
    kept = [(n, v) for n, v in headers if n.lower() != name]
    return kept if value is None else [*kept, (name, value)]


class _BodyRewriter:
    """Buffers a 200 JSON answer and sends it on as a Table; anything else goes through as it comes."""

    def __init__(self, send: Send, target: Target, include: IncludeObject, clock: Clock) -> None:
        self.send, self.target, self.include, self.clock = send, target, include, clock
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.passing = False

    async def __call__(self, message: Message) -> None:
        if self.passing:
            await self.send(message)
            return
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if message["status"] != 200 or not content_type.startswith(b"application/json"):
                self.passing = True
                await self.send(message)
                return
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        self.size += len(self.chunks[-1])
        if self.size > MAX_TABLE_SOURCE_BYTES:
            await self._flush_unchanged(message)
            return
        if message.get("more_body", False):
            return
        body = b"".join(self.chunks)
        table = self._table(body)
        out = body if table is None else json_text.dumps(table)
        headers = _set_header(list(self.start.get("headers", [])), b"content-length", str(len(out)).encode())
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": out, "more_body": False})

    async def _flush_unchanged(self, message: Message) -> None:
        assert self.start is not None
        self.passing = True
        await self.send(self.start)
        await self.send({"type": "http.response.body", "body": b"".join(self.chunks),
                         "more_body": message.get("more_body", False)})

    def _table(self, body: bytes) -> dict[str, Any] | None:
        try:  # orjson's speed: a 500-Service list decodes ~4x faster than with json, and this is kubectl get's path
            document = json_text.loads(body)
        except ValueError:
            return None
        if not isinstance(document, dict) or document.get("kind") == "Status":
            return None
        if self.target.single:
            items, metadata = [document], {"resourceVersion": document.get("metadata", {}).get("resourceVersion", "")}
        elif isinstance(document.get("items"), list):
            items, metadata = document["items"], document.get("metadata") or {}
        else:
            return None
        return render_table(self.target.kind, items, self.include, now=self.clock(), version=self.target.version,
                            list_metadata=metadata)


class _WatchRewriter:
    """Rewrites a newline-delimited stream of WatchEvents, each object → a one-row Table."""

    def __init__(self, send: Send, target: Target, include: IncludeObject, clock: Clock) -> None:
        self.send, self.target, self.include, self.clock = send, target, include, clock
        self.pending = b""
        self.passing = False

    async def __call__(self, message: Message) -> None:
        if self.passing:
            await self.send(message)
            return
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if message["status"] != 200 or not content_type.startswith(b"application/json"):
                self.passing = True
            else:  # the length changes with every event; the stream is chunked
                message = {**message, "headers": _set_header(list(message.get("headers", [])), b"content-length",
                                                               None)}
            await self.send(message)
            return
        if message["type"] != "http.response.body":
            await self.send(message)
            return
        data = self.pending + message.get("body", b"")
        lines = data.split(b"\n")
        self.pending = lines.pop()
        if len(self.pending) > MAX_WATCH_LINE_BYTES:  # not newline-delimited after all: stop rewriting
            lines.append(self.pending)
            self.pending = b""
            self.passing = True
        more = message.get("more_body", False)
        if not more and self.pending:
            lines.append(self.pending)
            self.pending = b""
        out = b"".join(self._event(line) + b"\n" for line in lines if line.strip())
        if out or not more:
            await self.send({"type": "http.response.body", "body": out, "more_body": more})

    def _event(self, line: bytes) -> bytes:
        if self.passing:
            return line
        try:
            event = json_text.loads(line)
        except ValueError:
            return line
        obj = event.get("object") if isinstance(event, dict) else None
        if not isinstance(obj, dict) or obj.get("kind") == "Status" or event.get("type") == "ERROR":
            return line
        if event.get("type") == "BOOKMARK":
            table: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                                     "metadata": {"resourceVersion": obj.get("metadata", {}).get("resourceVersion",
                                                                                                 "")},
                                     "columnDefinitions": [], "rows": []}
        else:
            table = render_table(self.target.kind, [obj], self.include, now=self.clock(), version=self.target.version,
                                 list_metadata={"resourceVersion": obj.get("metadata", {}).get("resourceVersion", "")})
        return json_text.dumps({**event, "object": table})
