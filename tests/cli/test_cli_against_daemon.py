"""The CLI against a real daemon: apply, get, describe, logs, delete, and apply's warnings."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from tests.serving.harness import running_daemon, write_function
from wisp.cli.main import app

MANIFEST = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: greeter
  annotations:
    workload.serving.knative.aliyun.com/class: "fc"
spec:
  template:
    metadata:
      annotations:
        fc.revision.serving.knative.aliyun.com/role-arm: "acs:ram::xxxx:role/knative-fc"
    spec:
      containers:
        - image: ./fn
"""

CODE = """
def handle(request):
    print("greeting someone", flush=True)
    return "hello"
"""


async def test_apply_get_logs_delete(tmp_path: Path) -> None:
    write_function(tmp_path / "fn", CODE)
    (tmp_path / "svc.yaml").write_text(MANIFEST)
    runner = CliRunner()
    async with running_daemon(tmp_path / "state") as h:
        env = {"WISP_API": h.api}

        async def wisp(*args: str) -> tuple[int, str, str]:
            result = await asyncio.to_thread(runner.invoke, app, list(args), env=env)
            return result.exit_code, result.stdout, result.stderr

        code, out, err = await wisp("apply", "-f", str(tmp_path / "svc.yaml"))
        assert code == 0, out + err
        assert "service.serving.knative.dev/greeter created" in out
        assert "role-arm" in err and "ignored" in err
        await h.ready("greeter")
        assert (await h.request("greeter.default.localhost")).text == "hello"

        code, out, _ = await wisp("get", "ksvc")
        assert code == 0
        header, row = out.splitlines()[:2]
        assert header.split() == ["NAME", "URL", "LATEST", "AGE", "CONDITIONS", "READY", "REASON"]
        assert row.split()[:3] == ["greeter", f"http://greeter.default.localhost:{h.daemon.network.port}",
                                   "greeter-00001"]
        assert "3 OK / 3" in row and "True" in row

        code, out, _ = await wisp("get", "pods")
        assert code == 0 and "greeter-00001-deployment-" in out and "Running" in out

        code, out, _ = await wisp("get", "kpa")
        assert code == 0 and out.split()[:5] == ["NAME", "DESIREDSCALE", "ACTUALSCALE", "READY", "REASON"]

        code, out, _ = await wisp("describe", "ksvc", "greeter")
        assert code == 0 and "greeter-00001" in out

        code, out, _ = await wisp("logs", "greeter")
        assert code == 0 and "greeting someone" in out

        code, out, _ = await wisp("delete", "ksvc", "greeter")
        assert code == 0
        code, out, err = await wisp("get", "ksvc", "greeter")
        assert code == 1 and "not found" in (out + err)
