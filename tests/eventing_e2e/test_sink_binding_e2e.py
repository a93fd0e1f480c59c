"""SinkBinding through the daemon: K_SINK reaches the bound Service's instances, and is a URL they can POST to."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.serving.harness import running_daemon, service, write_function
from wisp.api import kinds as k
from wisp.eventing.cloudevents import parse_request

pytestmark = pytest.mark.timeout(120)

SHOW_SINK = """
import os

import wisp


@wisp.http
def handle(request):
    return os.environ.get("K_SINK", "<unset>")
"""

ECHO = """
import wisp
from wisp import CloudEvent


@wisp.cloudevent
def handle(event):
    return CloudEvent({"type": "echo.reply", "source": "/echo", "id": "re-" + event["id"]}, {"got": event["type"]})
"""


async def test_k_sink_reaches_the_instance_and_accepts_events(tmp_path: Path) -> None:
    binding = {
        "apiVersion": "sources.knative.dev/v1", "kind": "SinkBinding",
        "metadata": {"name": "bind-emitter", "namespace": "default"},
        "spec": {"subject": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "emitter"},
                 "sink": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "echo"}}},
    }
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("echo", write_function(tmp_path / "echo", ECHO)), binding,
                service("emitter", write_function(tmp_path / "emitter", SHOW_SINK)))
        await h.ready("echo")
        await h.ready("emitter")
        await h.ready("bind-emitter", kind=k.SINK_BINDING)

        response = await h.request("emitter.default.localhost")
        assert response.status_code == 200
        k_sink = response.text
        assert k_sink.startswith(f"{h.ingress}/.wisp/route/echo.default."), k_sink

        # K_SINK is usable as is: no Host header, no name resolution beyond 127.0.0.1.
        async with httpx.AsyncClient(timeout=30) as client:
            sent = await client.post(k_sink, content=b'{"n": 1}', headers={
                "ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "/emitter", "ce-type": "emitted",
                "content-type": "application/json"})
        assert sent.status_code == 200, f"POST {k_sink}: {sent.status_code} {sent.text[:200]}"
        reply = parse_request({k_: v for k_, v in sent.headers.items()}, sent.content)[0]
        assert reply["id"] == "re-e-1" and reply.get_data() == {"got": "emitted"}
