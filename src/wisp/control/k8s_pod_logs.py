"""`GET /api/v1/namespaces/{ns}/pods/{name}/log`: one instance's output, as `kubectl logs POD [-f]` reads it.

An instance (a Pod in wisp's API) writes to `{log_root}/{namespace}/{revision}/{pod}.log`. Query parameters
as the API server takes them: `follow`, `tailLines`, `limitBytes`, `container` (the one container is
`user-container`). `previous` is refused: wisp keeps no log of an earlier container in the same instance
(a restarted instance is a new one with its own name). A follow ends when the instance is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from wisp.api import kinds as k
from wisp.api.names import REVISION_LABEL
from wisp.serving.workloads.logs import (
    FOLLOW_CHUNK,
    MAX_TAIL_BYTES,
    MAX_TAIL_LINES,
    file_size,
    read_at,
    tail_async,
)
from wisp.store import Store
from wisp.types import Resource

CONTAINER = "user-container"
NODE_NAME = "localhost"  # every instance runs on this machine
POLL_SECONDS = 0.25  # a log file has no change event to wait for: polled, as `tail -F` does


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
                   poll: float = POLL_SECONDS, closing: Callable[[], bool] = lambda: False) -> list[Route]:
    """`closing` true: the daemon is stopping, and follows end (after what their instance wrote last)."""
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
            async for line in _lines(path, lines, following,
                                     lambda: not closing() and find(namespace, name) is not None, poll):
                data = (line + "\n").encode()
                if limit is not None and sent + len(data) > budget:
                    yield data[: budget - sent]
                    return
                sent += len(data)
                yield data

        return StreamingResponse(body(), media_type="text/plain")

    return [Route("/api/v1/namespaces/{namespace}/pods/{name}/log", pod_log, methods=["GET"])]


async def _lines(path: Path, lines: int, following: bool, alive: Callable[[], bool],
                 poll: float) -> AsyncIterator[str]:
    """The last `lines` lines; when following, then each new line until the instance is gone, and then what it
    wrote last (read once more after it is gone, so no final line is lost). A file that shrank was rotated:
    read again from its start, like `tail -F`."""
    if not following:
        for line in await tail_async(path, lines):
            yield line
        return
    # The tail is read up to a point, and the follow goes on from exactly there: no line twice, none lost.
    offset = file_size(path)
    tail, partial = await asyncio.to_thread(_tail_before, path, lines, offset)
    for line in tail:
        yield line
    while True:
        gone = not alive()
        size = file_size(path)
        if size < offset:
            offset, partial = 0, b""
        while size > offset:
            chunk = await asyncio.to_thread(read_at, path, offset, min(size - offset, FOLLOW_CHUNK))
            if not chunk:
                break
            offset += len(chunk)
            *complete, partial = (partial + chunk).split(b"\n")
            if len(partial) >= FOLLOW_CHUNK:  # a line longer than a chunk goes on in pieces
                complete.append(partial)
                partial = b""
            for raw in complete:
                yield raw.decode("utf-8", errors="replace")
        if gone:
            if partial:
                yield partial.decode("utf-8", errors="replace")
            return
        await asyncio.sleep(poll)


def _tail_before(path: Path, lines: int, end: int) -> tuple[list[str], bytes]:
    """The last `lines` complete lines before byte `end` (within MAX_TAIL_BYTES), and the unfinished line
    that ends there (for the follow to complete)."""
    start = max(0, end - MAX_TAIL_BYTES)
    data = read_at(path, start, end - start)
    *complete, partial = data.split(b"\n")
    if start > 0 and complete:
        complete = complete[1:]  # cut in the middle of a line
    chosen = complete[len(complete) - lines:] if lines else []
    return [raw.decode("utf-8", errors="replace") for raw in chosen], partial
