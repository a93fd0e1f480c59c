"""No wisp secret in any instance's environment, for both workload classes (issue 8, defect 5).

Read from /proc/PID/environ of every instance (and of the function template) and from the instance's own
os.environ: the runtime contract, the Revision's env/envFrom, a small base of the daemon's (PATH, HOME, ...)
and what wisp adds that is not a secret — never WISP_TOKEN, never the rest of the daemon's environment. The
span-ingest credential instances get instead of the token is good for POST /v1/traces only.
"""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.serving.harness import running_daemon, service, write_function
from wisp.api import kinds as k
from wisp.serving.workloads.function import FunctionRuntime

TOKEN = "wisp-api-token-that-must-stay-in-the-daemon"
DAEMON_ONLY = "WISP_TEST_DAEMON_ONLY_VARIABLE"

# What an instance may see: the contract, its declared env, the documented base and wisp's additions.
CONTRACT = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
DECLARED = {"GREETING", "DB_PASSWORD"}
BASE = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV", "SYSTEMROOT", "PYTHONPATH"}
WISP_ADDS = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_HEADERS",
             "KAFKA_BOOTSTRAP_SERVERS", "K_SINK", "K_CE_OVERRIDES", "FUNCTION_TARGET", "K_POD_NAME"}
ALLOWED = CONTRACT | DECLARED | BASE | WISP_ADDS
# Set by Python itself inside a process (not inherited): allowed in os.environ, not in /proc/PID/environ.
PYTHON_OWN = {"LC_CTYPE"}

FUNCTION = """
import os

async def handle(request):
    return dict(os.environ)
"""

CONTAINER = """
import json, os, signal, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(dict(os.environ)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
"""

SECRET = {
    "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "default"},
    "data": {"password": base64.b64encode(b"declared-secret-value").decode()},
}
ENV = [{"name": "GREETING", "value": "hi"},
       {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}]


def _environ(pid: int) -> tuple[bytes, dict[str, str]]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = [item.split(b"=", 1) for item in raw.split(b"\0") if item]
    return raw, {name.decode(): value.decode() for name, value in pairs}


def _check(where: str, raw: bytes, env: dict[str, str], extra_allowed: frozenset[str] = frozenset()) -> None:
    assert TOKEN.encode() not in raw, f"{where}: the API token is in the environment"
    assert "WISP_TOKEN" not in env and DAEMON_ONLY not in env, where
    assert not set(env) - ALLOWED - extra_allowed, f"{where}: unexpected {sorted(set(env) - ALLOWED)}"
    assert {"K_SERVICE", "K_CONFIGURATION", "K_REVISION"} <= set(env), where
    assert env["GREETING"] == "hi" and env["DB_PASSWORD"] == "declared-secret-value", where


@pytest.fixture
def daemon_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WISP_TOKEN", TOKEN)
    monkeypatch.setenv(DAEMON_ONLY, "leaked")


@pytest.mark.usefixtures("daemon_env")
async def test_no_token_in_any_instance_environment(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", FUNCTION)
    box = tmp_path / "box"
    box.mkdir()
    (box / "server.py").write_text(textwrap.dedent(CONTAINER))
    async with running_daemon(tmp_path / "state", token=TOKEN) as h:
        h.apply(SECRET, service("fenv", code, container={"env": ENV}),
                service("cenv", box, function=False, container={"env": ENV, "command": ["python", "server.py"]}))
        await h.ready("fenv")
        await h.ready("cenv")
        checked = 0
        for name in ("fenv", "cenv"):
            runner = h.daemon.dataplane.runner(("default", f"{name}-00001"))
            assert runner is not None and runner.pods
            pids = [pod.instance.pid for pod in runner.pods if pod.instance is not None]
            if isinstance(runner.runtime, FunctionRuntime):
                assert runner.runtime.template_pid is not None
                pids.append(runner.runtime.template_pid)
            for pid in pids:
                raw, env = _environ(pid)
                _check(f"{name} pid {pid}", raw, env)
                checked += 1
            # What the code sees at run time (a function instance's PORT is set after the fork).
            served = (await h.request(f"{name}.default.localhost")).json()
            _check(f"{name} os.environ", b"\0".join(f"{k}={v}".encode() for k, v in served.items()), served,
                   frozenset(PYTHON_OWN))
            assert served["PORT"].isdigit()
        assert checked == 3  # the function's instance and template, the container's instance

        # Instead of the token, instances get a credential good for sending spans and nothing else.
        header = served["OTEL_EXPORTER_OTLP_HEADERS"]
        assert header.startswith("authorization=Bearer%20")
        auth = {"Authorization": header.split("=", 1)[1].replace("%20", " ")}
        async with httpx.AsyncClient(base_url=h.api, timeout=10) as client:
            assert (await client.post("/v1/traces", json={}, headers=auth)).status_code == 200
            assert (await client.get("/api/v1/namespaces/default/secrets", headers=auth)).status_code == 401
            assert (await client.get(f"/api/v1/namespaces/default/{k.SECRET.plural}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200
