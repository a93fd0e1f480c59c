"""A real wisp daemon in the test's event loop, on free ports, with helpers to apply and wait."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control.admission import apply_manifests
from wisp.control.conditions import get_condition
from wisp.daemon import Daemon, DaemonOptions
from wisp.serving.revision_runner import free_port
from wisp.types import Resource


class Harness:
    def __init__(self, daemon: Daemon, client: httpx.AsyncClient) -> None:
        self.daemon = daemon
        self.client = client

    @property
    def ingress(self) -> str:
        return f"http://127.0.0.1:{self.daemon.network.port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.daemon.options.api_port}"

    def apply(self, *resources: Resource) -> None:
        apply_manifests(list(resources), self.daemon.store)

    async def request(self, host: str, path: str = "/", method: str = "GET", **kwargs: Any) -> httpx.Response:
        headers = {"Host": host, **kwargs.pop("headers", {})}
        return await self.client.request(method, self.ingress + path, headers=headers, **kwargs)

    async def wait_for(self, kind: Kind, namespace: str, name: str,
                       predicate: Callable[[Resource], bool], timeout: float = 60.0) -> Resource:
        """Until the stored object satisfies `predicate`; woken by the store's own change events."""
        store = self.daemon.store
        queue = store.subscribe()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    current = store.get(kind, namespace, name)
                    if current is not None and predicate(current):
                        return current
                    await queue.get()
        except TimeoutError:
            last = store.get(kind, namespace, name)
            raise AssertionError(f"{kind.kind} {name} never matched; last: {last}") from None
        finally:
            store.unsubscribe(queue)

    async def ready(self, name: str, kind: Kind = k.SERVICE, namespace: str = "default",
                    timeout: float = 60.0) -> Resource:
        return await self.wait_for(kind, namespace, name, lambda r: _status(r, "Ready") == "True", timeout)

    async def failed(self, name: str, kind: Kind = k.SERVICE, namespace: str = "default",
                     timeout: float = 60.0) -> Resource:
        return await self.wait_for(kind, namespace, name, lambda r: _status(r, "Ready") == "False", timeout)


def _status(resource: Resource, type_: str) -> str | None:
    cond = get_condition(resource, type_)
    return None if cond is None else str(cond.get("status"))


@asynccontextmanager
async def running_daemon(state_dir: Path, **options: Any) -> AsyncIterator[Harness]:
    opts = DaemonOptions(port=free_port(), api_port=free_port(), state_dir=state_dir, **options)
    daemon = Daemon(opts)
    await daemon.start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            yield Harness(daemon, client)
    finally:
        await daemon.stop()


def write_function(directory: Path, code: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.py").write_text(textwrap.dedent(code))
    return directory


def service(name: str, image: str | Path, *, function: bool = True, annotations: dict[str, str] | None = None,
            spec: dict[str, Any] | None = None, container: dict[str, Any] | None = None,
            traffic: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None,
            template_name: str | None = None) -> Resource:
    """A Knative Service manifest whose image is a local directory."""
    template_annotations = dict(annotations or {})
    if function:
        template_annotations["wisp.dev/workload-class"] = "function"
    template_meta: dict[str, Any] = {"annotations": template_annotations}
    if template_name:
        template_meta["name"] = template_name
    body: Resource = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "spec": {"template": {"metadata": template_meta,
                              "spec": {**(spec or {}), "containers": [{"image": str(image), **(container or {})}]}}},
    }
    if traffic is not None:
        body["spec"]["traffic"] = traffic
    return body
