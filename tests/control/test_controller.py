"""The reconcile loop against a real in-memory store and a scripted reconciler.

Semantics are those of client-go's work queue as Knative's controllers use it: one reconcile of a key at a time,
different keys in parallel, a key changed during its reconcile runs once more (however many changes came), and a
failed key is retried after 0.5 s, doubling to 30 s. The retry timers run on a fake clock (FakeTimers) so the
backoff is checked without waiting; every other hand-off is awaited on an asyncio event or queue, never on a sleep.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from wisp.api import kinds as k
from wisp.api.kinds import Kind
from wisp.control import controller as controller_module
from wisp.control.controller import RETRY_MAX, RETRY_START, Controller, Key, keys_of, owner_keys
from wisp.store import Store, StoreEvent
from wisp.types import Resource

WAIT = 5.0  # an upper bound on waiting for something that is expected to happen at once


async def next_of(queue: asyncio.Queue[Key]) -> Key:
    return await asyncio.wait_for(queue.get(), WAIT)


def ksvc(name: str, image: str = "./app") -> Resource:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}


def config_map(name: str, data: dict[str, str] | None = None) -> Resource:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data or {}}


def key(name: str, kind: Kind = k.SERVICE, namespace: str = "default") -> Key:
    return (kind, namespace, name)


@dataclass
class ScriptedReconciler:
    """A Reconciler for Services and Configurations that records what it did and does what the test says.

    `gates[key]` makes the next reconciles of `key` wait until the event is set; `failures[key]` makes that
    many reconciles of `key` raise; `depends[(kind, name)]` are the keys `dependents` returns for such an event.
    """

    store: Store
    kinds: tuple[Kind, ...] = (k.SERVICE, k.CONFIGURATION)
    runs: list[tuple[Key, str | None]] = field(default_factory=list)  # key and the image it read
    started: asyncio.Queue[Key] = field(default_factory=asyncio.Queue)
    finished: asyncio.Queue[Key] = field(default_factory=asyncio.Queue)
    seen: asyncio.Queue[Key] = field(default_factory=asyncio.Queue)  # every store event the watch handled
    gates: dict[Key, asyncio.Event] = field(default_factory=dict)
    failures: Counter[Key] = field(default_factory=Counter)
    active: Counter[Key] = field(default_factory=Counter)
    most_active: Counter[Key] = field(default_factory=Counter)
    cleaned: list[tuple[Kind, Resource]] = field(default_factory=list)
    cleanup_fails: bool = False
    depends: dict[tuple[Kind, str], list[Key]] = field(default_factory=dict)

    def runs_of(self, wanted: Key) -> list[str | None]:
        return [image for run_key, image in self.runs if run_key == wanted]

    async def reconcile(self, kind: Kind, namespace: str, name: str) -> None:
        this = (kind, namespace, name)
        self.active[this] += 1
        self.most_active[this] = max(self.most_active[this], self.active[this])
        try:
            resource = self.store.get(kind, namespace, name)
            image = None if resource is None else resource["spec"]["template"]["spec"]["containers"][0]["image"]
            self.runs.append((this, image))
            self.started.put_nowait(this)
            gate = self.gates.get(this)
            if gate is not None:
                await gate.wait()
            if self.failures[this] > 0:
                self.failures[this] -= 1
                raise RuntimeError(f"scripted failure of {name}")
        finally:
            self.active[this] -= 1
            self.finished.put_nowait(this)

    async def deleted(self, kind: Kind, resource: Resource) -> None:
        self.cleaned.append((kind, resource))
        if self.cleanup_fails:
            raise RuntimeError("scripted cleanup failure")

    def dependents(self, event: StoreEvent) -> Iterable[Key]:
        kind, _, name = event.key
        self.seen.put_nowait(event.key)
        return self.depends.get((kind, name), [])


async def settle(controller: Controller) -> None:
    """Until the watch queue is drained and no reconcile is running: reads the controller's own bookkeeping
    (`_events`, `_running`), the one place a test can learn that nothing more is going to happen."""
    for _ in range(10_000):
        running = list(controller._running.values())
        if running:
            await asyncio.gather(*running, return_exceptions=True)
            continue
        if controller._events is not None and not controller._events.empty():
            await asyncio.sleep(0)
            continue
        await asyncio.sleep(0)  # let the watch loop finish handling the event it took last
        if not controller._running and (controller._events is None or controller._events.empty()):
            return
    raise AssertionError("the controller did not settle")


# -- fake timers -----------------------------------------------------------------------------------------


@dataclass(eq=False)
class FakeHandle:
    when: float
    delay: float
    callback: Callable[..., object]
    args: tuple[Any, ...]
    cancelled: bool = False
    fired: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeTimers:
    """The controller's event-loop timers (`loop.call_later`) on a fake clock: `advance` fires what is due."""

    def __init__(self) -> None:
        self.now = 0.0
        self.handles: list[FakeHandle] = []

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> FakeHandle:
        handle = FakeHandle(self.now + delay, delay, callback, args)
        self.handles.append(handle)
        return handle

    @property
    def pending(self) -> list[float]:
        """The delays of the timers that have neither fired nor been cancelled."""
        return [h.delay for h in self.handles if not (h.fired or h.cancelled)]

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = sorted((h for h in self.handles if not (h.fired or h.cancelled) and h.when <= self.now),
                     key=lambda h: h.when)
        for handle in due:
            handle.fired = True
            handle.callback(*handle.args)


