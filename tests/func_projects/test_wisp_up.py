"""As a user runs it: `wisp up DIR` on a Knative Functions project, then `wisp get ksvc NAME -o yaml`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
import yaml

from tests.wisp_process import WISP, WispProcess

from .conftest import project

pytestmark = pytest.mark.usefixtures("uv_cache_env")


async def wisp_cli(wisp: WispProcess, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(WISP), *args, env={**os.environ, "WISP_API": wisp.api},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_wisp_up_serves_a_project_and_get_shows_its_service(tmp_path: Path) -> None:
    extra = """\
        deploy:
          options:
            scale: {max: 3, target: 5}
            resources:
              limits: {concurrency: 8}
        """
    directory = project(tmp_path, "http", "hello", extra=extra)
    # No Kafka is needed: the address is never dialled.
    wisp = WispProcess(directory, tmp_path / "state", "127.0.0.1:9", tmp_path / "wisp.log")
    await wisp.start(timeout=300)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            reply = await client.get(wisp.ingress, headers={"Host": "hello.default.localhost"})
        assert (reply.status_code, reply.text) == (200, "OK")
        service = yaml.safe_load(await wisp_cli(wisp, "get", "ksvc", "hello", "-o", "yaml"))
        template = service["spec"]["template"]
        assert template["spec"]["containerConcurrency"] == 8
        annotations = template["metadata"]["annotations"]
        assert annotations["autoscaling.knative.dev/max-scale"] == "3"
        assert annotations["autoscaling.knative.dev/target"] == "5"
        assert annotations["wisp.dev/workload-class"] == "function"
        assert template["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
        assert service["metadata"]["annotations"]["wisp.dev/manifest-dir"] == str(directory.resolve())
        assert [c["status"] for c in service["status"]["conditions"] if c["type"] == "Ready"] == ["True"]

        # `wisp apply -f DIR` reads the project the same way: a changed func.yaml changes the Service.
        func_yaml = directory / "func.yaml"
        func_yaml.write_text(func_yaml.read_text().replace("max: 3", "max: 4"))
        applied = await wisp_cli(wisp, "apply", "-f", str(directory))
        assert "service.serving.knative.dev/hello configured" in applied
        service = yaml.safe_load(await wisp_cli(wisp, "get", "ksvc", "hello", "-o", "yaml"))
        assert service["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "4"
    finally:
        await wisp.stop()
