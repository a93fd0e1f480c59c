"""A watch's time logic on a fake clock: bookmarks every interval, the stream's end at timeoutSeconds, and
nothing in between unless something changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from wisp.api import kinds as k
from wisp.control.k8s_selectors import parse
from wisp.control.k8s_verbs import redact
from wisp.control.k8s_watch import Encoder, WatchSettings, watch
from wisp.store import Store


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ksvc(name: str, image: str = "./app") -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}


async def nothing_yet(pending: asyncio.Future[bytes]) -> bool:
    """True when the stream has nothing to say for a few turns of the loop (the clock has not moved)."""
    for _ in range(20):
        await asyncio.sleep(0)
    return not pending.done()


async def test_bookmarks_and_timeout_follow_the_clock() -> None:
    clock = FakeClock()
    store = Store(None, clock)
    store.open()
    store.create(k.SERVICE, ksvc("a"))
    settings = WatchSettings(bookmark_interval=60, default_timeout=1800, clock=clock)
    params = {"allowWatchBookmarks": "true", "timeoutSeconds": "300"}
    response = watch(store, k.SERVICE, "default", parse(None, None), params, Encoder(redact), settings)
    body = cast(AsyncIterator[bytes], response.body_iterator)
    assert (await anext(body)).startswith(b'{"type":"ADDED"')

    pending = asyncio.ensure_future(anext(body))
    assert await nothing_yet(pending)
    clock.now += 59
    store.watchers.poke()
    assert await nothing_yet(pending)  # not yet a minute
    clock.now += 1
    store.watchers.poke()
    bookmark = await pending
    assert bookmark.startswith(b'{"type":"BOOKMARK"') and f'"resourceVersion":"{store.version()}"'.encode() in bookmark

    pending = asyncio.ensure_future(anext(body))
    store.apply([(k.SERVICE, ksvc("a", "./v2"))])  # a change needs no clock
    assert (await pending).startswith(b'{"type":"MODIFIED"')

    clock.now += 300  # timeoutSeconds since the watch began
    store.watchers.poke()
    pending = asyncio.ensure_future(anext(body))
    rest = []
    try:
        while True:
            rest.append(await pending)
            pending = asyncio.ensure_future(anext(body))
    except StopAsyncIteration:
        pass
    assert all(line.startswith(b'{"type":"BOOKMARK"') for line in rest)  # at most a due bookmark, then the end
    assert len(store.watchers) == 0
    store.close()
