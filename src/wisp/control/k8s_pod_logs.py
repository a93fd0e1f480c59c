"""`GET /api/v1/namespaces/{ns}/pods/{name}/log`: one instance's output, as `kubectl logs POD [-f]` reads it.

An instance (a Pod in wisp's API) writes to `{log_root}/{namespace}/{revision}/{pod}.log`. Query parameters
as the API server takes them: `follow`, `tailLines`, `limitBytes`, `container` (the one container is
`user-container`). `previous` is refused: wisp keeps no log of an earlier container in the same instance
(a restarted instance is a new one with its own name). A follow ends when the instance is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from wisp.api import kinds as k
from wisp.api.names import REVISION_LABEL
from wisp.serving.workloads.logs import MAX_TAIL_BYTES, MAX_TAIL_LINES, follow, tail_async
from wisp.store import Store
from wisp.types import Resource

CONTAINER = "user-container"
NODE_NAME = "localhost"  # every instance runs on this machine
GONE_CHECK_SECONDS = 1.0


def _status(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": message,
                         "reason": reason, "code": code}, status_code=code)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() in ("1", "true")


def _int_param(request: Request, name: str) -> int | JSONResponse | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return _status(400, "BadRequest", f"{name}: must be an integer, not {raw[:40]!r}")
    if value < 0:
        return _status(400, "BadRequest", f"{name}: must be >= 0")
    return value


def complete_pods(pods: list[Resource], store: Store) -> list[Resource]:
    """Pods as kubectl expects them: `spec.containers` (kubectl logs picks the container from it) with the
    Revision's image, and `spec.nodeName`. The input (wisp's own view of its instances) is not changed."""
    images: dict[tuple[str, str], str] = {}
    out: list[Resource] = []
    for pod in pods:
        meta = pod["metadata"]
        key = (meta.get("namespace", ""), meta.get("labels", {}).get(REVISION_LABEL, ""))
        if key not in images:
            revision = store.get(k.REVISION, *key)
            containers = (revision or {}).get("spec", {}).get("containers") or [{}]
            images[key] = str(containers[0].get("image", ""))
        spec = {"containers": [{"name": CONTAINER, "image": images[key]}], "nodeName": NODE_NAME,
                **pod.get("spec", {})}
        status = dict(pod.get("status", {}))
        running = status.get("phase") == "Running"
        # Fields the Kubernetes clients require of a container status (the Python client refuses it without).
        status["containerStatuses"] = [
            {"image": images[key], "imageID": "", "started": running,
             "state": {"running": {"startedAt": meta.get("creationTimestamp")}} if running else
             {"waiting": {"reason": str(status.get("phase") or "Pending")}}} | c
            for c in status.get("containerStatuses") or []]
        out.append({**pod, "spec": spec, "status": status})
    return out


def pod_log_routes(list_pods: Callable[[str | None], list[Resource]], log_root: Path,
                   gone_check: float = GONE_CHECK_SECONDS) -> list[Route]:
    def find(namespace: str, name: str) -> Resource | None:
        return next((p for p in list_pods(namespace) if p["metadata"]["name"] == name), None)

    async def pod_log(request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        container = request.query_params.get("container", "")
        if container not in ("", CONTAINER):
            return _status(400, "BadRequest",
                           f"container {container} is not valid for pod {name}: its one container is {CONTAINER}")
        if _flag(request, "previous"):
            return _status(400, "BadRequest", "previous: wisp keeps no log of an earlier container in an "
                                              "instance (a restarted instance is a new pod)")
        tail = _int_param(request, "tailLines")
        limit = _int_param(request, "limitBytes")
        for value in (tail, limit):
            if isinstance(value, Response):
                return value
        assert not isinstance(tail, Response) and not isinstance(limit, Response)
        pod = find(namespace, name)
        if pod is None:
            return _status(404, "NotFound", f'pods "{name}" not found')
        revision = pod["metadata"].get("labels", {}).get(REVISION_LABEL, "")
        path = log_root / namespace / revision / f"{name}.log"
        lines = min(MAX_TAIL_LINES if tail is None else tail, MAX_TAIL_LINES)
        following = _flag(request, "follow")

        async def body() -> AsyncIterator[bytes]:
            budget = MAX_TAIL_BYTES if limit is None else min(limit, MAX_TAIL_BYTES)
            sent = 0
            async for line in _lines(path, lines, following, lambda: find(namespace, name) is not None, gone_check):
                data = (line + "\n").encode()
                if limit is not None and sent + len(data) > budget:
                    yield data[: budget - sent]
                    return
                sent += len(data)
                yield data

        return StreamingResponse(body(), media_type="text/plain")

    return [Route("/api/v1/namespaces/{namespace}/pods/{name}/log", pod_log, methods=["GET"])]


async def _lines(path: Path, lines: int, following: bool, alive: Callable[[], bool],
                 gone_check: float) -> AsyncIterator[str]:
    if not following:
        for line in await tail_async(path, lines):
            yield line
        return
    stream = follow(path, lines=lines)
    pending: asyncio.Task[str] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(stream))
            done, _ = await asyncio.wait({pending}, timeout=gone_check)
            if done:
                try:
                    line = pending.result()
                except StopAsyncIteration:
                    return
                pending = None
                yield line
            elif not alive():
                return
    finally:
        if pending is not None:  # the generator is running in it: stop that before closing the generator
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]
