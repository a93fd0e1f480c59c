"""core/v1 Events: what the reconcilers and the autoscaler did, for `kubectl get events` and `kubectl describe`.

Kept in memory and bounded as kube-apiserver bounds them: at most `max_events` (the oldest go first) and each
for `ttl` seconds after it was last seen (Kubernetes' default event TTL is one hour). A repeat of the same
event (same object, type, reason and message) bumps `count` and `lastTimestamp` instead of adding one, as
client-go's event correlator does. Events do not survive a restart of the daemon.

Recorded here:
- by `StatusEvents`, from the store's changes: an object created on behalf of an owner ("Created
  Configuration \"hello\"" on the Service), and each change of an object's Ready condition;
- by the controller, a reconcile that failed (Warning InternalError);
- by `ScaleEvents`, each change of a Revision's desired scale decided by the autoscaler.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.api.timestamps import rfc3339
from wisp.control import k8s_selectors
from wisp.control.k8s_watch import expired_status, is_true, line_of
from wisp.store import Store, StoreEvent
from wisp.types import Clock, Resource

log = logging.getLogger("wisp.events")

DEFAULT_MAX_EVENTS = 1000
DEFAULT_TTL = 3600.0
MAX_MESSAGE = 1024  # Kubernetes truncates event messages at 1 KiB
WATCH_BUFFER = 1000
DEFAULT_WATCH_SECONDS = 1800.0


class EventRecorder:
    def __init__(self, clock: Clock, max_events: int = DEFAULT_MAX_EVENTS, ttl: float = DEFAULT_TTL) -> None:
        self.clock = clock
        self.max_events = max_events
        self.ttl = ttl
        self._events: OrderedDict[tuple[str, ...], Resource] = OrderedDict()  # least recently seen first
        self._seen: dict[tuple[str, ...], float] = {}
        self._versions = itertools.count(1)
        self.version = 0  # the last resourceVersion given; a watch from it sees only what comes after
        self._watchers: set[EventWatcher] = set()

    def record(self, involved: Resource, type_: str, reason: str, message: str, component: str) -> None:
        """An event about `involved` (a Kubernetes-shaped object: apiVersion, kind, metadata)."""
        meta = involved.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        message = message[:MAX_MESSAGE]
        key = (namespace, str(involved.get("kind", "")), str(meta.get("name", "")), str(meta.get("uid", "")),
               type_, reason, message, component)
        now = self.clock()
        stamp = rfc3339(now)
        existing = self._events.pop(key, None)
        if existing is not None:
            existing["count"] += 1
            existing["lastTimestamp"] = stamp
            existing["metadata"]["resourceVersion"] = str(self._next_version())
            event = existing
        else:
            name = f"{meta.get('name', 'unknown')}.{int(now * 1e9):x}"
            event = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": stamp,
                             "resourceVersion": str(self._next_version())},
                "involvedObject": {key_: value for key_, value in {
                    "apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                    "name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                    "resourceVersion": meta.get("resourceVersion")}.items() if value},
                "reason": reason, "message": message, "type": type_,
                "source": {"component": component}, "reportingComponent": component, "reportingInstance": "",
                "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "eventTime": None,
            }
        self._events[key] = event
        if self._watchers:
            sent = copy.deepcopy(event)  # one copy for every watcher: a later repeat must not change what was sent
            for watcher in list(self._watchers):
                watcher.offer("MODIFIED" if existing is not None else "ADDED", sent)
        self._seen[key] = now
        while len(self._events) > self.max_events:
            oldest, _ = self._events.popitem(last=False)
            self._seen.pop(oldest, None)

    def _next_version(self) -> int:
        self.version = next(self._versions)
        return self.version

    def watch(self) -> EventWatcher:
        watcher = EventWatcher(self)
        self._watchers.add(watcher)
        return watcher

    def unwatch(self, watcher: EventWatcher) -> None:
        self._watchers.discard(watcher)

    def end_watches(self) -> None:
        """At shutdown: every watch ends cleanly instead of holding the API server's drain."""
        for watcher in list(self._watchers):
            watcher.end()

    def _prune(self) -> None:
        horizon = self.clock() - self.ttl
        while self._events:
            key = next(iter(self._events))
            if self._seen[key] >= horizon:
                break
            del self._events[key]
            del self._seen[key]

    def list(self, namespace: str | None = None) -> list[Resource]:
        """Live events, oldest first (by when last seen)."""
        self._prune()
        return [e for e in self._events.values() if namespace is None or e["metadata"]["namespace"] == namespace]


