"""Watch over HTTP as the Kubernetes API server serves it: `?watch=true` on a list path answers a chunked
stream of newline-delimited `WatchEvent`s, `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}`.

- No resourceVersion (or "0"): an ADDED for every object that exists, then the changes (what `watch.Watch().
  stream` and `kubectl get -w` without a list expect). A resourceVersion: the changes after it, replayed from
  the store's history; one older than the history gets an ERROR event holding a 410 Expired Status (as the
  API server's watch cache sends it), and the client lists again.
- `sendInitialEvents=true`: the ADDED events, then a BOOKMARK annotated `k8s.io/initial-events-end`.
- `allowWatchBookmarks`: a BOOKMARK with the latest resourceVersion every `bookmark_interval` seconds.
- `timeoutSeconds` ends the stream cleanly; so do daemon shutdown and the deletion of the watched namespace.
- A watcher that falls `buffer` events behind is ended with an ERROR 410 Expired instead of holding memory.
- A label-selector watch sees an object that stops matching as DELETED and one that starts matching as ADDED.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from starlette.responses import StreamingResponse

from wisp.api.kinds import Kind
from wisp.control.k8s_selectors import Selector
from wisp.control.refusal import bad_request
from wisp.store import Expired, Store, StoreEvent, Watcher
from wisp.store.events import EventType
from wisp.store.json_text import dumps
from wisp.store.watch import DEFAULT_BUFFER
from wisp.types import Resource

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass(frozen=True)
class WatchSettings:
    bookmark_interval: float = 60.0  # the API server sends one about every minute
    default_timeout: float = 1800.0  # the API server's --min-request-timeout
    buffer: int = DEFAULT_BUFFER
    clock: Callable[[], float] | None = None  # monotonic seconds; None: the event loop's clock


def expired_status(message: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "message": message,
            "reason": "Expired", "code": 410}


def is_true(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


class Encoder:
    """Each change encoded once for every watcher that sends it (fan-out costs one json.dumps per change)."""

    def __init__(self, redact: Callable[[Kind, Resource], Resource], size: int = 256) -> None:
        self.redact = redact
        self._size = size
        self._cache: OrderedDict[tuple[int, str], tuple[StoreEvent, bytes]] = OrderedDict()

    def change(self, sent: EventType, event: StoreEvent) -> bytes:
        key = (id(event), sent)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is event:  # the event is held, so its id cannot be reused meanwhile
            return hit[1]
        obj = self.redact(event.kind, event.resource)
        if event.type == "DELETED":  # the deletion's own version, as the API server reports it
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(event.version)}}
        line = line_of(sent, obj)
        self._cache[key] = (event, line)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return line


def line_of(event_type: str, obj: Mapping[str, object]) -> bytes:
    return dumps({"type": event_type, "object": obj}) + b"\n"


def accept_for(kind: Kind, namespace: str | None, selector: Selector) -> Callable[[StoreEvent], EventType | None]:
    def accept(event: StoreEvent) -> EventType | None:
        if event.kind is not kind:
            return None
        meta = event.resource["metadata"]
        if namespace is not None and kind.namespaced and meta.get("namespace") != namespace:
            return None
        if selector.empty:
            return event.type
        now = selector.matches(event.resource)
        if event.type != "MODIFIED":
            return event.type if now else None
        before = event.old is not None and selector.matches(event.old)
        if now:
            return "MODIFIED" if before else "ADDED"
        return "DELETED" if before else None
    return accept


def watch(store: Store, kind: Kind, namespace: str | None, selector: Selector, params: Mapping[str, str],
          encoder: Encoder, settings: WatchSettings) -> StreamingResponse:
    """The watch response; Refused (400) for parameters that cannot be read."""
    since = _since(params.get("resourceVersion"))
    try:
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else settings.default_timeout
    except ValueError:
        raise bad_request(f"timeoutSeconds must be a number of seconds: {params['timeoutSeconds']!r}") from None
    bookmarks = is_true(params.get("allowWatchBookmarks"))
    initial_end = is_true(params.get("sendInitialEvents"))
    watcher = Watcher(accept_for(kind, namespace, selector), namespace if kind.namespaced else None,
                      settings.buffer)

    def bookmark(version: int, annotations: dict[str, str] | None = None) -> bytes:
        meta: dict[str, object] = {"resourceVersion": str(version)}
        if annotations:
            meta["annotations"] = annotations
        return line_of("BOOKMARK", {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta})

    async def stream() -> AsyncIterator[bytes]:
        clock = settings.clock or asyncio.get_running_loop().time
        # Registered on the loop's turn that reads the snapshot: no change can fall between the two.
        try:
            if since is None:
                current = [r for r in store.list(kind, namespace) if selector.matches(r)]
                last = store.version()
                store.watchers.start(watcher, None)
            else:
                current, last = [], since
                store.watchers.start(watcher, since)
        except Expired as exc:
            yield line_of("ERROR", expired_status(str(exc)))
            return
        try:
            if current:
                yield b"".join(line_of("ADDED", encoder.redact(kind, r)) for r in current)
            if initial_end and bookmarks:
                yield bookmark(last, {INITIAL_EVENTS_END: "true"})
            deadline = clock() + timeout
            next_bookmark = clock() + settings.bookmark_interval
            while True:
                now = clock()
                if now >= deadline:
                    return
                wait = min(deadline, next_bookmark) - now if bookmarks else deadline - now
                await watcher.wait(max(wait, 0.0))
                changes = watcher.take()
                if changes:
                    last = changes[-1].version
                    yield b"".join(encoder.change(c.type, c.event) for c in changes)
                if watcher.expired:
                    yield line_of("ERROR", expired_status(
                        "the watch fell too far behind and was ended; list again and watch from there"))
                    return
                if watcher.ended:
                    return
                if bookmarks and clock() >= next_bookmark:
                    last = max(last, store.version())
                    yield bookmark(last)
                    next_bookmark = clock() + settings.bookmark_interval
        finally:
            store.watchers.stop(watcher)

    return StreamingResponse(stream(), media_type="application/json")


def _since(value: str | None) -> int | None:
    if value in (None, "", "0"):
        return None
    assert value is not None
    try:
        version = int(value)
    except ValueError:
        raise bad_request(f"invalid resource version: {value!r}") from None
    if version < 0:
        raise bad_request(f"invalid resource version: {value!r}")
    return version
