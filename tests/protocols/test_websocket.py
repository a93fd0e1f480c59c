"""WebSocket upgrades through the ingress to a function and to a container instance, held as one in-flight
request for the session's life, and held while an instance starts from zero."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.serving.harness import Harness, running_daemon, service, write_function
from wisp.serving.throttler import Throttler

# An ASGI function (the `asgi` signature) that echoes, and tells what it was asked.
ASGI_ECHO = """
async def handle(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain"})
        return
    await receive()  # websocket.connect
    offered = dict(scope["headers"]).get(b"sec-websocket-protocol", b"").decode()
    await send({"type": "websocket.accept", "subprotocol": offered.split(",")[0].strip() or None})
    host = dict(scope["headers"])[b"host"].decode()
    await send({"type": "websocket.send", "text": f"hello {host} {scope['path']}?{scope['query_string'].decode()}"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked to"})
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})
        else:
            await send({"type": "websocket.send", "text": "echo:" + message["text"]})
"""

# A container instance: a plain websockets server on $PORT.
CONTAINER_ECHO = """
import asyncio, os
from websockets.asyncio.server import serve

async def echo(ws):
    host = ws.request.headers["Host"]
    await ws.send(f"hello {host} {ws.request.path}")
    async for message in ws:
        if message == "bye":
            await ws.close(4001, "asked to")
            return
        await ws.send(message[::-1] if isinstance(message, bytes) else "echo:" + message)

async def main():
    async with serve(echo, "127.0.0.1", int(os.environ["PORT"])) as server:
        await server.serve_forever()

asyncio.run(main())
"""


def open_ws(h: Harness, host: str, path: str = "/", **kwargs: object) -> connect:
    # The URI gives the Host header; the socket goes to the ingress.
    return connect(f"ws://{host}{path}", host="127.0.0.1", port=h.daemon.network.port, open_timeout=60,
                   **kwargs)  # type: ignore[arg-type]


def throttler(h: Harness, revision: str) -> Throttler:
    backend = h.daemon.dataplane.backend(("default", revision))
    assert backend is not None
    return backend[0]


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def converse(ws: ClientConnection, greeting: str) -> None:
    assert await ws.recv() == greeting
    for text in ("one", "two"):
        await ws.send(text)
        assert await ws.recv() == "echo:" + text
    await ws.send(b"\x00\x01\x02")
    assert await ws.recv() == b"\x02\x01\x00"


async def test_function_and_container_instances_echo_through_the_ingress(tmp_path: Path) -> None:
    fn = write_function(tmp_path / "fn", ASGI_ECHO)
    box = tmp_path / "box"
    box.mkdir()
    (box / "server.py").write_text(CONTAINER_ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("fn", fn), service("box", box, function=False,
                                           container={"command": [sys.executable, "server.py"]}))
        await h.ready("fn")
        await h.ready("box")
        for name, greeting in (("fn", "hello fn.default.localhost /chat?room=1"),
                               ("box", "hello box.default.localhost /chat?room=1")):
            async with open_ws(h, f"{name}.default.localhost", "/chat?room=1") as ws:
                await converse(ws, greeting)
                assert throttler(h, f"{name}-00001").in_flight == 1  # the open session is one request
                await ws.send("bye")
                with pytest.raises(Exception):  # noqa: B017 - the instance's close ends the iteration
                    await ws.recv()
                assert ws.close_code == 4001 and ws.close_reason == "asked to"  # the instance's close, relayed
            await until(lambda name=name: throttler(h, f"{name}-00001").in_flight == 0)  # type: ignore[misc]


async def test_client_close_ends_the_instance_session_and_frees_the_slot(tmp_path: Path) -> None:
    fn = write_function(tmp_path / "fn", ASGI_ECHO)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("fn", fn, spec={"containerConcurrency": 1}))
        await h.ready("fn")
        async with open_ws(h, "fn.default.localhost", subprotocols=["chat.v2", "chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v2"  # the instance's choice, passed back
            await ws.recv()
            assert throttler(h, "fn-00001").in_flight == 1
            # containerConcurrency 1: a plain request waits behind the open session ...
            pending = asyncio.ensure_future(h.request("fn.default.localhost"))
            await until(lambda: throttler(h, "fn-00001").queued == 1)
            assert not pending.done()
        # ... and gets the instance once the client has closed.
        assert (await pending).text == "plain"
        await until(lambda: throttler(h, "fn-00001").in_flight == 0)


async def test_upgrade_from_zero_waits_for_an_instance(tmp_path: Path) -> None:
    fn = write_function(tmp_path / "fn", ASGI_ECHO)
    autoscaler = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
                  "data": {"allow-zero-initial-scale": "true"}}
    async with running_daemon(tmp_path / "state") as h:
        h.apply(autoscaler, service("cold", fn, annotations={"autoscaling.knative.dev/initial-scale": "0"}))
        await h.ready("cold")
        runner = h.daemon.dataplane.runner(("default", "cold-00001"))
        assert runner is not None and not runner.pods
        async with open_ws(h, "cold.default.localhost", "/x") as ws:
            await converse(ws, "hello cold.default.localhost /x?")
        assert runner.pods


async def test_refused_upgrades_get_the_answer_as_http(tmp_path: Path) -> None:
    plain = write_function(tmp_path / "plain", "def handle(request):\n    return 'no websockets here'\n")
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("plain", plain))
        await h.ready("plain")
        with pytest.raises(InvalidStatus) as refused:
            async with open_ws(h, "plain.default.localhost"):
                pass
        # The instance's server refused (an `http` function does not take websockets): its answer, relayed.
        assert refused.value.response.status_code == 500
        assert refused.value.response.body == b"Internal Server Error"
        with pytest.raises(InvalidStatus) as unknown:
            async with open_ws(h, "nobody.default.localhost"):
                pass
        assert unknown.value.response.status_code == 404
        assert b"no service answers" in unknown.value.response.body
        await until(lambda: throttler(h, "plain-00001").in_flight == 0)


DELAYED_ECHO = """
import asyncio
from urllib.parse import parse_qs

async def handle(scope, receive, send):
    if scope["type"] != "websocket":
        return
    delay = float(parse_qs(scope["query_string"].decode()).get("delay", ["0"])[0])
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await asyncio.sleep(delay)
        await send({"type": "websocket.send", "text": message["text"]})
"""


@pytest.mark.parametrize("timeout_field", ["timeoutSeconds", "responseStartTimeoutSeconds", "idleTimeoutSeconds"])
async def test_the_revision_timeouts_bound_the_session_as_on_knative(tmp_path: Path, timeout_field: str) -> None:
    # Knative's e2e TestWebSocketWithTimeout: a 2 s reply within a 10 s timeout works, a 20 s one fails; here
    # 0.2 s and 5 s against 2 s.
    fn = write_function(tmp_path / "fn", DELAYED_ECHO)
    spec = {"timeoutSeconds": 30, timeout_field: 2} if timeout_field != "timeoutSeconds" else {"timeoutSeconds": 2}
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("slow", fn, spec=spec))
        await h.ready("slow")
        async with open_ws(h, "slow.default.localhost", "/?delay=0.2") as ws:
            await ws.send("quick")
            assert await ws.recv() == "quick"
        async with open_ws(h, "slow.default.localhost", "/?delay=5") as ws:
            await ws.send("late")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1011
        await until(lambda: throttler(h, "slow-00001").in_flight == 0)
