"""ContainerSource through a real daemon: its program gets K_SINK and K_CE_OVERRIDES, its events arrive at the
sink, and it is started again when it exits."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.eventing_e2e.helpers import processes_in
from tests.eventing_e2e.servers import EventReceiver
from tests.serving.harness import running_daemon
from wisp.api import kinds as k
from wisp.api.names import MANIFEST_DIR_ANNOTATION
from wisp.control.conditions import get_condition

pytestmark = pytest.mark.timeout(60)

# Sends one event per run to $K_SINK (with the overrides' extensions), then exits: wisp starts it again.
PROGRAM = """
import json, os, urllib.request

overrides = json.loads(os.environ.get("K_CE_OVERRIDES", "{}")).get("extensions", {})
run = int(open("runs").read()) + 1 if os.path.exists("runs") else 1
open("runs", "w").write(str(run))
headers = {"ce-specversion": "1.0", "ce-id": f"run-{run}", "ce-source": "/heartbeat", "ce-type": "beat",
           "content-type": "application/json", **{f"ce-{k}": v for k, v in overrides.items()}}
body = json.dumps({"run": run, "greeting": os.environ["GREETING"]}).encode()
request = urllib.request.Request(os.environ["K_SINK"], data=body, headers=headers, method="POST")
urllib.request.urlopen(request, timeout=10).read()
"""


def container_source(name: str, directory: Path, sink: dict[str, Any], image: str = "./beat") -> dict[str, Any]:
    return {"apiVersion": "sources.knative.dev/v1", "kind": "ContainerSource",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {MANIFEST_DIR_ANNOTATION: str(directory)}},
            "spec": {"template": {"spec": {"containers": [{
                "image": image, "command": ["python", "beat.py"],
                "env": [{"name": "GREETING", "value": "hello"}]}]}},
                "sink": sink, "ceOverrides": {"extensions": {"team": "blue"}}}}


async def test_container_source_events_arrive_and_it_is_restarted(tmp_path: Path) -> None:
    (tmp_path / "beat").mkdir()
    (tmp_path / "beat" / "beat.py").write_text(textwrap.dedent(PROGRAM))
    sink = EventReceiver()
    await sink.start()
    try:
        async with running_daemon(tmp_path / "state") as h:
            h.apply(container_source("heartbeat", tmp_path, {"uri": sink.url}))
            await sink.wait_until(lambda: len(sink.arrivals) >= 2, timeout=30, what="two runs' events")
            first, second = sink.events[:2]
            assert (first["id"], second["id"]) == ("run-1", "run-2")  # the second run is the restart
            assert first["team"] == "blue" and first.data == {"run": 1, "greeting": "hello"}
            source = await h.wait_for(k.CONTAINER_SOURCE, "default", "heartbeat",
                                      lambda s: get_condition(s, "SinkBindingReady") is not None)
            assert source["status"]["sinkUri"] == sink.url
            assert (tmp_path / "state" / "logs" / "default" / "containersource-heartbeat.log").exists()
        # Stopped with the daemon: nothing of it is left running.
        assert processes_in(tmp_path / "beat") == set()
    finally:
        await sink.stop()


async def test_an_oci_image_is_not_ready_with_the_reason(tmp_path: Path) -> None:
    async with running_daemon(tmp_path / "state") as h:
        h.apply(container_source("remote", tmp_path, {"uri": "http://127.0.0.1:9/"},
                                 image="gcr.io/knative-releases/knative.dev/eventing/cmd/heartbeats"))
        source = await h.failed("remote", kind=k.CONTAINER_SOURCE)
        assert "OCI image" in (get_condition(source, "ReceiveAdapterReady") or {}).get("message", "")
