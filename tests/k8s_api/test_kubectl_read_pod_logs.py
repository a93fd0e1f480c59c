"""`GET /api/v1/namespaces/{ns}/pods/{name}/log` in process: tail, byte limit, the one container, refusals
naming the parameter, and a follow that ends when the instance is gone without losing its last lines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.k8s_api.read_side import read_api
from wisp.control.k8s_surface import KubernetesSurface
from wisp.store import Store

POD = "hello-00001-deployment-abcde"
PATH = f"/api/v1/namespaces/default/pods/{POD}/log"


def pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": POD, "namespace": "default",
                         "labels": {"serving.knative.dev/revision": "hello-00001"}},
            "status": {"phase": "Running", "containerStatuses": [{"name": "user-container", "ready": True}]}}


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "logs" / "default" / "hello-00001" / f"{POD}.log"
    path.parent.mkdir(parents=True)
    path.write_text("".join(f"line {i}\n" for i in range(5)))
    return path


@pytest.fixture
async def served(tmp_path: Path, log_file: Path) -> AsyncIterator[tuple[httpx.AsyncClient, KubernetesSurface,
                                                                         list[dict[str, Any]]]]:
    store = Store(None, lambda: 0.0)
    store.open()
    pods = [pod()]
    async with read_api(store, pods=pods, log_root=tmp_path / "logs") as (http, surface):
        yield http, surface, pods
    store.close()


async def test_tail_and_limit(served: tuple[httpx.AsyncClient, KubernetesSurface, list[dict[str, Any]]]) -> None:
    http, _, _ = served
    assert (await http.get(PATH)).text == "".join(f"line {i}\n" for i in range(5))
    assert (await http.get(PATH, params={"tailLines": "2"})).text == "line 3\nline 4\n"
    assert (await http.get(PATH, params={"limitBytes": "9"})).text == "line 0\nli"
    assert (await http.get(PATH, params={"container": "user-container", "tailLines": "0"})).text == ""


@pytest.mark.parametrize(("params", "named"), [
    ({"tailLines": "many"}, "tailLines"), ({"tailLines": "-1"}, "tailLines"), ({"limitBytes": "1e3"}, "limitBytes"),
    ({"container": "sidecar"}, "container sidecar"), ({"previous": "true"}, "previous")])
async def test_refusals_name_the_parameter(served: tuple[httpx.AsyncClient, KubernetesSurface,
                                                         list[dict[str, Any]]],
                                           params: dict[str, str], named: str) -> None:
    http, _, _ = served
    response = await http.get(PATH, params=params)
    assert response.status_code == 400 and named in response.json()["message"]


async def test_an_unknown_pod_is_not_found(served: tuple[httpx.AsyncClient, KubernetesSurface,
                                                         list[dict[str, Any]]]) -> None:
    http, _, _ = served
    response = await http.get("/api/v1/namespaces/default/pods/nothing/log")
    assert response.status_code == 404 and response.json()["message"] == 'pods "nothing" not found'
    assert (await http.get(PATH.replace("/default/", "/other/"))).status_code == 404


async def test_follow_ends_when_the_instance_is_gone_with_its_last_lines(
        served: tuple[httpx.AsyncClient, KubernetesSurface, list[dict[str, Any]]], log_file: Path) -> None:
    _, surface, pods = served
    [route] = [r for r in surface.routes() if getattr(r, "path", "").endswith("/log")]
    tail_sent = asyncio.Event()
    body: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if body[-1]:
                tail_sent.set()

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client never disconnects here
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "path": PATH, "raw_path": PATH.encode(), "root_path": "",
             "query_string": b"follow=true&tailLines=1", "headers": [], "scheme": "http", "http_version": "1.1",
             "server": ("wisp", 80), "client": ("127.0.0.1", 1), "path_params": {}, "app": None}
    _, matched = route.matches(scope)
    streaming = asyncio.create_task(route.handle({**scope, **matched}, receive, send))  # type: ignore[arg-type]
    await asyncio.wait_for(tail_sent.wait(), 10)  # the tail is out: the follow goes on from its end
    with log_file.open("a") as out:
        out.write("after 1\nafter 2\nno newline at the end")
    pods.clear()  # the instance is gone: the follow reads what it wrote last, then ends
    await asyncio.wait_for(streaming, 10)
    assert b"".join(body).decode() == "line 4\nafter 1\nafter 2\nno newline at the end\n"


async def test_a_follow_ends_when_the_daemon_stops(
        served: tuple[httpx.AsyncClient, KubernetesSurface, list[dict[str, Any]]], log_file: Path) -> None:
    _, surface, _ = served
    [route] = [r for r in surface.routes() if getattr(r, "path", "").endswith("/log")]
    body: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            body.append(message["body"])
            surface.end_streams()

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "path": PATH, "raw_path": PATH.encode(), "root_path": "",
             "query_string": b"follow=true&tailLines=1", "headers": [], "scheme": "http", "http_version": "1.1",
             "server": ("wisp", 80), "client": ("127.0.0.1", 1), "app": None}
    _, matched = route.matches(scope)
    await asyncio.wait_for(route.handle({**scope, **matched}, receive, send), 10)  # type: ignore[arg-type]
    assert b"".join(body) == b"line 4\n"


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["tailLines", "limitBytes", "container", "previous", "follow",
                                        "timestamps", "sinceSeconds"]),
                       st.text(max_size=12), max_size=4))
async def test_any_query_is_answered_without_a_server_error(
        served: tuple[httpx.AsyncClient, KubernetesSurface, list[dict[str, Any]]], params: dict[str, str]) -> None:
    http, _, pods = served
    pods[:] = [pod()]
    params.pop("follow", None)  # a follow of a live instance does not end by itself
    response = await http.get(PATH, params=params)
    assert response.status_code in (200, 400), response.text
