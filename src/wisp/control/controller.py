"""The reconcile loop: store changes become work items; each key is reconciled by its kind's reconciler.

Keys reconcile concurrently, each key serially: a change that arrives while its key is being reconciled
marks it dirty, and it runs once more afterwards. Failures are retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from wisp.api.kinds import Kind
from wisp.store import Store, StoreEvent
from wisp.types import Resource

log = logging.getLogger("wisp.control")

Key = tuple[Kind, str, str]  # kind, namespace, name
RETRY_START, RETRY_MAX = 0.5, 30.0


class Reconciler(Protocol):
    @property
    def kinds(self) -> tuple[Kind, ...]: ...

    async def reconcile(self, kind: Kind, namespace: str, name: str) -> None: ...

    async def deleted(self, kind: Kind, resource: Resource) -> None: ...

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        """Other objects whose reconcile depends on the changed one."""
        ...


class Enqueue:
    """Asks the controller to reconcile a key. Made before the controller, so what the controller runs (the
    reconcilers and the dispatchers they start) gets it at construction; the controller binds itself to it.
    Before that a request is dropped: the controller reconciles every stored object when it starts."""

    def __init__(self) -> None:
        self._target: Callable[[Kind, str, str], None] | None = None

    def bind(self, target: Callable[[Kind, str, str], None]) -> None:
        self._target = target

    def __call__(self, kind: Kind, namespace: str, name: str) -> None:
        if self._target is not None:
            self._target(kind, namespace, name)


class Controller:
    def __init__(self, store: Store, reconcilers: list[Reconciler], enqueue: Enqueue | None = None,
                 on_failure: Callable[[Kind, str, str, Exception], None] | None = None) -> None:
        """`enqueue`, when given, is bound to this controller's queue; `on_failure` hears of each failed
        reconcile (the daemon records it as a Warning event)."""
        self._store = store
        self._on_failure = on_failure
        self._reconcilers = reconcilers
        self._by_kind = {kind: r for r in reconcilers for kind in r.kinds}
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._dirty: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._watch: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[StoreEvent] | None = None
        self._retry_handles: set[asyncio.TimerHandle] = set()
        # Set by stop: what stopping components report then (a runner draining) must not start a reconcile,
        # which would build the running state again behind the stop (a new runner, new instances).
        self._stopped = False
        if enqueue is not None:
            enqueue.bind(self.enqueue)

    async def start(self) -> None:
        self._events = self._store.subscribe()
        for kind, resource in self._store.all():
            if kind in self._by_kind:
                meta = resource["metadata"]
                self.enqueue(kind, meta.get("namespace", ""), meta["name"])
        self._watch = asyncio.create_task(self._watch_loop(), name="controller watch")

    async def stop(self) -> None:
        self._stopped = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._events is not None:
            self._store.unsubscribe(self._events)
        for handle in self._retry_handles:
            handle.cancel()
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    def enqueue(self, kind: Kind, namespace: str, name: str) -> None:
        if kind not in self._by_kind or self._stopped:
            return
        key = (kind, namespace, name)
        if key in self._running:
            self._dirty.add(key)
            return
        self._running[key] = asyncio.create_task(self._run(key), name=f"reconcile {kind.kind}/{name}")

    def enqueue_all(self, keys: Iterable[Key]) -> None:
        for kind, namespace, name in keys:
            self.enqueue(kind, namespace, name)

    async def _watch_loop(self) -> None:
        assert self._events is not None
        while True:
            event = await self._events.get()
            kind, namespace, name = event.key
            reconciler = self._by_kind.get(kind)
            if reconciler is not None:
                if event.type == "DELETED":
                    await self._deleted(reconciler, kind, event.resource)
                else:
                    self.enqueue(kind, namespace, name)
            for r in self._reconcilers:
                self.enqueue_all(r.dependents(event))

    async def _deleted(self, reconciler: Reconciler, kind: Kind, resource: Resource) -> None:
        try:
            await reconciler.deleted(kind, resource)
        except Exception:
            log.exception("cleaning up %s %s failed", kind.kind, resource["metadata"]["name"])

    async def _run(self, key: Key) -> None:
        kind, namespace, name = key
        try:
            while True:
                self._dirty.discard(key)
                try:
                    await self._by_kind[kind].reconcile(kind, namespace, name)
                    self._failures.pop(key, None)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    count = self._failures.get(key, 0) + 1
                    self._failures[key] = count
                    if self._on_failure is not None:
                        self._on_failure(kind, namespace, name, exc)
                    if key in self._dirty:
                        # A change arrived meanwhile: run again at once, as client-go's work queue does.
                        log.exception("reconciling %s %s/%s failed; it changed since, running again",
                                      kind.kind, namespace, name)
                        continue
                    delay = min(RETRY_MAX, RETRY_START * 2 ** (count - 1))
                    log.exception("reconciling %s %s/%s failed; retrying in %.1fs", kind.kind, namespace, name, delay)
                    self._retry_later(key, delay)
                    return
                if key not in self._dirty:
                    return
        finally:
            self._running.pop(key, None)

    def _retry_later(self, key: Key, delay: float) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._retry_handles.discard(handle)
            self.enqueue(*key)

        handle = loop.call_later(delay, fire)
        self._retry_handles.add(handle)


def keys_of(kind: Kind, resources: Iterable[Resource]) -> list[Key]:
    return [(kind, r["metadata"].get("namespace", ""), r["metadata"]["name"]) for r in resources]


def owner_keys(resource: Resource, kinds: Callable[[str], Kind | None]) -> list[Key]:
    meta = resource["metadata"]
    out: list[Key] = []
    for ref in meta.get("ownerReferences", []):
        kind = kinds(ref.get("kind", ""))
        if kind is not None:
            out.append((kind, meta.get("namespace", ""), ref["name"]))
    return out
