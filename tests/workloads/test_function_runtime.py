"""Function-class runtime with real template processes and forked instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from workload_helpers import function_spec, write_code

from wisp.net import free_port
from wisp.serving.workloads import Runtime, WorkloadError, WorkloadSpec
from wisp.serving.workloads.function import FunctionInstance, FunctionRuntime

MakeRuntime = Callable[[WorkloadSpec], Runtime]

HTTP_CODE = {
    "main.py": """
        import asyncio, os, wisp
        from starlette.responses import StreamingResponse

        @wisp.http
        async def handle(request: wisp.Request):
            if request.url.path == "/slow":
                async def chunks():
                    yield b"started\\n"  # the client knows the request is in flight once it reads this
                    await asyncio.sleep(float(request.query_params["s"]))
                    yield b"slow done\\n"
                return StreamingResponse(chunks())
            if request.url.path == "/boom":
                raise RuntimeError("kaboom-secret")
            if request.url.path == "/created":
                return {"made": True}, 201
            body = await request.body()
            return {k: os.environ.get(k) for k in ("PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION")} | {
                "body": body.decode(), "host": request.headers.get("host"),
            }
    """,
}


async def start_instance(runtimes: MakeRuntime, spec: WorkloadSpec, tmp_path: Path,
                         name: str = "hello-00001-deployment-abcde") -> tuple[Runtime, FunctionInstance]:
    runtime = runtimes(spec)
    await runtime.start()
    instance = await runtime.spawn(name, free_port(), tmp_path / "logs" / f"{name}.log")
    assert isinstance(instance, FunctionInstance)
    await instance.wait_ready(20)
    return runtime, instance


async def test_http_function_contract_env_and_errors(runtimes: MakeRuntime, tmp_path: Path) -> None:
    spec = function_spec(write_code(tmp_path / "fn", HTTP_CODE))
    _, instance = await start_instance(runtimes, spec, tmp_path)
    base = f"http://127.0.0.1:{instance.port}"
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(f"{base}/", content=b"hi", headers={"Host": "hello.default.localhost"})
        assert r.status_code == 200
        assert r.json() == {"PORT": str(instance.port), "K_SERVICE": "hello", "K_CONFIGURATION": "hello",
                            "K_REVISION": "hello-00001", "body": "hi", "host": "hello.default.localhost"}
        created = await client.get(f"{base}/created")
        assert created.status_code == 201 and created.json() == {"made": True}
        boom = await client.get(f"{base}/boom")
        assert boom.status_code == 500 and "kaboom" not in boom.text
    await instance.terminate(5)
    log = (tmp_path / "logs" / f"{instance.name}.log").read_text()
    assert "RuntimeError: kaboom-secret" in log  # the traceback is in the instance log, not the response


async def test_sync_function_runs_in_thread_pool(runtimes: MakeRuntime, tmp_path: Path) -> None:
    code = {"main.py": """
        import threading

        def handle(request):
            print("handled in", threading.current_thread().name)
            return f"main thread? {threading.current_thread() is threading.main_thread()} {request._body!r}"
    """}
    _, instance = await start_instance(runtimes, function_spec(write_code(tmp_path / "fn", code)), tmp_path)
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(f"http://127.0.0.1:{instance.port}/", content=b"x")
    assert r.text == "main thread? False b'x'"
    assert r.headers["content-type"].startswith("text/plain")
    await instance.terminate(5)
    assert "handled in" in (tmp_path / "logs" / f"{instance.name}.log").read_text()  # prints are captured


async def test_cloudevent_function_replies_in_binary_mode(runtimes: MakeRuntime, tmp_path: Path) -> None:
    code = {"main.py": """
        from wisp import CloudEvent

        def handle(event: CloudEvent):
            if event["type"] == "ignore.me":
                return None
            return CloudEvent({"type": "reply." + event["type"], "source": "/fn"}, {"got": event.data})
    """}
    _, instance = await start_instance(runtimes, function_spec(write_code(tmp_path / "fn", code)), tmp_path)
    base = f"http://127.0.0.1:{instance.port}/"
    ce = {"ce-id": "1", "ce-source": "/test", "ce-specversion": "1.0", "ce-type": "greet",
          "content-type": "application/json"}
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(base, headers=ce, content=b'{"name": "w"}')
        assert r.status_code == 200, r.text
        assert r.headers["ce-type"] == "reply.greet" and r.headers["ce-source"] == "/fn"
        assert r.json() == {"got": {"name": "w"}}
        structured = {"id": "2", "source": "/t", "specversion": "1.0", "type": "ignore.me", "data": 1}
        r = await client.post(base, json=structured, headers={"content-type": "application/cloudevents+json"})
        assert r.status_code == 202 and r.content == b""
        bad = {k: v for k, v in ce.items() if k not in ("ce-id", "ce-type")}
        r = await client.post(base, headers=bad, content=b"{}")
        assert r.status_code == 400 and "id, type" in r.text


async def test_asgi_target_with_lifespan_and_function_target(runtimes: MakeRuntime, tmp_path: Path) -> None:
    code = {"app.py": """
        from contextlib import asynccontextmanager
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        state = {}

        @asynccontextmanager
        async def lifespan(app):
            state["started"] = "yes"
            yield

        async def home(request):
            return PlainTextResponse("asgi " + state.get("started", "no"))

        application = Starlette(routes=[Route("/", home)], lifespan=lifespan)
    """}
    spec = function_spec(write_code(tmp_path / "fn", code), function_target="app:application")
    _, instance = await start_instance(runtimes, spec, tmp_path)
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"http://127.0.0.1:{instance.port}/")
    assert r.text == "asgi yes"


async def test_import_failure_is_a_clear_workload_error(runtimes: MakeRuntime, tmp_path: Path) -> None:
    code = {"main.py": "import not_a_real_module_xyz\n\ndef handle(request):\n    return 'x'\n"}
    runtime = runtimes(function_spec(write_code(tmp_path / "fn", code)))
    with pytest.raises(WorkloadError) as info:
        await runtime.start()
    assert "No module named 'not_a_real_module_xyz'" in str(info.value)
    assert "main:handle" in str(info.value)


async def test_missing_target_attribute(runtimes: MakeRuntime, tmp_path: Path) -> None:
    code = {"main.py": "def other(request):\n    return 'x'\n"}
    runtime = runtimes(function_spec(write_code(tmp_path / "fn", code)))
    with pytest.raises(WorkloadError, match="has no attribute 'handle'"):
        await runtime.start()


async def test_sigterm_drains_an_in_flight_request(runtimes: MakeRuntime, tmp_path: Path) -> None:
    spec = function_spec(write_code(tmp_path / "fn", HTTP_CODE))
    _, instance = await start_instance(runtimes, spec, tmp_path)
    async with httpx.AsyncClient(timeout=10) as client, \
            client.stream("GET", f"http://127.0.0.1:{instance.port}/slow?s=0.5") as response:
        chunks = response.aiter_bytes()
        assert await anext(chunks) == b"started\n"
        terminating = asyncio.create_task(instance.terminate(grace=8))
        rest = b"".join([chunk async for chunk in chunks])
        await terminating
    assert rest == b"slow done\n"
    assert instance.exited.result() == 0


async def test_kill_resolves_exited_promptly(runtimes: MakeRuntime, tmp_path: Path) -> None:
    spec = function_spec(write_code(tmp_path / "fn", HTTP_CODE))
    _, instance = await start_instance(runtimes, spec, tmp_path)
    started = time.perf_counter()
    instance.kill()
    status = await asyncio.wait_for(instance.exited, 5)
    print(f"\nkill → exited: {1000 * (time.perf_counter() - started):.1f} ms")
    assert status == -9


async def test_stopping_the_template_ends_its_instances(runtimes: MakeRuntime, tmp_path: Path) -> None:
    runtime, instance = await start_instance(
        runtimes, function_spec(write_code(tmp_path / "fn", HTTP_CODE)), tmp_path
    )
    assert isinstance(runtime, FunctionRuntime) and runtime._proc is not None
    runtime._proc.kill()  # the template dies abruptly: PR_SET_PDEATHSIG takes its instances along
    await asyncio.wait_for(instance.exited, 10)
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=5) as client:
            await client.get(f"http://127.0.0.1:{instance.port}/")
    # The template is supervised: it comes back and forks again.
    again = await runtime.spawn("again", free_port(), tmp_path / "again.log")
    await again.wait_ready(20)
    assert runtime.restarts == 1


async def test_fork_to_ready_time(runtimes: MakeRuntime, tmp_path: Path) -> None:
    """Prints (does not assert) how long fork order → ready takes; several instances at once too."""
    runtime = runtimes(function_spec(write_code(tmp_path / "fn", HTTP_CODE)))
    await runtime.start()
    timings = []
    for i in range(5):
        started = time.perf_counter()
        instance = await runtime.spawn(f"t{i}", free_port(), tmp_path / f"t{i}.log")
        await instance.wait_ready(20)
        timings.append(1000 * (time.perf_counter() - started))
        await instance.terminate(5)
    print(f"\nfork → ready (ms): {', '.join(f'{t:.1f}' for t in timings)}")
    assert len(timings) == 5
    instances = await asyncio.gather(*(runtime.spawn(f"p{i}", free_port(), tmp_path / f"p{i}.log")
                                       for i in range(4)))
    await asyncio.gather(*(i.wait_ready(20) for i in instances))
    async with httpx.AsyncClient(timeout=10) as client:
        answers = await asyncio.gather(*(client.get(f"http://127.0.0.1:{i.port}/") for i in instances))
    assert [a.json()["PORT"] for a in answers] == [str(i.port) for i in instances]


async def test_concurrent_orders_each_get_their_own_instance(runtimes: MakeRuntime, tmp_path: Path) -> None:
    # The template keeps a pre-forked spare; several orders at once must still each get a distinct,
    # working instance (the spare serves one, the rest are forked on demand), with its own PORT.
    spec = function_spec(write_code(tmp_path / "fn", HTTP_CODE))
    runtime = runtimes(spec)
    await runtime.start()
    names = [f"hello-00001-deployment-c{i}" for i in range(5)]
    instances = await asyncio.gather(*(
        runtime.spawn(name, free_port(), tmp_path / "logs" / f"{name}.log") for name in names))
    await asyncio.gather(*(i.wait_ready(20) for i in instances))
    assert len({i.pid for i in instances}) == 5
    async with httpx.AsyncClient(timeout=10) as client:
        for instance in instances:
            reply = await client.get(f"http://127.0.0.1:{instance.port}/")
            assert reply.json()["PORT"] == str(instance.port)


async def test_a_killed_instance_does_not_stop_the_next_orders(runtimes: MakeRuntime, tmp_path: Path) -> None:
    spec = function_spec(write_code(tmp_path / "fn", HTTP_CODE))
    runtime, first = await start_instance(runtimes, spec, tmp_path)
    first.kill()
    assert await asyncio.wait_for(first.exited, 5) != 0
    for n in range(3):  # each order after a death still gets a fresh, serving instance
        name = f"hello-00001-deployment-n{n}"
        instance = await runtime.spawn(name, free_port(), tmp_path / "logs" / f"{name}.log")
        await instance.wait_ready(20)
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(f"http://127.0.0.1:{instance.port}/")).status_code == 200
        instance.kill()
        await asyncio.wait_for(instance.exited, 5)