class EventWatcher:
    """One `?watch=1` on events: what is recorded from now on, up to WATCH_BUFFER behind; a watcher that falls
    further behind is ended as expired (the client lists again), never allowed to grow without bound."""

    def __init__(self, recorder: EventRecorder) -> None:
        self.recorder = recorder
        self.queue: asyncio.Queue[tuple[str, Resource]] = asyncio.Queue(WATCH_BUFFER)
        self.expired = False

    def end(self) -> None:
        self.recorder.unwatch(self)
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(("END", {}))

    def offer(self, type_: str, event: Resource) -> None:
        try:
            self.queue.put_nowait((type_, event))
        except asyncio.QueueFull:
            self.expired = True
            self.recorder.unwatch(self)
            self.queue.get_nowait()
            self.queue.put_nowait(("ERROR", {}))  # wakes the stream, which ends it


def _ready(resource: Resource) -> tuple[str, str, str] | None:
    for condition in resource.get("status", {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return (str(condition.get("status", "Unknown")), str(condition.get("reason") or ""),
                    str(condition.get("message") or ""))
    return None


_COMPONENT = {k.SERVING: "wisp-serving", k.EVENTING: "wisp-eventing", k.SOURCES: "wisp-sources"}


def component_for(kind: Kind) -> str:
    return _COMPONENT.get(kind.group, "wisp-controller")


class StatusEvents:
    """Turns the store's changes into Events: creations on behalf of an owner, and Ready transitions."""

    def __init__(self, store: Store, recorder: EventRecorder) -> None:
        self.store = store
        self.recorder = recorder
        self._ready: dict[tuple[Kind, str, str], tuple[str, str, str] | None] = {}
        self._queue: asyncio.Queue[StoreEvent] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for kind, resource in self.store.all():  # what is already true is not news
            meta = resource["metadata"]
            self._ready[(kind, meta.get("namespace", ""), meta["name"])] = _ready(resource)
        self._queue = self.store.subscribe()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue is not None:
            self.store.unsubscribe(self._queue)

    async def _loop(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            try:
                self.observe(event)
            except Exception:  # an event is a report; failing to write one must not stop the next
                log.exception("recording an event for %s failed", event.kind.kind)

    def observe(self, event: StoreEvent) -> None:
        key = event.key
        resource = event.resource
        if event.type == "DELETED":
            self._ready.pop(key, None)
            return
        if event.type == "ADDED":
            self._created(event.kind, resource)
        ready = _ready(resource)
        before = self._ready.get(key)
        self._ready[key] = ready
        if ready is None or ready == before or ready[0] == "Unknown":
            return
        name = f'{event.kind.kind} "{resource["metadata"]["name"]}"'
        if ready[0] == "True":
            self.recorder.record(resource, "Normal", "Ready", ready[2] or f"{name} is Ready",
                                 component_for(event.kind))
        else:
            self.recorder.record(resource, "Warning", ready[1] or "NotReady", ready[2] or f"{name} is not Ready",
                                 component_for(event.kind))

    def _created(self, kind: Kind, resource: Resource) -> None:
        meta = resource["metadata"]
        for owner in meta.get("ownerReferences") or []:
            if not isinstance(owner, dict) or not owner.get("controller"):
                continue
            involved = {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"),
                        "metadata": {"name": owner.get("name"), "namespace": meta.get("namespace"),
                                     "uid": owner.get("uid")}}
            self.recorder.record(involved, "Normal", "Created", f'Created {kind.kind} "{meta["name"]}"',
                                 component_for(kind))


@dataclass
class ScaleEvents:
    """The autoscaler's decisions, as Events on the Revision: ScaledUp / ScaledDown with the deciding figures."""

    store: Store
    recorder: EventRecorder
    desired: dict[tuple[str, str], int]

    def changed(self, namespace: str, revision: str, desired: int, why: str) -> None:
        before = self.desired.get((namespace, revision), 0)
        self.desired[(namespace, revision)] = desired
        if desired == before:
            return
        resource = self.store.get(k.REVISION, namespace, revision)
        if resource is None:
            return
        reason = "ScaledUp" if desired > before else "ScaledDown"
        self.recorder.record(resource, "Normal", reason, f"desired scale {before} → {desired}" +
                             (f" ({why})" if why else ""), "wisp-autoscaler")

    def forget(self, namespace: str, revision: str) -> None:
        self.desired.pop((namespace, revision), None)


# -- the API: GET /api/v1/events, /api/v1/namespaces/{ns}/events[/{name}] ---------------------------------

def _involved(field: str) -> Callable[[Resource], str]:
    return lambda event: str(event.get("involvedObject", {}).get(field, ""))


_EVENT_FIELDS: dict[str, Callable[[Resource], str]] = {
    "metadata.name": lambda e: e["metadata"]["name"],
    "metadata.namespace": lambda e: e["metadata"]["namespace"],
    "reason": lambda e: e.get("reason", ""),
    "type": lambda e: e.get("type", ""),
    "source": lambda e: e.get("source", {}).get("component", ""),
    "reportingComponent": lambda e: e.get("reportingComponent", ""),
    **{f"involvedObject.{f}": _involved(f)
       for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
}


class SelectorError(ValueError):
    pass


def field_filter(selector: str) -> Callable[[Resource], bool]:
    """A field selector over an Event's fields (`a=b`, `a==b`, `a!=b`, comma-joined, as Kubernetes takes)."""
    checks: list[tuple[Callable[[Resource], str], bool, str]] = []
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        if "!=" in term:
            field, value, equal = *term.split("!=", 1), False
        elif "==" in term:
            field, value, equal = *term.split("==", 1), True
        elif "=" in term:
            field, value, equal = *term.split("=", 1), True
        else:
            raise SelectorError(f"invalid selector: {term!r}; can't understand {term!r}")
        getter = _EVENT_FIELDS.get(field.strip())
        if getter is None:
            raise SelectorError(f'"{field.strip()}" is not a known field selector: only "'
                                + '", "'.join(_EVENT_FIELDS) + '"')
        checks.append((getter, equal, value.strip()))
    return lambda event: all((get(event) == value) == equal for get, equal, value in checks)


def label_filter(selector: str) -> Callable[[Resource], bool]:
    """Kubernetes' label selector (Refused, 400, when it does not parse); events carry no labels, so a requirement
    that a label exists or equals something matches none of them."""
    return k8s_selectors.parse(selector, None).matches


def _status(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": message,
                         "reason": reason, "code": code}, status_code=code)


def _watch(recorder: EventRecorder, request: Request, wanted: Callable[[Resource], bool]) -> Response:
    """Newline-delimited WatchEvents. From resourceVersion "" or "0": every live event first (ADDED); from a
    version: the live events changed after it, then what comes. Ends after `timeoutSeconds`."""
    raw_since = request.query_params.get("resourceVersion", "")
    raw_timeout = request.query_params.get("timeoutSeconds", "")
    try:
        since = int(raw_since) if raw_since not in ("", "0") else 0
        timeout = float(raw_timeout) if raw_timeout else DEFAULT_WATCH_SECONDS
    except ValueError:
        return _status(400, "BadRequest", f"resourceVersion and timeoutSeconds must be numbers, not "
                                          f"{raw_since[:20]!r} and {raw_timeout[:20]!r}")
    if since > recorder.version:
        return _status(400, "BadRequest", f"resourceVersion {since} is newer than the events' {recorder.version}")

    async def stream() -> AsyncIterator[bytes]:
        watcher = recorder.watch()  # before the snapshot, on the same turn of the loop: nothing falls between
        try:
            current = [e for e in recorder.list() if wanted(e) and int(e["metadata"]["resourceVersion"]) > since]
            if current:
                yield b"".join(line_of("ADDED" if e["count"] == 1 or not since else "MODIFIED", e) for e in current)
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return
                try:
                    type_, event = await asyncio.wait_for(watcher.queue.get(), remaining)
                except TimeoutError:
                    return
                if type_ == "END":
                    return
                if watcher.expired:
                    yield line_of("ERROR", expired_status("the watch fell too far behind; list the events again and "
                                                          "watch from there"))
                    return
                if wanted(event):
                    yield line_of(type_, event)
        finally:
            recorder.unwatch(watcher)

    return StreamingResponse(stream(), media_type="application/json")


def event_routes(recorder: EventRecorder) -> list[Route]:
    async def collection(request: Request) -> Response:
        try:
            by_field = field_filter(request.query_params.get("fieldSelector", ""))
        except SelectorError as exc:
            return _status(400, "BadRequest", str(exc))
        by_label = label_filter(request.query_params.get("labelSelector", ""))
        namespace = request.path_params.get("namespace")

        def wanted(event: Resource) -> bool:
            return (namespace is None or event["metadata"]["namespace"] == namespace) and by_field(event) \
                and by_label(event)

        if is_true(request.query_params.get("watch")):
            return _watch(recorder, request, wanted)
        items = [e for e in recorder.list(namespace) if wanted(e)]
        # No `continue`: events are capped well below what one answer may hold, and a server may ignore `limit`.
        return JSONResponse({"apiVersion": "v1", "kind": "EventList", "items": items,
                             "metadata": {"resourceVersion": str(recorder.version)}})

    async def item(request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        for event in recorder.list(namespace):
            if event["metadata"]["name"] == name:
                return JSONResponse(event)
        return _status(404, "NotFound", f'events "{name}" not found')

    async def refuse(request: Request) -> Response:
        return _status(405, "MethodNotAllowed", "events are recorded by wisp itself and cannot be written")

    every = ["POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/api/v1/events", collection, methods=["GET"]),
        Route("/api/v1/events", refuse, methods=every),
        Route("/api/v1/namespaces/{namespace}/events", collection, methods=["GET"]),
        Route("/api/v1/namespaces/{namespace}/events", refuse, methods=every),
        Route("/api/v1/namespaces/{namespace}/events/{name}", item, methods=["GET"]),
        Route("/api/v1/namespaces/{namespace}/events/{name}", refuse, methods=every),
    ]
