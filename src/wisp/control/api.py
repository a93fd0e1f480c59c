"""The control API: Kubernetes-shaped JSON over HTTP for apply/get/delete, instances, logs and metrics.

Failures are answered as Kubernetes answers them, with a `Status`: a body that is not the object its path names
(path_match), one over the body limit (413, body_limit), and a store that cannot write: 507 InsufficientStorage
when the disk is full (Kubernetes has no such status; 507 is HTTP's "cannot store the representation", and
nothing is written), 500 InternalError with the store's reason otherwise.
"""

from __future__ import annotations

import copy
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from wisp.api import kinds as k
from wisp.api.errors import ManifestError, UnknownKindError
from wisp.api.kinds import Kind
from wisp.control.admission import admit, apply_manifests, warnings_for
from wisp.control.body_limit import DEFAULT_LIMIT, BodyLimit
from wisp.control.path_match import match_path
from wisp.control.refusal import Refused, bad_request, method_not_allowed
from wisp.control.secret_scrub import REDACTED, scrub
from wisp.serving.workloads.logs import MAX_TAIL_LINES
from wisp.store import Conflict, NotFound, Store, StoreError, StoreFull
from wisp.types import Resource

log = logging.getLogger("wisp.control")


@dataclass
class VirtualKinds:
    """Kinds computed from running state rather than stored (pods, kpa)."""

    list_pods: Callable[[str | None], list[Resource]]
    list_autoscalers: Callable[[str | None], list[Resource]]
    service_logs: Callable[[str, str, bool, int], AsyncIterator[str]]
    info: Callable[[], dict[str, Any]]
    metrics: Callable[[], tuple[bytes, str]]


def status_response(code: int, reason: str, message: str, causes: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": message,
                            "reason": reason, "code": code}
    if causes:
        body["details"] = {"causes": causes}
    return JSONResponse(body, status_code=code)


def redact(kind: Kind, resource: Resource) -> Resource:
    """Secrets leave the daemon with their keys but never their values."""
    if kind is not k.SECRET:
        return resource
    out = copy.deepcopy(resource)
    out["data"] = {key: REDACTED for key in {*out.get("data", {}), *out.get("stringData", {})}}
    out.pop("stringData", None)
    annotations = out.get("metadata", {}).get("annotations", {})
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return out


def _manifest_error(exc: ManifestError, items: list[Any]) -> JSONResponse:
    exc = scrub(exc, items)  # validators quote bad values; a Secret's must not be quoted back
    causes = [{"field": e.path, "message": e.message} for e in exc.errors]
    return status_response(422, "Invalid", str(exc), causes)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return JSONResponse(exc.status(), status_code=exc.code)


async def _store_full(request: Request, exc: Exception) -> Response:
    log.error("%s", exc)
    return status_response(507, "InsufficientStorage", str(exc))


async def _store_failed(request: Request, exc: Exception) -> Response:
    log.error("%s", exc)
    return status_response(500, "InternalError", str(exc))


# What an instance may do with the ingest token it is given instead of the API token: send its spans.
INGEST_PATHS = frozenset({("POST", "/v1/traces")})


class _TokenAuth(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str, ingest_token: str | None = None) -> None:
        super().__init__(app)
        self._expected = f"Bearer {token}".encode()
        self._ingest = f"Bearer {ingest_token}".encode() if ingest_token else None

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = request.headers.get("authorization", "").encode()
        allowed = hmac.compare_digest(given, self._expected) or (
            self._ingest is not None and (request.method, request.url.path) in INGEST_PATHS
            and hmac.compare_digest(given, self._ingest))
        if not allowed:
            return status_response(401, "Unauthorized", "a valid bearer token is required (WISP_TOKEN)")
        return await call_next(request)


