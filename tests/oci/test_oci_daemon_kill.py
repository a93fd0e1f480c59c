"""`kill -9` of the daemon leaves its containers running (the engine's conmon keeps them); the daemon started
again on the same state dir removes them before it starts anything, and serves with new ones."""

from __future__ import annotations

import asyncio
import json
import subprocess
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.oci_images import engine
from tests.wisp_process import WispProcess
from wisp.serving.workloads.oci_engine import ENV_DIR, STATE_FILE

pytestmark = pytest.mark.usefixtures("oci_env")


async def names_with_label(label: str) -> list[str]:
    result = await asyncio.to_thread(
        subprocess.run, [engine(), "ps", "-a", "--format", "{{.Names}}", "--filter", f"label=wisp.dev/daemon={label}"],
        capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.split()


async def answer(wisp: WispProcess) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.get(wisp.ingress + "/", headers={"Host": "survivor.default.localhost"})
    assert r.status_code == 200, r.text
    return str(r.json()["env"]["K_REVISION"])


async def test_daemon_kill_9_leaves_no_container_after_restart(tmp_path: Path, server_image: str) -> None:
    manifest = tmp_path / "survivor.yaml"
    manifest.write_text(textwrap.dedent(f"""\
        apiVersion: serving.knative.dev/v1
        kind: Service
        metadata:
          name: survivor
        spec:
          template:
            metadata:
              annotations:
                autoscaling.knative.dev/min-scale: "1"
            spec:
              timeoutSeconds: 10
              containers:
                - image: {server_image}
        """))
    state = tmp_path / "state"
    wisp = WispProcess(manifest, state, "127.0.0.1:9", tmp_path / "wisp.log")
    label = ""
    try:
        await wisp.start()
        assert await answer(wisp) == "survivor-00001"
        label = json.loads((state / STATE_FILE).read_text())["label"]
        before = await names_with_label(label)
        assert len(before) == 1
        env_files = sorted((state / ENV_DIR).iterdir())
        assert len(env_files) == 1  # the Revision's env (a Secret's values would be there) for the container
        await wisp.kill()
        assert await names_with_label(label) == before  # still there: nothing removed it yet

        await wisp.start()  # same state dir, same ports
        assert before[0] not in await names_with_label(label)  # removed before anything started
        assert not env_files[0].exists()
        assert await answer(wisp) == "survivor-00001"
        after = await names_with_label(label)
        assert len(after) == 1 and after != before, (before, after)
        assert "removed 1 container(s) an earlier wisp on this state dir left running" in wisp.log.read_text()
    finally:
        await wisp.stop()
        if label and (left := await names_with_label(label)):
            await asyncio.to_thread(subprocess.run, [engine(), "rm", "-f", "-t", "0", *left], timeout=60)
            pytest.fail(f"containers left after the daemon stopped: {left}")