class _LoopWithFakeTimers:
    def __init__(self, loop: asyncio.AbstractEventLoop, timers: FakeTimers) -> None:
        self._loop, self.call_later = loop, timers.call_later

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


class _AsyncioWithFakeTimers:
    """What the controller module sees as `asyncio`: the real one, but its running loop's timers are fake."""

    def __init__(self, timers: FakeTimers) -> None:
        self._timers = timers

    def get_running_loop(self) -> _LoopWithFakeTimers:
        return _LoopWithFakeTimers(asyncio.get_running_loop(), self._timers)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


@pytest.fixture
def timers(monkeypatch: pytest.MonkeyPatch) -> FakeTimers:
    fake = FakeTimers()
    monkeypatch.setattr(controller_module, "asyncio", _AsyncioWithFakeTimers(fake))
    return fake


# -- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(None, lambda: 0.0)
    s.open()
    yield s
    s.close()


@pytest.fixture
def reconciler(store: Store) -> ScriptedReconciler:
    return ScriptedReconciler(store)


@pytest_asyncio.fixture
async def controller(store: Store, reconciler: ScriptedReconciler) -> AsyncIterator[Controller]:
    c = Controller(store, [reconciler])
    await c.start()
    yield c
    for gate in reconciler.gates.values():
        gate.set()
    await c.stop()


# -- start and watch -------------------------------------------------------------------------------------


async def test_start_reconciles_what_is_stored_of_its_kinds(store: Store, reconciler: ScriptedReconciler) -> None:
    store.create(k.SERVICE, ksvc("a"))
    store.create(k.SERVICE, {**ksvc("b"), "metadata": {"name": "b", "namespace": "team"}})
    store.create(k.CONFIG_MAP, config_map("not-mine"))
    controller = Controller(store, [reconciler])
    await controller.start()
    try:
        await settle(controller)
        assert sorted(run_key for run_key, _ in reconciler.runs) == sorted([key("a"), key("b", namespace="team")])
    finally:
        await controller.stop()


@dataclass(frozen=True)
class WatchCase:
    name: str
    change: Callable[[Store], object]
    runs: list[Key]
    cleaned: list[tuple[str, str]] = field(default_factory=list)


def _status(name: str) -> Callable[[Store], object]:
    return lambda s: s.put_status(k.SERVICE, "default", name, {"observedGeneration": 1})


WATCH_CASES = [
    WatchCase("create", lambda s: s.create(k.SERVICE, ksvc("new")), [key("new")]),
    WatchCase("spec update", lambda s: s.replace(k.SERVICE, ksvc("old", image="./v2")), [key("old")]),
    WatchCase("status update", _status("old"), [key("old")]),
    WatchCase("no-op apply", lambda s: s.apply([(k.SERVICE, ksvc("old"))]), []),
    WatchCase("a kind it does not reconcile", lambda s: s.create(k.CONFIG_MAP, config_map("cm")), []),
    WatchCase("delete: cleanup, no reconcile", lambda s: s.delete(k.SERVICE, "default", "old"), [],
              [("Service", "old")]),
    WatchCase("delete of an owner: cleanup of each owned object of its kinds",
              lambda s: s.delete(k.SERVICE, "default", "owner"), [],
              [("Configuration", "owned"), ("Service", "owner")]),
]


