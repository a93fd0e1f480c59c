"""Read side of the span store for the control API and console: `GET /traces` and `GET /traces/{trace_id}`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.observability.spans import SpanStore

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def _status(code: int, reason: str, message: str) -> JSONResponse:
    # The control API's Kubernetes-style Status body, so the CLI renders errors the same way.
    return JSONResponse({"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": message,
                         "reason": reason, "code": code}, status_code=code)


def trace_routes(store: SpanStore) -> list[Route]:
    """`GET /traces?service=NAME&limit=N[&spans=false]` → {"items": [trace...]} newest first;
    `GET /traces/{trace_id}` → one trace with its spans ordered by start time."""

    async def list_traces(request: Request) -> Response:
        raw_limit = request.query_params.get("limit", str(DEFAULT_LIMIT))
        try:
            limit = int(raw_limit)
        except ValueError:
            return _status(400, "BadRequest", f"limit must be an integer, not {raw_limit!r}")
        if limit < 1:
            return _status(400, "BadRequest", "limit must be >= 1")
        limit = min(limit, MAX_LIMIT)
        service = request.query_params.get("service") or None
        with_spans = request.query_params.get("spans", "true").lower() not in ("0", "false", "no")
        items = [t.to_json(include_spans=with_spans) for t in store.traces(service, limit)]
        return JSONResponse({"items": items, "services": store.services()})

    async def get_trace(request: Request) -> Response:
        trace_id = request.path_params["trace_id"]
        trace = store.trace(trace_id)
        if trace is None:
            return _status(404, "NotFound", f'trace "{trace_id}" not found (it may have been evicted)')
        return JSONResponse(trace.to_json())

    return [Route("/traces", list_traces, methods=["GET"]),
            Route("/traces/{trace_id}", get_trace, methods=["GET"])]
