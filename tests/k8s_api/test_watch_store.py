"""Watch semantics on the store itself: resume from a resourceVersion, Expired once the history is compacted, no
event lost across a burst, slow watchers ended, watches ended by namespace deletion and shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wisp.api import kinds as k
from wisp.control.k8s_selectors import parse
from wisp.control.k8s_watch import accept_for
from wisp.store import Expired, Store, Watcher
from wisp.types import Resource


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def ksvc(name: str, namespace: str = "default", image: str = "./app", **labels: str) -> Resource:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": meta,
            "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}


def open_store(history: int = 10_000) -> Store:
    store = Store(None, FakeClock(), history=history)
    store.open()
    return store


def every_service(buffer: int = 1_000, namespace: str | None = None) -> Watcher:
    return Watcher(accept_for(k.SERVICE, namespace, parse(None, None)), namespace, buffer)


def test_a_watch_resumes_after_the_version_it_names() -> None:
    store = open_store()
    store.create(k.SERVICE, ksvc("a"))
    store.create(k.SERVICE, ksvc("b"))
    resume_at = store.version()
    store.apply([(k.SERVICE, ksvc("a", image="./v2"))])
    store.delete(k.SERVICE, "default", "b")
    store.create(k.SERVICE, ksvc("c"))

    watcher = every_service()
    store.watchers.start(watcher, resume_at)
    got = [(c.type, c.event.resource["metadata"]["name"], c.version) for c in watcher.take()]
    assert [(t, n) for t, n, _ in got] == [("MODIFIED", "a"), ("DELETED", "b"), ("ADDED", "c")]
    versions = [v for _, _, v in got]
    assert versions == sorted(versions) and versions[0] > resume_at and versions[-1] == store.version()
    # The deletion has its own version, after b's last one, as the API server reports it.
    assert versions[1] > int(store.watchers.history.since(resume_at)[1][1].resource["metadata"]["resourceVersion"])


def test_resuming_at_the_latest_version_replays_nothing_and_follows_what_comes() -> None:
    store = open_store()
    store.create(k.SERVICE, ksvc("a"))
    watcher = every_service()
    store.watchers.start(watcher, store.version())
    assert watcher.take() == []
    store.create(k.SERVICE, ksvc("b"))
    assert [c.event.resource["metadata"]["name"] for c in watcher.take()] == ["b"]


def test_a_version_older_than_the_history_is_expired() -> None:
    store = open_store(history=5)
    first = store.version()
    for index in range(12):
        store.create(k.SERVICE, ksvc(f"s{index}"))
    with pytest.raises(Expired):
        store.watchers.start(every_service(), first)
    floor = store.watchers.history.floor
    with pytest.raises(Expired):
        store.watchers.start(every_service(), floor - 1)
    watcher = every_service()
    store.watchers.start(watcher, floor)  # the oldest resumable version replays the five kept changes
    assert len(watcher.take()) == 5


def test_no_event_is_lost_across_a_burst_of_a_thousand_updates() -> None:
    store = open_store()
    store.create(k.SERVICE, ksvc("busy"))
    watcher = every_service(buffer=1_000)
    store.watchers.start(watcher, store.version())

    async def run() -> list[int]:
        seen: list[int] = []

        async def consume() -> None:
            while len(seen) < 1_000:
                await watcher.wait(5)
                seen.extend(c.version for c in watcher.take())

        consumer = asyncio.create_task(consume())
        for index in range(1_000):
            store.apply([(k.SERVICE, ksvc("busy", image=f"./v{index}"))])
            if index % 50 == 0:
                await asyncio.sleep(0)  # the writer is not paced by the watcher; it yields now and then
        await asyncio.wait_for(consumer, 10)
        return seen

    seen = asyncio.run(run())
    assert len(seen) == 1_000 and seen == sorted(seen) and len(set(seen)) == 1_000
    assert seen[-1] == store.version() and not watcher.expired


def test_a_watcher_that_falls_behind_its_buffer_is_ended_as_expired() -> None:
    store = open_store()
    slow = every_service(buffer=10)
    fast = every_service(buffer=100)
    store.watchers.start(slow, store.version())
    store.watchers.start(fast, store.version())
    for index in range(11):
        store.create(k.SERVICE, ksvc(f"s{index}"))
    assert slow.expired and slow.ended and slow.take() == []
    assert len(fast.take()) == 11 and not fast.expired  # the others go on


def test_a_label_selector_watch_sees_objects_enter_and_leave_the_selection() -> None:
    store = open_store()
    watcher = Watcher(accept_for(k.SERVICE, "default", parse("tier=web", None)), "default")
    store.watchers.start(watcher, store.version())
    store.create(k.SERVICE, ksvc("a", tier="db"))
    store.apply([(k.SERVICE, ksvc("a", tier="web"))])
    store.apply([(k.SERVICE, ksvc("a", image="./v2", tier="web"))])
    store.apply([(k.SERVICE, ksvc("a", tier="db"))])
    store.create(k.SERVICE, ksvc("b", namespace="other", tier="web"))
    assert [c.type for c in watcher.take()] == ["ADDED", "MODIFIED", "DELETED"]


def test_deleting_a_namespace_ends_its_watches_and_only_those() -> None:
    store = open_store()
    store.create(k.NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    in_team, everywhere = every_service(namespace="team"), every_service()
    store.watchers.start(in_team, None)
    store.watchers.start(everywhere, None)
    store.delete(k.NAMESPACE, "", "team")
    assert in_team.ended and not everywhere.ended


def test_shutdown_ends_every_watch_and_any_started_after() -> None:
    store = open_store()
    watcher = every_service()
    store.watchers.start(watcher, None)
    store.watchers.end_all()
    assert watcher.ended
    late = every_service()
    store.watchers.start(late, None)
    assert late.ended


def test_dry_run_writes_nothing_and_publishes_nothing() -> None:
    store = open_store()
    watcher = every_service()
    store.watchers.start(watcher, store.version())
    before = store.version()
    created = store.create(k.SERVICE, ksvc("ghost"), dry_run=True)
    assert created["metadata"]["name"] == "ghost"
    assert store.get(k.SERVICE, "default", "ghost") is None and store.version() == before
    assert watcher.take() == []
