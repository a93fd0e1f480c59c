"""Keeps the daemon's tracing in step with the `config-tracing` and `config-observability` ConfigMaps in
knative-serving (observability/tracing_config.py says which wins).

Admission has validated them (control/admission.py), so a change applies at once: the ingress's sampler and the
backend's exporter. Both deleted: back to the default (no trace started).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from wisp.api import kinds as k
from wisp.api.errors import ManifestError
from wisp.observability.tracing_config import (
    CONFIG_OBSERVABILITY,
    CONFIG_TRACING,
    SYSTEM_NAMESPACE,
    TracingConfig,
    effective_tracing,
)
from wisp.store import Store, StoreEvent

log = logging.getLogger("wisp.control")

ApplyTracing = Callable[[TracingConfig | None], Awaitable[None]]


def _data(store: Store, name: str) -> dict[str, str] | None:
    stored = store.get(k.CONFIG_MAP, SYSTEM_NAMESPACE, name)
    return None if stored is None else {str(key): str(v) for key, v in (stored.get("data") or {}).items()}


def current_tracing(store: Store) -> TracingConfig | None:
    """The stored tracing configuration, parsed; None when there is none (or it no longer parses: logged)."""
    try:
        return effective_tracing(_data(store, CONFIG_TRACING), _data(store, CONFIG_OBSERVABILITY))
    except ManifestError as exc:
        log.error("%s/%s or %s is not applied: %s", SYSTEM_NAMESPACE, CONFIG_TRACING, CONFIG_OBSERVABILITY, exc)
        return None


def _is_tracing(event: StoreEvent) -> bool:
    return event.kind is k.CONFIG_MAP and event.key[1] == SYSTEM_NAMESPACE and \
        event.key[2] in (CONFIG_TRACING, CONFIG_OBSERVABILITY)


class TracingWatch:
    def __init__(self, store: Store, apply: ApplyTracing) -> None:
        self._store = store
        self._apply = apply
        self._events: asyncio.Queue[StoreEvent] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._events = self._store.subscribe()
        await self._apply(current_tracing(self._store))
        self._task = asyncio.create_task(self._run(), name="config-tracing watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._events is not None:
            self._store.unsubscribe(self._events)
            self._events = None

    async def _run(self) -> None:
        assert self._events is not None
        while True:
            event = await self._events.get()
            try:
                if _is_tracing(event):
                    await self._apply(current_tracing(self._store))
            except Exception:  # a bad exporter URL must not end the watch
                log.exception("applying %s failed", CONFIG_TRACING)
            finally:
                self._events.task_done()

    async def settled(self) -> None:
        """Returns once every store change so far has been looked at (and a config-tracing change applied)."""
        if self._events is not None:
            await self._events.join()
