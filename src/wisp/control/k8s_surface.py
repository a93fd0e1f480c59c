"""Everything the control API adds so Kubernetes clients work against it, assembled for the daemon.

Discovery, OpenAPI, Events and pod logs are routes placed before the API's generic resource routes;
Table output wraps the whole API app (k8s_table_asgi). The verbs themselves (watch, patch, apply) live in
control/api.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.routing import Route
from starlette.types import ASGIApp

from wisp.api.kinds import Kind
from wisp.control.k8s_discovery import discovery_routes
from wisp.control.k8s_events import EventRecorder, ScaleEvents, StatusEvents, component_for, event_routes
from wisp.control.k8s_openapi import openapi_routes, warm_openapi
from wisp.control.k8s_pod_logs import complete_pods, pod_log_routes
from wisp.control.k8s_table_asgi import TableNegotiation
from wisp.store import Store
from wisp.types import Clock, Resource


@dataclass
class KubernetesSurface:
    store: Store
    clock: Clock
    list_pods: Callable[[str | None], list[Resource]]
    log_root: Path
    wisp_version: str
    recorder: EventRecorder = field(init=False)
    status_events: StatusEvents = field(init=False)
    scale_events: ScaleEvents = field(init=False)
    _warming: asyncio.Task[None] | None = field(init=False, default=None)
    _closing: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.recorder = EventRecorder(self.clock)
        self.status_events = StatusEvents(self.store, self.recorder)
        self.scale_events = ScaleEvents(self.store, self.recorder, {})

    def pods(self, namespace: str | None) -> list[Resource]:
        """The running instances as Pods complete enough for kubectl (`logs` and `describe` read the spec)."""
        return complete_pods(self.list_pods(namespace), self.store)

    def reconcile_failed(self, kind: Kind, namespace: str, name: str, error: Exception) -> None:
        """A failed reconcile, as Knative's reconcilers report it: a Warning InternalError on the object."""
        resource = self.store.get(kind, namespace, name)
        if resource is not None:  # deleted meanwhile: nothing left to describe
            self.recorder.record(resource, "Warning", "InternalError", f"{type(error).__name__}: {error}",
                                 component_for(kind))

    def routes(self) -> list[Route]:
        return [*discovery_routes(self.wisp_version), *openapi_routes(), *event_routes(self.recorder),
                *pod_log_routes(self.pods, self.log_root, closing=lambda: self._closing)]

    def wrap(self, api: ASGIApp) -> ASGIApp:
        return TableNegotiation(api, self.clock)

    async def start(self) -> None:
        await self.status_events.start()
        # The OpenAPI documents (~1 MB from the CRD schemas) are built in a worker thread now rather than on
        # the event loop at kubectl's first apply or explain, where the ingress would wait for them.
        self._warming = asyncio.create_task(asyncio.to_thread(warm_openapi))

    def end_streams(self) -> None:
        """Event watches and log follows end now, so that they do not hold the API server's shutdown."""
        self._closing = True
        self.recorder.end_watches()

    async def stop(self) -> None:
        await self.status_events.stop()
        if self._warming is not None:
            with contextlib.suppress(Exception):
                await self._warming
