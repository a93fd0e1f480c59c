"""The console's routes on the control API: pages, live feeds (server-sent events), and the few JSON reads the
pages need beyond the API's own. Mutations are not here: the pages send them to the API (`POST /apply`,
`DELETE .../{name}`) like the CLI does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from wisp.api import kinds as k
from wisp.api.bounded_yaml import MAX_TEXT_BYTES
from wisp.api.errors import ManifestError, UnknownKindError
from wisp.console.apply_text import parse_manifests
from wisp.console.live import LiveHub, TooManyClients, Topic
from wisp.console.static_files import StaticFiles
from wisp.control.api import redact, status_response

PAGES = {"/": "services.html", "/ui/services/{namespace}/{name}": "service.html", "/ui/eventing": "eventing.html",
         "/ui/traces": "traces.html", "/ui/objects": "objects.html"}
MAX_LISTED = 2000  # objects of one kind listed on the objects page


def console_routes(hub: LiveHub, static: StaticFiles) -> list[Route]:
    store = hub.sources.store

    def page(name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            return static.response(name, request)  # with the ETag check: an unchanged page is a 304
        return endpoint

    def feed(topic: Topic) -> Response:
        try:
            client, first = hub.subscribe(topic)
        except TooManyClients as exc:
            return status_response(503, "ServiceUnavailable", str(exc))

        async def events() -> AsyncIterator[bytes]:
            try:
                async for chunk in client.stream(first):
                    yield chunk
            finally:
                hub.unsubscribe(client)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def services_feed(request: Request) -> Response:
        return feed(("services",))

    async def service_feed(request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        if hub.service(namespace, name) is None:
            return status_response(404, "NotFound", f'services.serving.knative.dev "{name}" not found')
        return feed(("service", namespace, name))

    async def eventing_feed(request: Request) -> Response:
        return feed(("eventing",))

    async def kinds(request: Request) -> Response:
        return JSONResponse({"items": [
            {"kind": kind.kind, "group": kind.group, "version": kind.version, "plural": kind.plural,
             "namespaced": kind.namespaced, "virtual": kind.virtual, "apiVersion": kind.api_version}
            for kind in k.ALL_KINDS]})

    def kind_of(request: Request) -> k.Kind:
        plural = request.query_params.get("plural", "")
        found = [kind for kind in k.ALL_KINDS if kind.plural == plural]
        if not found:
            raise UnknownKindError(f"unknown kind {plural!r}")
        return found[0]

    async def objects(request: Request) -> Response:
        try:
            kind = kind_of(request)
        except UnknownKindError as exc:
            return status_response(404, "NotFound", str(exc))
        namespace = request.query_params.get("namespace") or None
        if kind is k.POD:
            items = hub.sources.pods(namespace)
        elif kind.virtual:
            items = []
        else:
            items = store.list(kind, namespace)
        return JSONResponse({"items": [
            {"namespace": r["metadata"].get("namespace", ""), "name": r["metadata"]["name"],
             "created": r["metadata"].get("creationTimestamp", "")} for r in items[:MAX_LISTED]],
            "truncated": len(items) > MAX_LISTED})

    async def object_yaml(request: Request) -> Response:
        try:
            kind = kind_of(request)
        except UnknownKindError as exc:
            return status_response(404, "NotFound", str(exc))
        namespace = request.query_params.get("namespace", "") if kind.namespaced else ""
        name = request.query_params.get("name", "")
        if kind is k.POD:
            found = next((p for p in hub.sources.pods(namespace) if p["metadata"]["name"] == name), None)
        else:
            found = None if kind.virtual else store.get(kind, namespace, name)
        if found is None:
            return status_response(404, "NotFound", f'{kind.plural} "{name}" not found')
        text = yaml.safe_dump(redact(kind, found), sort_keys=False, allow_unicode=True, width=120)
        return JSONResponse({"yaml": text, "path": kind.collection_path(namespace or None) + "/" + name})

    async def parse(request: Request) -> Response:
        """YAML → the `{"items": [...]}` body of `POST /apply`, read as `wisp apply -f` reads a file."""
        raw = await request.body()
        if len(raw) > MAX_TEXT_BYTES:
            return status_response(413, "RequestEntityTooLarge", f"a manifest is at most {MAX_TEXT_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return status_response(400, "BadRequest", f"not UTF-8 text: {exc.reason} at byte {exc.start}")
        try:
            items = parse_manifests(text)
        except ManifestError as exc:
            causes = [{"field": e.path, "message": e.message} for e in exc.errors]
            return status_response(422, "Invalid", str(exc), causes)
        return JSONResponse({"items": items})

    routes = [Route(path, page(name), methods=["GET"]) for path, name in PAGES.items()]
    routes += [
        Route("/ui/feed/services", services_feed, methods=["GET"]),
        Route("/ui/feed/services/{namespace}/{name}", service_feed, methods=["GET"]),
        Route("/ui/feed/eventing", eventing_feed, methods=["GET"]),
        Route("/ui/api/kinds", kinds, methods=["GET"]),
        Route("/ui/api/objects", objects, methods=["GET"]),
        Route("/ui/api/yaml", object_yaml, methods=["GET"]),
        Route("/ui/api/parse", parse, methods=["POST"]),
    ]
    return routes
