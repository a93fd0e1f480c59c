"""Knative Functions projects served by a real wisp daemon: the vendored templates unchanged, and projects made
from them that show start/stop, readiness, and what a broken project gets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.serving.harness import Harness, running_daemon
from wisp.api import kinds as k
from wisp.api.loader import load_paths
from wisp.control.conditions import get_condition

from .conftest import project, write_func

pytestmark = pytest.mark.usefixtures("uv_cache_env")

CE_HEADERS = {"ce-id": "order-1", "ce-source": "/shop", "ce-type": "order.created", "ce-specversion": "1.0",
              "content-type": "application/json"}


def apply_project(h: Harness, directory: Path) -> None:
    h.apply(*[doc.resource for doc in load_paths([directory], environ={})])


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll what a function wrote to a file (no event reaches the test from inside an instance)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_the_templates_answer_as_their_readmes_say(tmp_path: Path) -> None:
    http = project(tmp_path, "http", "hello")
    events = project(tmp_path, "cloudevents", "echo", invoke="cloudevent")
    async with running_daemon(tmp_path / "state") as h:
        apply_project(h, http)
        apply_project(h, events)
        await h.ready("hello", timeout=300)
        await h.ready("echo", timeout=300)

        reply = await h.request("hello.default.localhost")
        assert (reply.status_code, reply.text, reply.headers["content-type"]) == (200, "OK", "text/plain")
        for path in ("/health/liveness", "/health/readiness"):
            probe = await h.request("hello.default.localhost", path)
            assert probe.status_code == 200, path
        assert (await h.request("hello.default.localhost", "/health/readiness")).text == "Ready"

        # The CloudEvents template replies with an event in structured mode (func-python's `send`).
        reply = await h.request("echo.default.localhost", method="POST", headers=CE_HEADERS, content=b'{"id": 42}')
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("application/cloudevents+json")
        event = reply.json()
        assert (event["type"], event["source"], event["id"], event["data"]) == (
            "function.response", "function", "response-order-1", {"message": "OK"})
        # A structured-mode request works as well; a request that is no CloudEvent gets 400.
        structured = {"specversion": "1.0", "id": "order-2", "source": "/shop", "type": "order.created",
                      "datacontenttype": "application/json", "data": {"id": 43}}
        reply = await h.request("echo.default.localhost", method="POST", content=json.dumps(structured).encode(),
                                headers={"content-type": "application/cloudevents+json"})
        assert reply.status_code == 200 and reply.json()["id"] == "response-order-2"
        assert (await h.request("echo.default.localhost", method="POST", content=b"hi")).status_code == 400
        # The revision runs as a function, forked from the template process that loaded the project.
        revision = h.daemon.store.get(k.REVISION, "default", "hello-00001")
        assert revision is not None
        assert revision["metadata"]["annotations"]["wisp.dev/workload-class"] == "function"


BINARY = """\
    from cloudevents.core.v1.event import CloudEvent


    def new():
        return Replier()


    class Replier:
        async def handle(self, scope, receive, send):
            request = scope["event"]
            reply = CloudEvent(attributes={"type": "order.accepted", "source": "/replier",
                                           "id": "re-" + request.get_id()},
                               data={"total": request.get_data()["id"] * 2})
            await send.binary(reply)
    """


async def test_a_cloudevent_function_replies_in_binary_mode(tmp_path: Path) -> None:
    directory = project(tmp_path, "cloudevents", "replier", invoke="cloudevent")
    write_func(directory, BINARY)
    async with running_daemon(tmp_path / "state") as h:
        apply_project(h, directory)
        await h.ready("replier", timeout=300)
        reply = await h.request("replier.default.localhost", method="POST", headers=CE_HEADERS,
                                content=b'{"id": 21}')
        assert reply.status_code == 200, reply.text
        assert (reply.headers["ce-type"], reply.headers["ce-source"], reply.headers["ce-id"]) == (
            "order.accepted", "/replier", "re-order-1")
        assert reply.json() == {"total": 42}


LIFECYCLE = """\
    import importlib.util
    import json
    import os


    def new():
        return Lifecycle()


    class Lifecycle:
        def __init__(self):
            self.cfg = None

        def start(self, cfg):
            self.cfg = cfg
            with open(cfg["MARKS"], "a") as marks:
                marks.write(f"start {os.getpid()}\\n")

        def stop(self):
            with open(self.cfg["MARKS"], "a") as marks:
                marks.write(f"stop {os.getpid()}\\n")

        def ready(self):
            with open(self.cfg["MARKS"], "a") as marks:
                marks.write("ready?\\n")
            return os.path.exists(self.cfg["READY_FLAG"]), "checked"

        async def handle(self, scope, receive, send):
            seen = {key: self.cfg.get(key) for key in ("GREETING", "K_SERVICE", "K_REVISION", "PORT", "PYTHONPATH")}
            # PyYAML is one of wisp's packages, not one the project declares.
            seen["yaml"] = importlib.util.find_spec("yaml") is not None
            body = json.dumps(seen)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [[b"content-type", b"application/json"]]})
            await send({"type": "http.response.body", "body": body.encode()})
    """


def lifecycle_project(tmp_path: Path, name: str, ready: bool) -> tuple[Path, Path, Path]:
    marks, flag = tmp_path / f"{name}.marks", tmp_path / f"{name}.ready"
    if ready:
        flag.touch()
    extra = f"""\
        run:
          envs:
            - name: GREETING
              value: Bonjour
            - name: MARKS
              value: {marks}
            - name: READY_FLAG
              value: {flag}
        deploy:
          annotations:
            autoscaling.knative.dev/window: 6s
        """
    directory = project(tmp_path, "http", name, extra=extra)
    write_func(directory, LIFECYCLE)
    return directory, marks, flag


FAST_SCALE_DOWN = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"},
    "data": {"scale-to-zero-grace-period": "1s"},
}


async def test_start_sees_the_env_and_stop_runs_on_scale_down_and_shutdown(tmp_path: Path) -> None:
    directory, marks, _ = lifecycle_project(tmp_path, "cycle", ready=True)
    async with running_daemon(tmp_path / "state", tick_interval=0.5) as h:
        h.apply(FAST_SCALE_DOWN)
        apply_project(h, directory)
        await h.ready("cycle", timeout=300)
        reply = await h.request("cycle.default.localhost")
        cfg = reply.json()
        assert cfg["GREETING"] == "Bonjour" and cfg["K_SERVICE"] == "cycle" and cfg["K_REVISION"] == "cycle-00001"
        assert cfg["PORT"]
        # Its own environment: none of wisp's packages, and wisp's serving path is gone from the environment.
        assert cfg["yaml"] is False and cfg["PYTHONPATH"] is None
        started = [line for line in lines(marks) if line.startswith("start ")]
        assert len(started) == 1  # once per instance, before its first request
        first = started[0].split()[1]

        # No traffic: the KPA scales it to zero, and the instance runs stop() as it drains.
        await until(lambda: f"stop {first}" in lines(marks), timeout=60)

        # From zero again: a new instance, started once more; then `wisp` stops and so does it.
        assert (await h.request("cycle.default.localhost")).status_code == 200
        second = [line.split()[1] for line in lines(marks) if line.startswith("start ")][-1]
        assert second != first
    assert f"stop {second}" in lines(marks)
    assert [line.split()[0] for line in lines(marks) if line.split()[0] in ("start", "stop")] == [
        "start", "stop", "start", "stop"]


async def test_ready_false_holds_traffic_until_it_turns_true(tmp_path: Path) -> None:
    directory, marks, flag = lifecycle_project(tmp_path, "slow", ready=True)
    async with running_daemon(tmp_path / "state", tick_interval=0.5) as h:
        h.apply(FAST_SCALE_DOWN)
        apply_project(h, directory)
        await h.ready("slow", timeout=300)
        await until(lambda: any(line.startswith("stop ") for line in lines(marks)), timeout=60)  # at zero
        flag.unlink()
        asked = lines(marks).count("ready?")
        request = asyncio.ensure_future(h.request("slow.default.localhost"))
        # The new instance is probed on /health/readiness, where func-python asks ready(): it says no, again
        # and again, and the request waits.
        await until(lambda: lines(marks).count("ready?") >= asked + 3)
        assert not request.done()
        flag.touch()
        reply = await asyncio.wait_for(request, 30)
        assert reply.status_code == 200 and reply.json()["GREETING"] == "Bonjour"


async def test_a_dependency_that_fails_to_install_keeps_the_previous_revision(tmp_path: Path) -> None:
    directory = project(tmp_path, "http", "deps")
    async with running_daemon(tmp_path / "state") as h:
        apply_project(h, directory)
        await h.ready("deps", timeout=300)
        pyproject = directory / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace('"httpx",', '"httpx",\n  "wisp-no-such-package-x7q==1.0",'))
        apply_project(h, directory)
        revision = await h.failed("deps-00002", kind=k.REVISION, timeout=300)
        message = get_condition(revision, "Ready")["message"]  # type: ignore[index]
        assert "failed to install" in message and "wisp-no-such-package-x7q" in message, message
        reply = await h.request("deps.default.localhost")
        assert (reply.status_code, reply.text) == (200, "OK")
        service = h.daemon.store.get(k.SERVICE, "default", "deps")
        assert service is not None and service["status"]["latestReadyRevisionName"] == "deps-00001"


@pytest.mark.parametrize(("code", "last_line"), [
    ("import no_such_module_for_wisp\n\n\ndef new():\n    return None\n",
     "ModuleNotFoundError: No module named 'no_such_module_for_wisp'"),
    ("def something_else():\n    return None\n",
     "TargetError: the function package exports neither new nor handle"),
])
async def test_a_project_that_does_not_load_is_not_ready(tmp_path: Path, code: str, last_line: str) -> None:
    directory = project(tmp_path, "http", "broken")
    write_func(directory, code)
    (directory / "function" / "__init__.py").write_text("from .func import *  # noqa\n")
    async with running_daemon(tmp_path / "state") as h:
        apply_project(h, directory)
        revision = await h.failed("broken-00001", kind=k.REVISION, timeout=300)
        message = get_condition(revision, "Ready")["message"]  # type: ignore[index]
        assert last_line in message.splitlines()[-1], message


HANDLE_ONLY = """\
    async def handle(scope, receive, send):
        await send({"type": "http.response.start", "status": 201, "headers": [[b"content-type", b"text/plain"]]})
        await send({"type": "http.response.body", "body": scope["path"].encode()})
    """


async def test_a_module_level_handle_is_served_too(tmp_path: Path) -> None:
    directory = project(tmp_path, "http", "plain")
    write_func(directory, HANDLE_ONLY)
    (directory / "function" / "__init__.py").write_text("from .func import handle\n")
    async with running_daemon(tmp_path / "state") as h:
        apply_project(h, directory)
        await h.ready("plain", timeout=300)
        reply = await h.request("plain.default.localhost", "/orders/7")
        assert (reply.status_code, reply.text) == (201, "/orders/7")
        assert (await h.request("plain.default.localhost", "/health/liveness")).status_code == 200


SUBSCRIBER = """\
    import os


    def new():
        return Subscriber()


    class Subscriber:
        async def handle(self, scope, receive, send):
            event = scope["event"]
            with open(os.environ["MARKS"], "a") as marks:
                marks.write(f"{event.get_type()} {event.get_id()}\\n")
            await send.http({"type": "http.response.start", "status": 202, "headers": []})
            await send.http({"type": "http.response.body", "body": b""})
    """


async def test_subscriptions_become_triggers_that_deliver(tmp_path: Path) -> None:
    marks = tmp_path / "received"
    extra = f"""\
        run:
          envs:
            - name: MARKS
              value: {marks}
        deploy:
          subscriptions:
            - source: default
              filters: {{type: order.created}}
        """
    directory = project(tmp_path, "cloudevents", "orders", invoke="cloudevent", extra=extra)
    write_func(directory, SUBSCRIBER)
    broker = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
              "metadata": {"name": "default", "namespace": "default"}}
    async with running_daemon(tmp_path / "state") as h:
        h.apply(broker)
        apply_project(h, directory)
        await h.ready("orders", timeout=300)
        await h.ready("orders-function-trigger-0", kind=k.TRIGGER)
        for event_id, type_ in (("1", "order.cancelled"), ("2", "order.created")):
            sent = await h.request("broker-ingress.knative-eventing.localhost", "/default/default", method="POST",
                                   headers={**CE_HEADERS, "ce-id": event_id, "ce-type": type_}, content=b"{}")
            assert sent.status_code == 202, sent.text
        await until(lambda: lines(marks) == ["order.created 2"])