@pytest.mark.parametrize("case", WATCH_CASES, ids=lambda c: c.name)
async def test_store_changes_become_work(
    store: Store, reconciler: ScriptedReconciler, case: WatchCase,
) -> None:
    store.create(k.SERVICE, ksvc("old"))
    owner = store.create(k.SERVICE, ksvc("owner"))
    store.create(k.CONFIGURATION, {
        "apiVersion": "serving.knative.dev/v1", "kind": "Configuration",
        "metadata": {"name": "owned", "ownerReferences": [{"kind": "Service", "name": "owner",
                                                            "uid": owner["metadata"]["uid"]}]},
        "spec": {"template": {"spec": {"containers": [{"image": "./app"}]}}}})
    controller = Controller(store, [reconciler])
    await controller.start()
    try:
        await settle(controller)
        reconciler.runs.clear()
        case.change(store)
        await settle(controller)
        assert [run_key for run_key, _ in reconciler.runs] == case.runs
        assert sorted((kind.kind, r["metadata"]["name"]) for kind, r in reconciler.cleaned) == case.cleaned
    finally:
        await controller.stop()


async def test_cleanup_gets_the_last_state_of_the_deleted_object(
    store: Store, reconciler: ScriptedReconciler, controller: Controller,
) -> None:
    store.create(k.SERVICE, ksvc("gone"))
    last = store.put_status(k.SERVICE, "default", "gone", {"url": "http://gone"})
    store.delete(k.SERVICE, "default", "gone")
    await settle(controller)
    assert reconciler.cleaned == [(k.SERVICE, last)]


async def test_a_failing_cleanup_is_logged_and_the_watch_goes_on(
    store: Store, reconciler: ScriptedReconciler, controller: Controller, caplog: pytest.LogCaptureFixture,
) -> None:
    reconciler.cleanup_fails = True
    store.create(k.SERVICE, ksvc("gone"))
    store.delete(k.SERVICE, "default", "gone")
    store.create(k.SERVICE, ksvc("after"))
    await settle(controller)
    assert key("after") in [run_key for run_key, _ in reconciler.runs]
    assert any("cleaning up Service gone failed" in r.getMessage() for r in caplog.records)


async def test_dependents_of_a_change_are_reconciled(
    store: Store, reconciler: ScriptedReconciler, controller: Controller,
) -> None:
    """A ConfigMap the reconciler does not own, but a Service depends on: its change reconciles the Service."""
    store.create(k.SERVICE, ksvc("uses-it"))
    await settle(controller)
    reconciler.runs.clear()
    reconciler.depends[(k.CONFIG_MAP, "settings")] = [key("uses-it"), key("x", kind=k.CONFIG_MAP)]
    store.create(k.CONFIG_MAP, config_map("settings"))
    await settle(controller)
    assert [run_key for run_key, _ in reconciler.runs] == [key("uses-it")]  # the ConfigMap key has no reconciler


async def test_enqueue_of_a_kind_without_a_reconciler_is_ignored(
    reconciler: ScriptedReconciler, controller: Controller,
) -> None:
    controller.enqueue(k.CONFIG_MAP, "default", "settings")
    controller.enqueue_all([key("a", kind=k.ROUTE), key("b")])
    await settle(controller)
    assert [run_key for run_key, _ in reconciler.runs] == [key("b")]


# -- one key at a time, keys in parallel ------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "runs"), [
    pytest.param(0, 1, id="no change during the reconcile: one run"),
    pytest.param(1, 2, id="one change: once more"),
    pytest.param(3, 2, id="three changes: still once more"),
])
async def test_a_key_changed_during_its_reconcile_runs_once_more(
    store: Store, reconciler: ScriptedReconciler, controller: Controller, changes: int, runs: int,
) -> None:
    this = key("busy")
    gate = reconciler.gates[this] = asyncio.Event()
    store.create(k.SERVICE, ksvc("busy", image="./v0"))
    assert await next_of(reconciler.started) == this
    for i in range(1, changes + 1):
        store.replace(k.SERVICE, ksvc("busy", image=f"./v{i}"))
        assert await next_of(reconciler.seen) == this  # the watch has handled this change
    gate.set()
    await settle(controller)
    images = reconciler.runs_of(this)
    assert len(images) == runs
    assert images[-1] == f"./v{changes}"  # the last run sees the latest object
    assert reconciler.most_active[this] == 1


