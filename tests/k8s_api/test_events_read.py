"""core/v1 Events: bounded (count and TTL, on a fake clock), repeats counted, recorded from the store's
changes and the autoscaler's decisions, and served read-only with field selectors as kubectl describe sends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.k8s_api.read_side import read_api, service
from wisp.api import kinds as k
from wisp.control.admission import apply_manifests
from wisp.control.controller import Controller
from wisp.control.k8s_events import EventRecorder, ScaleEvents, SelectorError, StatusEvents, field_filter
from wisp.store import Store, StoreEvent


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def obj(name: str, kind: str = "Service", uid: str = "u1", namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "uid": uid}}


def test_a_repeat_is_counted_not_added() -> None:
    clock = Clock()
    recorder = EventRecorder(clock)
    recorder.record(obj("a"), "Warning", "InternalError", "boom", "wisp-serving")
    clock.now += 30
    recorder.record(obj("a"), "Warning", "InternalError", "boom", "wisp-serving")
    [event] = recorder.list()
    assert event["count"] == 2
    assert event["firstTimestamp"] < event["lastTimestamp"]
    assert event["involvedObject"] == {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "a",
                                       "namespace": "default", "uid": "u1"}


def test_the_count_cap_drops_the_least_recently_seen() -> None:
    recorder = EventRecorder(Clock(), max_events=10)
    for i in range(25):
        recorder.record(obj(f"o{i}"), "Normal", "Ready", "ok", "wisp-serving")
    recorder.record(obj("o20"), "Normal", "Ready", "ok", "wisp-serving")  # seen again: now the newest
    recorder.record(obj("new"), "Normal", "Ready", "ok", "wisp-serving")
    names = [e["involvedObject"]["name"] for e in recorder.list()]
    assert len(names) == 10 and names[-2:] == ["o20", "new"] and "o15" not in names


def test_events_expire_after_the_ttl_since_last_seen() -> None:
    clock = Clock()
    recorder = EventRecorder(clock, ttl=3600)
    recorder.record(obj("old"), "Normal", "Ready", "ok", "c")
    clock.now += 1800
    recorder.record(obj("kept"), "Normal", "Ready", "ok", "c")
    clock.now += 1801
    assert [e["involvedObject"]["name"] for e in recorder.list()] == ["kept"]
    recorder.record(obj("kept"), "Normal", "Ready", "ok", "c")  # a repeat renews it
    clock.now += 3599
    assert [e["involvedObject"]["name"] for e in recorder.list()] == ["kept"]
    clock.now += 2
    assert recorder.list() == []


def test_messages_are_bounded() -> None:
    recorder = EventRecorder(Clock())
    recorder.record(obj("a"), "Warning", "X", "m" * 100_000, "c")
    assert len(recorder.list()[0]["message"]) == 1024


def test_status_changes_become_events() -> None:
    recorder = EventRecorder(Clock())
    watcher = StatusEvents(Store(None, Clock()), recorder)
    owner = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "hello", "uid": "svc-uid",
             "controller": True}
    config = {"metadata": {"name": "hello", "namespace": "default", "uid": "cfg-uid", "ownerReferences": [owner]}}
    watcher.observe(StoreEvent("ADDED", k.CONFIGURATION, config))

    def with_ready(status: str, reason: str = "", message: str = "") -> dict[str, Any]:
        return {**obj("hello", "Configuration", "cfg-uid"),
                "status": {"conditions": [{"type": "Ready", "status": status, "reason": reason,
                                           "message": message}]}}

    watcher.observe(StoreEvent("MODIFIED", k.CONFIGURATION, with_ready("Unknown")))
    watcher.observe(StoreEvent("MODIFIED", k.CONFIGURATION, with_ready("False", "RevisionFailed", "no image")))
    watcher.observe(StoreEvent("MODIFIED", k.CONFIGURATION, with_ready("False", "RevisionFailed", "no image")))
    watcher.observe(StoreEvent("MODIFIED", k.CONFIGURATION, with_ready("True")))
    seen = [(e["involvedObject"]["kind"], e["involvedObject"].get("uid"), e["type"], e["reason"], e["message"],
             e["count"]) for e in recorder.list()]
    assert seen == [
        ("Service", "svc-uid", "Normal", "Created", 'Created Configuration "hello"', 1),
        ("Configuration", "cfg-uid", "Warning", "RevisionFailed", "no image", 1),
        ("Configuration", "cfg-uid", "Normal", "Ready", 'Configuration "hello" is Ready', 1),
    ]


def test_scale_decisions_become_events_on_the_revision() -> None:
    store = Store(None, Clock())
    store.open()
    apply_manifests([{"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
                      "metadata": {"name": "hello-00001"}, "spec": {"containers": [{"image": "./app"}]}}], store)
    recorder = EventRecorder(Clock())
    scale = ScaleEvents(store, recorder, {})
    scale.changed("default", "hello-00001", 3, "panic")
    scale.changed("default", "hello-00001", 3, "panic")  # no change, no event
    scale.changed("default", "hello-00001", 0, "idle")
    scale.changed("default", "gone-00001", 2, "")  # a revision no longer stored: nothing to report on
    assert [(e["reason"], e["message"]) for e in recorder.list()] == [
        ("ScaledUp", "desired scale 0 → 3 (panic)"), ("ScaledDown", "desired scale 3 → 0 (idle)")]
    uid = store.get(k.REVISION, "default", "hello-00001")["metadata"]["uid"]  # type: ignore[index]
    assert recorder.list()[0]["involvedObject"]["uid"] == uid


def test_field_selectors() -> None:
    recorder = EventRecorder(Clock())
    recorder.record(obj("a", uid="1"), "Normal", "Ready", "ok", "c")
    recorder.record(obj("b", uid="2"), "Warning", "Failed", "no", "c")
    events = recorder.list()
    pick = field_filter("involvedObject.name=a,involvedObject.namespace=default,involvedObject.kind=Service,"
                        "involvedObject.uid=1")
    assert [e["involvedObject"]["name"] for e in events if pick(e)] == ["a"]
    assert [e["reason"] for e in events if field_filter("type!=Normal")(e)] == ["Failed"]
    assert [e["reason"] for e in events if field_filter("")(e)] == ["Ready", "Failed"]
    with pytest.raises(SelectorError, match=r"spec\.nothing"):
        field_filter("spec.nothing=1")
    with pytest.raises(SelectorError):
        field_filter("justaword")


async def test_the_api_serves_events_read_only() -> None:
    store = Store(None, Clock())
    store.open()
    apply_manifests([service("hello")], store)
    async with read_api(store) as (http, surface):
        hello = store.get(k.SERVICE, "default", "hello")
        assert hello is not None
        surface.recorder.record(hello, "Normal", "Created", 'Created Route "hello"', "wisp-serving")
        uid = hello["metadata"]["uid"]
        listed = (await http.get("/api/v1/namespaces/default/events", params={
            "fieldSelector": f"involvedObject.name=hello,involvedObject.namespace=default,"
                             f"involvedObject.kind=Service,involvedObject.uid={uid}", "limit": "500"})).json()
        assert listed["kind"] == "EventList" and [e["reason"] for e in listed["items"]] == ["Created"]
        name = listed["items"][0]["metadata"]["name"]
        assert (await http.get(f"/api/v1/namespaces/default/events/{name}")).json()["reason"] == "Created"
        assert (await http.get("/api/v1/namespaces/other/events")).json()["items"] == []
        assert len((await http.get("/api/v1/events")).json()["items"]) == 1
        bad = await http.get("/api/v1/events", params={"fieldSelector": "nope=1"})
        assert bad.status_code == 400 and "nope" in bad.json()["message"]
        assert (await http.get("/api/v1/events", params={"labelSelector": "app=x"})).json()["items"] == []
        assert len((await http.get("/api/v1/events", params={"labelSelector": "app!=x"})).json()["items"]) == 1
        for method in ("POST", "PUT", "DELETE"):
            path = "/api/v1/namespaces/default/events" + ("" if method == "POST" else f"/{name}")
            refused = await http.request(method, path, json={"kind": "Event"})
            assert refused.status_code == 405, method
        assert (await http.get("/api/v1/namespaces/default/events/missing")).status_code == 404
    store.close()


class Failing:
    kinds = (k.SERVICE,)

    async def reconcile(self, kind: k.Kind, namespace: str, name: str) -> None:
        raise RuntimeError("the route table is gone")

    async def deleted(self, kind: k.Kind, resource: dict[str, Any]) -> None:
        return None

    def dependents(self, event: StoreEvent) -> list[tuple[k.Kind, str, str]]:
        return []


async def test_a_failed_reconcile_is_a_warning_on_the_object() -> None:
    store = Store(None, Clock())
    store.open()
    apply_manifests([service("hello")], store)
    async with read_api(store) as (http, surface):
        failed = asyncio.Event()

        def on_failure(kind: k.Kind, namespace: str, name: str, error: Exception) -> None:
            surface.reconcile_failed(kind, namespace, name, error)
            failed.set()

        controller = Controller(store, [Failing()], on_failure=on_failure)
        await controller.start()
        try:
            await asyncio.wait_for(failed.wait(), 10)
        finally:
            await controller.stop()
        [event] = (await http.get("/api/v1/namespaces/default/events")).json()["items"]
        assert (event["type"], event["reason"], event["message"]) == (
            "Warning", "InternalError", "RuntimeError: the route table is gone")
        stored = store.get(k.SERVICE, "default", "hello")
        assert stored is not None and event["involvedObject"]["uid"] == stored["metadata"]["uid"]
    store.close()


async def _watch_events(surface: Any, query: bytes, on_first_chunk: Any) -> list[dict[str, Any]]:
    """A watch through the events route, in process; `on_first_chunk` runs once the first lines are out (the
    watcher is registered by then)."""
    [route] = [r for r in surface.routes() if getattr(r, "path", "") == "/api/v1/namespaces/{namespace}/events"
               and "GET" in (r.methods or ())]
    body: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            body.append(message["body"])
            if len(body) == 1:
                on_first_chunk()

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    path = "/api/v1/namespaces/default/events"
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query, "headers": [], "scheme": "http", "http_version": "1.1",
             "server": ("wisp", 80), "client": ("127.0.0.1", 1), "app": None}
    _, matched = route.matches(scope)
    await asyncio.wait_for(route.handle({**scope, **matched}, receive, send), 10)
    return [json.loads(line) for line in b"".join(body).splitlines()]


async def test_a_watch_sends_what_is_there_then_what_comes() -> None:
    store = Store(None, Clock())
    store.open()
    async with read_api(store) as (_, surface):
        recorder = surface.recorder
        recorder.record(obj("a"), "Normal", "Ready", "ok", "c")
        recorder.record(obj("b", namespace="other"), "Normal", "Ready", "ok", "c")

        def more() -> None:
            recorder.record(obj("a"), "Normal", "Ready", "ok", "c")  # a repeat: MODIFIED, count 2
            recorder.record(obj("c"), "Warning", "Failed", "no", "c")
            recorder.record(obj("d", namespace="other"), "Normal", "Ready", "ok", "c")  # another namespace

        seen = await _watch_events(surface, b"watch=1&timeoutSeconds=0.5", more)
        assert [(e["type"], e["object"]["involvedObject"]["name"], e["object"]["count"]) for e in seen] == [
            ("ADDED", "a", 1), ("MODIFIED", "a", 2), ("ADDED", "c", 1)]
        since = recorder.version
        recorder.record(obj("e"), "Normal", "Ready", "ok", "c")
        resumed = await _watch_events(surface, f"watch=1&timeoutSeconds=0.1&resourceVersion={since}".encode(),
                                      lambda: None)
        assert [e["object"]["involvedObject"]["name"] for e in resumed] == ["e"]
    store.close()


async def test_a_watcher_that_falls_behind_is_ended_as_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    from wisp.control import k8s_events

    monkeypatch.setattr(k8s_events, "WATCH_BUFFER", 3)
    store = Store(None, Clock())
    store.open()
    async with read_api(store) as (_, surface):
        recorder = surface.recorder
        recorder.record(obj("first"), "Normal", "Ready", "ok", "c")

        def flood() -> None:  # all at once: the stream cannot take any before the buffer is full
            for i in range(10):
                recorder.record(obj(f"o{i}"), "Normal", "Ready", "ok", "c")

        seen = await _watch_events(surface, b"watch=1&timeoutSeconds=5", flood)
        assert seen[-1]["type"] == "ERROR" and seen[-1]["object"]["code"] == 410
        assert len(seen) < 12
    store.close()


@pytest.mark.parametrize("query", ["watch=1&resourceVersion=abc", "watch=1&timeoutSeconds=soon",
                                   "watch=1&resourceVersion=999999"])
async def test_bad_watch_parameters_are_refused(query: str) -> None:
    store = Store(None, Clock())
    store.open()
    async with read_api(store) as (http, _):
        response = await http.get(f"/api/v1/namespaces/default/events?{query}")
        assert response.status_code == 400 and response.json()["reason"] == "BadRequest"
    store.close()


async def test_watches_end_when_the_daemon_stops() -> None:
    store = Store(None, Clock())
    store.open()
    async with read_api(store) as (_, surface):
        surface.recorder.record(obj("a"), "Normal", "Ready", "ok", "c")
        seen = await _watch_events(surface, b"watch=1&timeoutSeconds=600", surface.end_streams)
        assert [e["type"] for e in seen] == ["ADDED"]  # and it ended, long before its timeout
    store.close()
