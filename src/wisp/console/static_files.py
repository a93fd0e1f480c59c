"""The console's pages, script, styles and vendored libraries, read once from the package and served by name."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import Response

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# No inline script, no other origin: a bug that lets user text become markup still cannot run code.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
SECURITY_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff",
                    "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def _load() -> dict[str, StaticFile]:
    root = files("wisp.console") / "static"
    out: dict[str, StaticFile] = {}

    def walk(node: object, prefix: str) -> None:
        for child in node.iterdir():  # type: ignore[attr-defined]
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, name + "/")
                continue
            suffix = "." + child.name.rsplit(".", 1)[-1] if "." in child.name else ""
            body = child.read_bytes()
            out[name] = StaticFile(body, _TYPES.get(suffix, "text/plain; charset=utf-8"),
                                   '"' + hashlib.sha256(body).hexdigest()[:20] + '"')

    walk(root, "")
    return out


class StaticFiles:
    """The files under console/static (nothing else), with ETags: served by the console's gate, in front of every
    route, for `GET /ui/static/{name}`, and for the pages."""

    def __init__(self) -> None:
        self.files = _load()

    def response(self, name: str, request: Request | None = None) -> Response:
        found = self.files.get(name)
        if found is None:
            return Response("not found\n", status_code=404, media_type="text/plain")
        headers = {"etag": found.etag, "cache-control": "no-cache", **SECURITY_HEADERS}
        if request is not None and request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type=found.content_type, headers=headers)
