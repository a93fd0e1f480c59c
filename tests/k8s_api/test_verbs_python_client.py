"""The Python `kubernetes` client against a real daemon: CustomObjectsApi CRUD and a `watch.Watch().stream`
that sees a ksvc ADDED, MODIFIED (its status, and a spec change whose generation the status then observes, as
`kn` waits for) and DELETED."""

from __future__ import annotations

import asyncio
import queue
import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as kube
from kubernetes import watch as kube_watch
from kubernetes.client.rest import ApiException

from tests.serving.harness import running_daemon, write_function

GROUP, VERSION, NS, PLURAL = "serving.knative.dev", "v1", "default", "services"

CODE = """
def handle(request):
    return "hello"
"""


def ksvc(name: str, image: str, greeting: str) -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"template": {
                "metadata": {"annotations": {"wisp.dev/workload-class": "function"}},
                "spec": {"containers": [{"image": image, "env": [{"name": "GREETING", "value": greeting}]}]}}}}


def ready(obj: dict[str, Any]) -> bool:
    conditions = obj.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


class Events:
    """A watch stream read in a thread; `until` waits (without sleeping) for the event a predicate accepts."""

    def __init__(self, api: kube.CustomObjectsApi) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._watch = kube_watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(api,), daemon=True)
        self._thread.start()

    def _run(self, api: kube.CustomObjectsApi) -> None:
        try:
            for event in self._watch.stream(api.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL,
                                            timeout_seconds=120):
                self._queue.put((event["type"], event["object"]))
            self.ended_cleanly = True  # the server closed the stream properly (a chunked response's end)
        finally:
            self._queue.put(None)

    ended_cleanly = False

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    async def until(self, wanted: Any, timeout: float = 60) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            item = await asyncio.to_thread(self._queue.get, True, max(deadline - loop.time(), 0.01))
            assert item is not None, f"the watch ended; seen {[t for t, _ in self.seen]}"
            self.seen.append(item)
            if wanted(*item):
                return item[1]



@pytest.mark.timeout(180)
async def test_custom_objects_crud_and_watch(tmp_path: Path) -> None:
    image = str(write_function(tmp_path / "fn", CODE))
    events: Events | None = None
    client: kube.ApiClient | None = None
    try:
        async with running_daemon(tmp_path / "state") as h:
            client = kube.ApiClient(kube.Configuration(host=h.api))
            api = kube.CustomObjectsApi(client)
            events = Events(api)
            await exercise(api, events, image)
        # The daemon stopped: its watches end as streams do, not as broken connections.
        await asyncio.to_thread(events.join, 20)
        assert events.ended_cleanly
    finally:
        if client is not None:
            client.close()
    types = [t for t, o in events.seen if o["metadata"]["name"] == "hello"]
    assert types[0] == "ADDED" and types[-1] == "DELETED" and "MODIFIED" in types


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def exercise(api: kube.CustomObjectsApi, events: Events, image: str) -> None:
    created = await call(api.create_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, ksvc("hello", image, "Hi"))
    assert created["metadata"]["generation"] == 1
    await events.until(lambda t, o: t == "ADDED" and o["metadata"]["name"] == "hello")
    await events.until(lambda t, o: t == "MODIFIED" and ready(o))

    got = await call(api.get_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, "hello")
    assert got["status"]["observedGeneration"] == 1
    listed = await call(api.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["hello"]

    # A spec change bumps the generation; the reconciler's status then observes it (what kn waits for).
    patched = await call(api.patch_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, "hello",
                         {"spec": ksvc("hello", image, "Hello")["spec"]})
    assert patched["metadata"]["generation"] == 2
    observed = await events.until(lambda t, o: t == "MODIFIED"
                                  and o.get("status", {}).get("observedGeneration") == 2 and ready(o))
    assert observed["status"]["latestReadyRevisionName"] == "hello-00002"

    current = await call(api.get_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, "hello")
    current["metadata"]["labels"] = {"owner": "python"}
    replaced = await call(api.replace_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, "hello", current)
    assert replaced["metadata"]["labels"] == {"owner": "python"}
    with pytest.raises(ApiException) as stale:  # the same resourceVersion again: a conflict
        await call(api.replace_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, "hello", current)
    assert stale.value.status == 409

    await call(api.delete_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, "hello")
    await events.until(lambda t, o: t == "DELETED" and o["metadata"]["name"] == "hello")
    with pytest.raises(ApiException) as gone:
        await call(api.get_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, "hello")
    assert gone.value.status == 404