async def test_a_key_is_never_reconciled_twice_at_once(
    reconciler: ScriptedReconciler, controller: Controller,
) -> None:
    this = key("one")
    gate = reconciler.gates[this] = asyncio.Event()
    for _ in range(5):
        controller.enqueue(*this)
    await next_of(reconciler.started)
    for _ in range(5):
        controller.enqueue(*this)
    gate.set()
    await settle(controller)
    assert reconciler.most_active[this] == 1
    assert len(reconciler.runs_of(this)) == 2


async def test_different_keys_reconcile_concurrently(reconciler: ScriptedReconciler, controller: Controller) -> None:
    first, second = key("first"), key("second", kind=k.CONFIGURATION)
    gates = [reconciler.gates.setdefault(first, asyncio.Event()), reconciler.gates.setdefault(second, asyncio.Event())]
    controller.enqueue(*first)
    controller.enqueue(*second)
    # Both have started while neither is allowed to finish.
    assert {await next_of(reconciler.started), await next_of(reconciler.started)} == {first, second}
    assert reconciler.finished.empty()
    gates[1].set()
    assert await next_of(reconciler.finished) == second  # the second finishes while the first still runs
    assert reconciler.active[first] == 1
    gates[0].set()
    assert await next_of(reconciler.finished) == first


# -- retries ------------------------------------------------------------------------------------------------


def _backoff(failures: int) -> list[float]:
    return [min(RETRY_MAX, RETRY_START * 2 ** i) for i in range(failures)]


def test_the_backoff_is_knatives() -> None:
    assert (RETRY_START, RETRY_MAX) == (0.5, 30.0)
    assert _backoff(9) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


