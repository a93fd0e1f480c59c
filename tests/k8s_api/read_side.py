"""Shared by the read-side tests: the control API with the Kubernetes read side in process, and a real
`wisp up` daemon with kubectl pointed at it through `wisp kubeconfig`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import in_ci
from wisp.control.api import VirtualKinds, build_api
from wisp.control.k8s_surface import KubernetesSurface
from wisp.serving.revision_runner import free_port
from wisp.store import Store
from wisp.types import Clock, Resource

WISP = Path(sys.executable).parent / "wisp"
NOW = 1_700_000_000.0


async def _no_logs(namespace: str, service: str, follow: bool, tail: int) -> AsyncIterator[str]:
    return
    yield ""


@asynccontextmanager
async def read_api(store: Store, pods: list[Resource] | None = None, log_root: Path = Path("/nonexistent"),
                   clock: Clock = lambda: NOW) -> AsyncIterator[tuple[httpx.AsyncClient, KubernetesSurface]]:
    """An httpx client on the control API as the daemon assembles it (routes + Table middleware), in process."""
    surface = KubernetesSurface(store, clock, lambda ns: [p for p in pods or []
                                                          if ns is None or p["metadata"]["namespace"] == ns],
                                log_root, "0.1.0")
    virtual = VirtualKinds(list_pods=surface.pods, list_autoscalers=lambda ns: [], service_logs=_no_logs,
                           info=lambda: {}, metrics=lambda: (b"", "text/plain"))
    app = surface.wrap(build_api(store, virtual, extra_routes=surface.routes(), clock=clock))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wisp") as client:
        yield client, surface


def kubectl_path() -> str:
    found = shutil.which("kubectl")
    if found is None:
        message = "kubectl is not installed (Debian's kubernetes-client; `make test-install` installs it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass
class Daemon:
    api: str
    ingress_port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([kubectl_path(), *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def wisp(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(WISP), "--api", self.api, *args], env=self.env, capture_output=True, text=True,
                              timeout=60, check=True)


@contextmanager
def running_daemon(manifests: Path, work: Path, timeout: float = 120, token: str | None = None) -> Iterator[Daemon]:
    """`wisp up` on free ports, a private HOME (kubectl's discovery cache) and KUBECONFIG written by
    `wisp kubeconfig --merge`; with `token`, the daemon requires it and the kubeconfig carries it."""
    port, api_port = free_port(), free_port()
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(work / "kube" / "config"), "PYTHONUNBUFFERED": "1"}
    env.pop("WISP_TOKEN", None)
    if token is not None:
        env["WISP_TOKEN"] = token
    log = work / "daemon.log"
    process = subprocess.Popen(
        [str(WISP), "up", str(manifests), "--port", str(port), "--api-port", str(api_port), "--state-dir",
         str(work / "state"), "--kafka", "127.0.0.1:9"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    serving = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        with log.open("ab") as out:
            for line in process.stdout:
                out.write(line)
                out.flush()
                if line.startswith(b"wisp is serving on"):
                    serving.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while not serving.wait(0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"wisp up did not start:\n{log.read_text()[-3000:]}")
        daemon = Daemon(f"http://127.0.0.1:{api_port}", port, env, process, log)
        daemon.wisp("kubeconfig", "--merge")
        yield daemon
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(10)


def service(name: str, namespace: str = "default", **status: Any) -> Resource:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"spec": {"containers": [{"image": "./app"}]}}},
            **({"status": status} if status else {})}
