"""wisp's control API (build_api over a real store) served by uvicorn on a socket of its own, in a thread with its
own event loop: blocking clients (kubectl in a subprocess, the `kubernetes` package) can talk to it while the
test's loop goes on, and watches stream as they do from the daemon."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from tests.robustness.api_samples import empty_virtual
from wisp.control.api import build_api
from wisp.control.k8s_watch import WatchSettings
from wisp.store import Store

T = TypeVar("T")


class ServedApi:
    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, port: int) -> None:
        self.store = store
        self.loop = loop
        self.url = f"http://127.0.0.1:{port}"

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop (the store belongs to it) and return its result."""
        async def run() -> T:
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


@contextmanager
def served_api(state: Path | None = None, history: int = 10_000, seed: int = 7,
               watch_settings: WatchSettings | None = None, app_wrapper: Callable[[Any], Any] | None = None,
               send_buffer: int | None = None) -> Iterator[ServedApi]:
    """`send_buffer`: SO_SNDBUF of the connections it accepts (small: a client that stops reading blocks soon)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)  # accepted sockets inherit it
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    store = Store(None if state is None else state / "store.db", lambda: 1_700_000_000.0, history=history)
    store.open()
    app = build_api(store, empty_virtual(), rng=random.Random(seed), watch_settings=watch_settings)
    if app_wrapper is not None:
        app = app_wrapper(app)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    ready = threading.Event()
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            await server.startup(sockets=[sock])
            ready.set()
            while not server.should_exit:
                await asyncio.sleep(0.05)
            store.watchers.end_all()  # as the daemon does before its API server stops
            await server.shutdown(sockets=[sock])

        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=run, name="served-api", daemon=True)
    thread.start()
    if not ready.wait(20):
        raise AssertionError("the API server did not start")
    try:
        yield ServedApi(store, holder["loop"], port)
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
        store.close()