def build_api(store: Store, virtual: VirtualKinds, token: str | None = None,
              extra_routes: list[Route] | None = None, body_limit: int = DEFAULT_LIMIT,
              ingest_token: str | None = None) -> Starlette:
    """`token` guards every route; `ingest_token` (what instances get, never the API token) only INGEST_PATHS."""
    async def apply(request: Request) -> Response:
        body = await _json(request)
        if isinstance(body, Response):
            return body
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return status_response(400, "BadRequest", 'body must be {"items": [resource, ...]}')
        try:
            results = apply_manifests(items, store)
        except ManifestError as exc:
            return _manifest_error(exc, items)
        return JSONResponse({"items": [
            {"kind": r.kind.kind, "group": r.kind.group, "plural": r.kind.plural, "namespace": r.namespace,
             "name": r.name, "action": r.action, "warnings": warnings_for(r.resource)} for r in results
        ]})

    async def delete_many(request: Request) -> Response:
        body = await _json(request)
        if isinstance(body, Response):
            return body
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return status_response(400, "BadRequest", 'body must be {"items": [resource, ...]}')
        keys = [_delete_key(index, item) for index, item in enumerate(items)]  # every item named, or nothing done
        deleted = store.delete_many(keys)
        return JSONResponse({"items": [
            {"kind": kind.kind, "group": kind.group, "plural": kind.plural, "namespace": namespace, "name": name,
             "action": "notfound" if gone is None else "deleted"}
            for (kind, namespace, name), gone in zip(keys, deleted, strict=True)
        ]})

    async def collection(request: Request) -> Response:
        kind = _kind(request)
        if isinstance(kind, Response):
            return kind
        namespace = request.path_params.get("namespace")
        if request.method == "POST":
            return await _create(request, kind, namespace)
        if kind is k.POD:
            items = virtual.list_pods(namespace)
        elif kind is k.POD_AUTOSCALER:
            items = virtual.list_autoscalers(namespace)
        else:
            items = [redact(kind, r) for r in store.list(kind, namespace)]
        return JSONResponse({"apiVersion": "v1", "kind": "List", "items": items,
                             "metadata": {"resourceVersion": ""}})

    async def _admitted_body(request: Request, kind: Kind, namespace: str | None,
                             name: str | None) -> Resource | Response:
        """The request's object, matched against its path, defaulted and validated; or the refusal."""
        body = await _json(request)
        if isinstance(body, Response):
            return body
        if not isinstance(body, dict):
            return status_response(400, "BadRequest", "body must be an object")
        body = match_path(kind, request.path_params["version"], body, namespace, name)
        try:
            [(admitted_kind, resource)] = admit([body], store)
        except ManifestError as exc:
            return _manifest_error(exc, [body])
        assert admitted_kind is kind, "match_path let through another kind"
        return resource

    async def _create(request: Request, kind: Kind, namespace: str | None) -> Response:
        if kind.virtual or (kind.namespaced and namespace is None):
            raise method_not_allowed()  # computed kinds, and the all-namespaces collection, take no objects
        resource = await _admitted_body(request, kind, namespace, None)
        if isinstance(resource, Response):
            return resource
        try:
            created = store.create(kind, resource)
        except Conflict as exc:
            return status_response(409, "AlreadyExists", str(exc))
        return JSONResponse(redact(kind, created), status_code=201)

    async def item(request: Request) -> Response:
        kind = _kind(request)
        if isinstance(kind, Response):
            return kind
        path_namespace = request.path_params.get("namespace")
        if kind.namespaced != (path_namespace is not None):
            return status_response(404, "NotFound", "the server could not find the requested resource")
        namespace = path_namespace or ""
        name = request.path_params["name"]
        if kind.virtual:
            if request.method != "GET":
                raise method_not_allowed()
            lister = virtual.list_pods if kind is k.POD else virtual.list_autoscalers
            found = [r for r in lister(namespace) if r["metadata"]["name"] == name]
            if not found:
                return status_response(404, "NotFound", f'{kind.plural} "{name}" not found')
            return JSONResponse(found[0])
        if request.method == "GET":
            resource = store.get(kind, namespace, name)
            if resource is None:
                return status_response(404, "NotFound", f'{kind.plural}.{kind.group} "{name}" not found'
                                       if kind.group else f'{kind.plural} "{name}" not found')
            return JSONResponse(redact(kind, resource))
        if request.method == "DELETE":
            try:
                deleted = store.delete(kind, namespace, name)
            except NotFound as exc:
                return status_response(404, "NotFound", str(exc))
            return JSONResponse(redact(kind, deleted))
        incoming = await _admitted_body(request, kind, path_namespace, name)  # PUT: replace
        if isinstance(incoming, Response):
            return incoming
        try:
            replaced = store.replace(kind, incoming)
        except NotFound as exc:
            return status_response(404, "NotFound", str(exc))
        except Conflict as exc:
            return status_response(409, "Conflict", str(exc))
        return JSONResponse(redact(kind, replaced))

    async def logs(request: Request) -> Response:
        namespace, service = request.path_params["namespace"], request.path_params["service"]
        follow = request.query_params.get("follow", "false").lower() in ("1", "true", "yes")
        try:
            # Bounded work per request, however many lines are asked for.
            tail = min(int(request.query_params.get("tailLines", "100")), MAX_TAIL_LINES)
        except ValueError:
            return status_response(400, "BadRequest", "tailLines must be an integer")
        if store.get(k.SERVICE, namespace, service) is None:
            return status_response(404, "NotFound", f'services.serving.knative.dev "{service}" not found')

        async def lines() -> AsyncIterator[bytes]:
            async for line in virtual.service_logs(namespace, service, follow, tail):
                yield (line + "\n").encode()

        return StreamingResponse(lines(), media_type="text/plain; charset=utf-8")

    async def info(request: Request) -> Response:
        return JSONResponse(virtual.info())

    async def metrics(request: Request) -> Response:
        payload, content_type = virtual.metrics()
        return Response(payload, media_type=content_type)

    async def healthz(request: Request) -> Response:
        return Response("ok\n", media_type="text/plain")

    methods = ["GET", "POST"]
    item_methods = ["GET", "PUT", "DELETE"]
    routes = [
        Route("/healthz", healthz), Route("/info", info), Route("/metrics", metrics),
        Route("/apply", apply, methods=["POST"]), Route("/delete", delete_many, methods=["POST"]),
        Route("/api/v1/namespaces/{namespace}/services/{service}/logs", logs),
        *(extra_routes or []),
        Route("/api/{version}/namespaces/{namespace}/{plural}", collection, methods=methods),
        Route("/api/{version}/namespaces/{namespace}/{plural}/{name}", item, methods=item_methods),
        Route("/api/{version}/{plural}", collection, methods=methods),
        Route("/api/{version}/{plural}/{name}", item, methods=item_methods),  # cluster-scoped (namespaces)
        Route("/apis/{group}/{version}/namespaces/{namespace}/{plural}", collection, methods=methods),
        Route("/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}", item, methods=item_methods),
        Route("/apis/{group}/{version}/{plural}", collection, methods=methods),
        Route("/apis/{group}/{version}/{plural}/{name}", item, methods=item_methods),
    ]
    # Authentication first (a stranger's body is not read at all), then the body limit for every route.
    middleware = [Middleware(_TokenAuth, token=token, ingest_token=ingest_token)] if token else []
    middleware.append(Middleware(BodyLimit, limit=body_limit))
    handlers = {Refused: _refused, StoreFull: _store_full, StoreError: _store_failed}
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)


def _kind(request: Request) -> Kind | Response:
    params = request.path_params
    try:
        return k.for_path(params.get("group", ""), params["version"], params["plural"])
    except UnknownKindError as exc:
        return status_response(404, "NotFound", str(exc))


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        return status_response(400, "BadRequest", f"body is not valid JSON: {exc}")
    except RecursionError:
        return status_response(400, "BadRequest", "body is not valid JSON: it nests too deeply")


def _delete_key(index: int, item: object) -> tuple[Kind, str, str]:
    """The object a `/delete` item names; Refused (before anything is deleted) when it names none."""
    if not isinstance(item, dict):
        raise bad_request(f"item {index}: must be an object")
    try:
        kind = k.for_manifest(str(item.get("apiVersion", "")), str(item.get("kind", "")))
    except UnknownKindError as exc:
        raise bad_request(f"item {index}: {exc}; nothing was deleted") from None
    meta = item.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise bad_request(f"item {index} ({kind.kind}): metadata.name is required; nothing was deleted")
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    if not kind.namespaced:
        return kind, "", name
    return kind, namespace if isinstance(namespace, str) and namespace else "default", name

