"""A revision that fails to start tells its owner everything and anonymous clients only a short reason
(issue 8, defect 5: import-error tracebacks were served on the ingress).

The traceback (or a container's last log lines) is in the Revision's condition message — `wisp describe` —
and the instance's log; a client of the ingress gets 503 with one line: what failed and where to look.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.serving.harness import Harness, running_daemon, service, write_function
from wisp.api import kinds as k
from wisp.control.conditions import get_condition

SECRET = "hunter2-db-password"
WISP = Path(sys.executable).parent / "wisp"


def _assert_short(text: str, tmp_path: Path) -> None:
    assert "Traceback" not in text and SECRET not in text and str(tmp_path) not in text, text
    assert len(text) < 400, text


def _ready_message(h: Harness, revision: str) -> str:
    found = h.daemon.store.get(k.REVISION, "default", revision)
    condition = get_condition(found or {}, "Ready") or {}
    return str(condition.get("message", ""))


async def test_import_time_exception_gives_clients_a_short_reason(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", "import helpers\n\ndef handle(request):\n    return 'x'\n")
    (code / "helpers.py").write_text(f"raise RuntimeError('cannot reach the database with {SECRET}')\n")
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("broken", code))
        await h.failed("broken-00001", kind=k.REVISION)
        message = _ready_message(h, "broken-00001")
        # The owner sees the whole traceback...
        assert "Traceback" in message and SECRET in message and "helpers.py" in message
        assert message.splitlines()[0] == "function main:handle failed to load: RuntimeError in helpers.py"
        await h.wait_for(k.ROUTE, "default", "broken", lambda r: (get_condition(r, "Ready") or {}).get(
            "status") == "False")
        # ...an anonymous client one line.
        reply = await h.request("broken.default.localhost")
        assert reply.status_code == 503
        assert "RuntimeError in helpers.py" in reply.text and "wisp describe" in reply.text
        _assert_short(reply.text, tmp_path)

        # `wisp describe` shows the traceback.
        described = await asyncio.to_thread(subprocess.run, [str(WISP), "--api", h.api, "describe", "revision",
                                                             "broken-00001"], capture_output=True, text=True,
                                            timeout=60)
        assert described.returncode == 0, described.stderr
        assert SECRET in described.stdout and "helpers.py" in described.stdout
        # So does `wisp logs` (no instance ever ran: the revision's own log says why).
        logs = await h.client.get(f"{h.api}/api/v1/namespaces/default/services/broken/logs")
        assert "[broken-00001]" in logs.text and "RuntimeError in helpers.py" in logs.text and SECRET in logs.text


async def test_missing_module_reason(tmp_path: Path) -> None:
    code = write_function(tmp_path / "fn", "import not_a_module_anywhere\n\ndef handle(request):\n    return 'x'\n")
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("missing", code))
        await h.failed("missing")
        await h.wait_for(k.ROUTE, "default", "missing", lambda r: (get_condition(r, "Ready") or {}).get(
            "status") == "False")
        reply = await h.request("missing.default.localhost")
        assert reply.status_code == 503 and "ModuleNotFoundError in main.py" in reply.text
        _assert_short(reply.text, tmp_path)
        assert "not_a_module_anywhere" in _ready_message(h, "missing-00001")


# Serves until a file named BROKEN appears; from then on it prints a secret and exits at start.
CONTAINER = """
import os, sys, signal, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if os.path.exists("BROKEN"):
    print("connecting with password SECRET failed", file=sys.stderr, flush=True)
    sys.exit(1)


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
"""


async def test_a_container_that_stops_starting_answers_held_requests_briefly(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "server.py").write_text(textwrap.dedent(CONTAINER).replace("SECRET", SECRET))
    async with running_daemon(tmp_path / "state") as h:
        h.apply(service("flaky", box, function=False, container={"command": ["python", "server.py"]}))
        await h.ready("flaky")
        assert (await h.request("flaky.default.localhost")).text == "ok"
        runner = h.daemon.dataplane.runner(("default", "flaky-00001"))
        assert runner is not None
        [pod] = runner.pods
        assert pod.instance is not None
        (box / "BROKEN").write_text("")
        os.kill(pod.instance.pid, signal.SIGKILL)  # its replacement will not start
        async with asyncio.timeout(30):
            while runner.ready_count:  # its death seen (a request sent to it as it dies gets 502)
                await asyncio.sleep(0.01)
            replies = await asyncio.gather(*(h.request("flaky.default.localhost") for _ in range(3)))
        for reply in replies:
            assert reply.status_code == 503, reply.text
            assert "exited with status 1 before it was ready" in reply.text
            _assert_short(reply.text, tmp_path)
        # The owner has the log lines.
        await h.wait_for(k.REVISION, "default", "flaky-00001", lambda r: SECRET in _ready_message(h, "flaky-00001"))