@pytest.mark.parametrize("failures", [
    pytest.param(1, id="one failure"),
    pytest.param(3, id="three failures"),
    pytest.param(8, id="eight failures: capped at 30 s"),
])
async def test_a_failed_reconcile_is_retried_with_doubling_backoff(
    timers: FakeTimers, reconciler: ScriptedReconciler, controller: Controller, failures: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    this = key("flaky")
    reconciler.failures[this] = failures
    controller.enqueue(*this)
    await settle(controller)
    for attempt, delay in enumerate(_backoff(failures), start=1):
        assert len(reconciler.runs_of(this)) == attempt
        assert timers.pending == [delay]
        timers.advance(delay * 0.99)
        await settle(controller)
        assert len(reconciler.runs_of(this)) == attempt, "retried before its backoff"
        timers.advance(delay * 0.01)
        await settle(controller)
    assert len(reconciler.runs_of(this)) == failures + 1
    assert timers.pending == []  # succeeded: nothing more scheduled
    assert sum("reconciling Service default/flaky failed" in r.getMessage() for r in caplog.records) == failures


async def test_success_resets_the_backoff(
    timers: FakeTimers, reconciler: ScriptedReconciler, controller: Controller,
) -> None:
    this = key("flaky")
    reconciler.failures[this] = 3
    controller.enqueue(*this)
    await settle(controller)
    for delay in _backoff(3):
        timers.advance(delay)
        await settle(controller)
    assert timers.pending == []
    reconciler.failures[this] = 1
    controller.enqueue(*this)
    await settle(controller)
    assert timers.pending == [RETRY_START]


async def test_backoff_is_per_key(timers: FakeTimers, reconciler: ScriptedReconciler, controller: Controller) -> None:
    bad, good = key("bad"), key("good")
    reconciler.failures[bad] = 5
    reconciler.failures[good] = 1
    controller.enqueue(*bad)
    await settle(controller)
    for delay in (0.5, 1.0):
        timers.advance(delay)
        await settle(controller)
    assert timers.pending == [2.0]
    controller.enqueue(*good)
    await settle(controller)
    assert sorted(timers.pending) == [RETRY_START, 2.0]  # the good key's first failure starts from 0.5


async def test_a_change_while_waiting_for_a_retry_is_reconciled_at_once(
    timers: FakeTimers, store: Store, reconciler: ScriptedReconciler, controller: Controller,
) -> None:
    this = key("broken")
    reconciler.failures[this] = 1
    store.create(k.SERVICE, ksvc("broken", image="./bad"))
    await settle(controller)
    assert timers.pending == [RETRY_START]
    store.replace(k.SERVICE, ksvc("broken", image="./fixed"))
    await settle(controller)
    assert reconciler.runs_of(this) == ["./bad", "./fixed"]


async def test_a_change_during_a_failing_reconcile_is_not_held_back_by_the_backoff(
    timers: FakeTimers, store: Store, reconciler: ScriptedReconciler, controller: Controller,
) -> None:
    this = key("broken")
    reconciler.failures[this] = 1
    gate = reconciler.gates[this] = asyncio.Event()
    store.create(k.SERVICE, ksvc("broken", image="./bad"))
    await next_of(reconciler.started)
    store.replace(k.SERVICE, ksvc("broken", image="./fixed"))
    assert await next_of(reconciler.seen) == this
    gate.set()
    await settle(controller)  # no timer has fired: the fake clock has not moved
    assert reconciler.runs_of(this) == ["./bad", "./fixed"]


async def test_a_retry_fires_on_the_real_event_loop(
    monkeypatch: pytest.MonkeyPatch, reconciler: ScriptedReconciler, controller: Controller,
) -> None:
    """The same path without fake timers: the retry is really scheduled on the running loop."""
    monkeypatch.setattr(controller_module, "RETRY_START", 0.001)
    this = key("flaky")
    reconciler.failures[this] = 2
    controller.enqueue(*this)
    for _ in range(3):
        assert await next_of(reconciler.finished) == this
    await settle(controller)
    assert len(reconciler.runs_of(this)) == 3


# -- stop -----------------------------------------------------------------------------------------------------


async def test_stop_cancels_running_reconciles_and_pending_retries(
    timers: FakeTimers, store: Store, reconciler: ScriptedReconciler,
) -> None:
    controller = Controller(store, [reconciler])
    await controller.start()
    reconciler.failures[key("retrying")] = 1
    controller.enqueue(*key("retrying"))
    await settle(controller)
    reconciler.gates[key("stuck")] = asyncio.Event()  # never set
    controller.enqueue(*key("stuck"))
    await next_of(reconciler.started)

    await controller.stop()

    assert [h.cancelled for h in timers.handles] == [True]
    assert reconciler.active[key("stuck")] == 0  # the stuck reconcile was cancelled (its finally ran)
    runs = len(reconciler.runs)
    store.create(k.SERVICE, ksvc("after-stop"))
    await asyncio.sleep(0)
    assert len(reconciler.runs) == runs  # no longer watching


# -- key helpers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("resource", "expected"), [
    pytest.param({"metadata": {"name": "r", "namespace": "team", "ownerReferences": [
        {"kind": "Configuration", "name": "c", "uid": "1"}]}},
        [(k.CONFIGURATION, "team", "c")], id="one owner"),
    pytest.param({"metadata": {"name": "r", "namespace": "team", "ownerReferences": [
        {"kind": "Configuration", "name": "c", "uid": "1"}, {"kind": "Deployment", "name": "d", "uid": "2"},
        {"kind": "Service", "name": "s", "uid": "3"}]}},
        [(k.CONFIGURATION, "team", "c"), (k.SERVICE, "team", "s")], id="owners of unknown kinds are skipped"),
    pytest.param({"metadata": {"name": "r"}}, [], id="no owners"),
])
def test_owner_keys(resource: Resource, expected: list[Key]) -> None:
    by_name = {"Configuration": k.CONFIGURATION, "Service": k.SERVICE}
    assert owner_keys(resource, by_name.get) == expected


def test_keys_of() -> None:
    resources = [{"metadata": {"name": "a", "namespace": "team"}}, {"metadata": {"name": "b"}}]
    assert keys_of(k.ROUTE, resources) == [(k.ROUTE, "team", "a"), (k.ROUTE, "", "b")]

