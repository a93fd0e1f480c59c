"""gRPC through the ingress to a container instance that declares `ports: [{name: h2c}]`: unary calls with
their trailers (grpc-status, trailing metadata) intact, a failing call's status, and a bidirectional stream held
as one in-flight request while open."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc
import pytest

from tests.serving.harness import Harness, running_daemon, service

SERVER = """
import os
from concurrent import futures

import grpc


def say(request, context):
    context.set_trailing_metadata((("x-said-by", "instance"),))
    authority = dict(context.invocation_metadata()).get("x-forwarded-proto", "")
    return b"said:" + request + b" via " + authority.encode()


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "nothing here")


def chat(requests, context):
    for request in requests:
        yield b"echo:" + request


handler = grpc.method_handlers_generic_handler("echo.Echo", {
    "Say": grpc.unary_unary_rpc_method_handler(say),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
    "Chat": grpc.stream_stream_rpc_method_handler(chat),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((handler,))
server.add_insecure_port("127.0.0.1:" + os.environ["PORT"])
server.start()
server.wait_for_termination()
"""
HOST = "grpc.default.localhost"


def channel(h: Harness) -> grpc.aio.Channel:
    # The ingress routes by :authority, as it routes HTTP/1.1 by Host.
    return grpc.aio.insecure_channel(f"127.0.0.1:{h.daemon.network.port}",
                                     options=[("grpc.default_authority", HOST)])


async def test_grpc_calls_through_the_ingress_keep_their_trailers(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "server.py").write_text(SERVER)
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("grpc", box, function=False,
                        container={"command": [sys.executable, "server.py"], "ports": [{"name": "h2c"}]}))
        await h.ready("grpc", timeout=90)
        backend = h.daemon.dataplane.backend(("default", "grpc-00001"))
        assert backend is not None and backend[0].h2c
        async with channel(h) as ch:
            say = ch.unary_unary("/echo.Echo/Say")
            call = say(b"hi", timeout=30)
            assert await call == b"said:hi via http"
            assert await call.code() == grpc.StatusCode.OK
            assert ("x-said-by", "instance") in list(await call.trailing_metadata())

            fail = ch.unary_unary("/echo.Echo/Fail")
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await fail(b"x", timeout=30)
            assert failed.value.code() == grpc.StatusCode.NOT_FOUND
            assert failed.value.details() == "nothing here"

            chat = ch.stream_stream("/echo.Echo/Chat")
            stream = chat(timeout=30)
            for word in (b"a", b"b", b"c"):
                await stream.write(word)
                assert await stream.read() == b"echo:" + word  # an answer before the request ends
                assert backend[0].in_flight == 1  # the open stream is one request
            await stream.done_writing()
            assert await stream.read() == grpc.aio.EOF
            assert await stream.code() == grpc.StatusCode.OK

            # Many calls at once share the connections and all come back.
            replies = await asyncio.gather(*(say(b"%d" % i, timeout=30) for i in range(40)))
            assert sorted(replies) == sorted(b"said:%d via http" % i for i in range(40))
