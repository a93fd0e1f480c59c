"""The Kubernetes API side of the api/v1 conformance tests: wisp's control API spoken to as Knative's clients
speak to a cluster (create, get, list, update, delete), and the waits upstream's v1test helpers do."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import httpx

from tests.conformance.conftest import Target, knative_service
from tests.serving.harness import Harness
from wisp.api import kinds as k
from wisp.control.conditions import get_condition
from wisp.types import Resource

PLURALS = {"Service": "services", "Configuration": "configurations", "Route": "routes", "Revision": "revisions"}
KINDS = {"Service": k.SERVICE, "Configuration": k.CONFIGURATION, "Route": k.ROUTE, "Revision": k.REVISION}


def path(kind: str, name: str = "") -> str:
    base = f"/apis/serving.knative.dev/v1/namespaces/default/{PLURALS[kind]}"
    return f"{base}/{name}" if name else base


class Kube:
    def __init__(self, h: Harness) -> None:
        self.h = h
        self.client = h.client  # the harness's: closed with the daemon, pass or fail

    async def create(self, body: Resource) -> httpx.Response:
        return await self.client.post(self.h.api + path(body["kind"]), json=body)

    async def get(self, kind: str, name: str) -> Resource:
        r = await self.client.get(self.h.api + path(kind, name))
        assert r.status_code == 200, r.text
        result: Resource = r.json()
        return result

    async def list(self, kind: str) -> list[Resource]:
        r = await self.client.get(self.h.api + path(kind))
        assert r.status_code == 200, r.text
        items: list[Resource] = r.json()["items"]
        return items

    async def update(self, kind: str, name: str, change: Callable[[Resource], None]) -> httpx.Response:
        """GET, change, PUT (with the resourceVersion read), as client-go's Update after a Get."""
        current = copy.deepcopy(await self.get(kind, name))
        change(current)
        current.pop("status", None)
        return await self.client.put(self.h.api + path(kind, name), json=current)

    async def delete(self, kind: str, name: str) -> httpx.Response:
        return await self.client.delete(self.h.api + path(kind, name))

    async def wait(self, kind: str, name: str, predicate: Callable[[Resource], bool], timeout: float = 120) -> Resource:
        return await self.h.wait_for(KINDS[kind], "default", name, predicate, timeout)

    async def gone(self, kind: str, name: str, timeout: float = 60) -> None:
        """Until the object is deleted (woken by the store's change events); then the API answers 404."""
        store = self.h.daemon.store
        queue = store.subscribe()
        try:
            async with asyncio.timeout(timeout):
                while store.get(KINDS[kind], "default", name) is not None:
                    await queue.get()
        finally:
            store.unsubscribe(queue)
        assert (await self.client.get(self.h.api + path(kind, name))).status_code == 404

    async def ready(self, kind: str, name: str, timeout: float = 120) -> Resource:
        return await self.wait(kind, name, lambda r: is_ready(r) and observed(r), timeout)


def is_ready(resource: Resource) -> bool:
    cond = get_condition(resource, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_failed(resource: Resource) -> bool:
    cond = get_condition(resource, "Ready")
    return cond is not None and cond.get("status") == "False"


def observed(resource: Resource) -> bool:
    return (resource.get("status") or {}).get("observedGeneration") == resource["metadata"].get("generation")


def text_service(name: str, target: Target, text: str, **extra: Any) -> Resource:
    """The analogue of upstream's PizzaPlanet1/2 images: the runtime app with a TEXT that tells versions apart."""
    return knative_service(name, target.container(env=[{"name": "TEXT", "value": text}]), **extra)


def set_text(text: str) -> Callable[[Resource], None]:
    def change(resource: Resource) -> None:
        container = resource["spec"]["template"]["spec"]["containers"][0]
        container["env"] = [{"name": "TEXT", "value": text}]
    return change


async def text_at(h: Harness, host: str) -> str:
    """The TEXT the instance answering `host` has (upstream's validateDataPlane reads the image's text)."""
    r = await h.request(host)
    assert r.status_code == 200, r.text
    text: str = r.json()["host"]["envs"].get("TEXT", "")
    return text


def latest_revision_is(name: str) -> Callable[[Resource], bool]:
    def check(resource: Resource) -> bool:
        status = resource.get("status") or {}
        return is_ready(resource) and observed(resource) and status.get("latestReadyRevisionName") == name
    return check


async def validate_control_plane(kube: Kube, target: Target, config: str, route: str, revision: str,
                                 generation: str) -> None:
    """Upstream's validateControlPlane: the Revision is ready and of the expected generation, the
    Configuration's latest created and ready Revision is it, and the Route sends it all traffic."""
    rev = await kube.ready("Revision", revision)
    assert rev["metadata"]["labels"]["serving.knative.dev/configurationGeneration"] == generation
    statuses = rev["status"].get("containerStatuses") or []
    assert statuses and statuses[0].get("name"), rev["status"]
    digest = statuses[0].get("imageDigest", "")
    # Upstream's ValidateImageDigest: an image resolves to its digest; a local directory is its own "digest".
    if target.kind == "oci":
        assert digest.startswith(target.image.rsplit(":", 1)[0] + "@sha256:"), digest
    else:
        assert digest == target.image
    cfg = await kube.get("Configuration", config)
    assert (cfg["status"]["latestCreatedRevisionName"], cfg["status"]["latestReadyRevisionName"]) == (revision,
                                                                                                       revision)
    rt = await kube.wait("Route", route, lambda r: is_ready(r) and [
        (t.get("revisionName"), t.get("percent")) for t in r["status"].get("traffic", [])] == [(revision, 100)])
    assert rt["status"]["url"]


def validate_labels_propagation(service: str, revision: Resource, config: Resource, route: Resource) -> None:
    assert revision["metadata"]["labels"]["serving.knative.dev/configuration"] == config["metadata"]["name"]
    assert revision["metadata"]["labels"]["serving.knative.dev/service"] == service
    assert config["metadata"]["labels"]["serving.knative.dev/service"] == service
    assert route["metadata"]["labels"]["serving.knative.dev/service"] == service
