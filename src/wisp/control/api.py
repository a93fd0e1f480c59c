"""The control API: Kubernetes-shaped JSON over HTTP for apply/get/delete, instances, logs and metrics.

Failures are answered as Kubernetes answers them, with a `Status`: a body that is not the object its path names
(path_match), one over the body limit (413, body_limit), and a store that cannot write: 507 InsufficientStorage
when the disk is full (Kubernetes has no such status; 507 is HTTP's "cannot store the representation", and
nothing is written), 500 InternalError with the store's reason otherwise.
"""

from __future__ import annotations

import hmac
import logging
import random
import time
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
from wisp.control.admission import apply_manifests, warnings_for
from wisp.control.body_limit import DEFAULT_LIMIT, BodyLimit
from wisp.control.k8s_verbs import Verbs, json_body, redact
from wisp.control.k8s_watch import WatchSettings
from wisp.control.refusal import Refused, bad_request
from wisp.control.secret_scrub import scrub
from wisp.serving.workloads.logs import MAX_TAIL_LINES
from wisp.store import Store, StoreError, StoreFull
from wisp.types import Clock, Resource

log = logging.getLogger("wisp.control")
__all__ = ["VirtualKinds", "build_api", "redact", "status_response"]


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
              ingest_token: str | None = None, clock: Clock = time.time, rng: random.Random | None = None,
              watch_settings: WatchSettings | None = None) -> Starlette:
    """`token` guards every route; `ingest_token` (what instances get, never the API token) only INGEST_PATHS.
    `clock` stamps managedFields, `rng` draws generateName suffixes, `watch_settings` bound watches."""
    def list_virtual(kind: Kind, namespace: str | None) -> list[Resource]:
        return virtual.list_pods(namespace) if kind is k.POD else virtual.list_autoscalers(namespace)

    verbs = Verbs(store, list_virtual, clock, rng, watch_settings)

    async def apply(request: Request) -> Response:
        items = await _items(request)
        try:
            results = apply_manifests(items, store)
        except ManifestError as exc:
            return _manifest_error(exc, items)
        return JSONResponse({"items": [
            {"kind": r.kind.kind, "group": r.kind.group, "plural": r.kind.plural, "namespace": r.namespace,
             "name": r.name, "action": r.action, "warnings": warnings_for(r.resource)} for r in results
        ]})

    async def delete_many(request: Request) -> Response:
        items = await _items(request)
        keys = [_delete_key(index, item) for index, item in enumerate(items)]  # every item named, or nothing done
        deleted = store.delete_many(keys)
        return JSONResponse({"items": [
            {"kind": kind.kind, "group": kind.group, "plural": kind.plural, "namespace": namespace, "name": name,
             "action": "notfound" if gone is None else "deleted"}
            for (kind, namespace, name), gone in zip(keys, deleted, strict=True)
        ]})

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

    methods = ["GET", "POST", "DELETE"]
    item_methods = ["GET", "PUT", "PATCH", "DELETE"]
    status_methods = ["GET", "PUT", "PATCH"]
    collection, item, status = verbs.collection, verbs.item, verbs.status
    routes = [
        Route("/healthz", healthz), Route("/info", info), Route("/metrics", metrics),
        Route("/apply", apply, methods=["POST"]), Route("/delete", delete_many, methods=["POST"]),
        Route("/api/v1/namespaces/{namespace}/services/{service}/logs", logs),
        *(extra_routes or []),
        Route("/api/{version}/namespaces/{namespace}/{plural}/{name}/status", status, methods=status_methods),
        Route("/api/{version}/{plural}/{name}/status", status, methods=status_methods),  # before the next
        Route("/api/{version}/namespaces/{namespace}/{plural}", collection, methods=methods),
        Route("/api/{version}/namespaces/{namespace}/{plural}/{name}", item, methods=item_methods),
        Route("/api/{version}/{plural}", collection, methods=methods),
        Route("/api/{version}/{plural}/{name}", item, methods=item_methods),  # cluster-scoped (namespaces)
        Route("/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}/status", status,
              methods=status_methods),
        Route("/apis/{group}/{version}/{plural}/{name}/status", status, methods=status_methods),
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


async def _items(request: Request) -> list[Any]:
    """The `{"items": [...]}` body of /apply and /delete; Refused (400) saying why when it is not one."""
    body = await json_body(request)
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise bad_request('body must be {"items": [resource, ...]}')
    return items


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

