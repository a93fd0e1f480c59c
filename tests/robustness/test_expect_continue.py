"""`Expect: 100-continue` through the ingress, with the real curl (which sends it for every body over 1 MB).

The ingress answers the expectation itself and passes the whole body on; an interim response from an instance
must never reach the client as the final one (issue 8, defect 1).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.robustness.raw_http import exchange, request
from tests.serving.harness import running_daemon, service, write_function
from wisp.http_client.pool import UpstreamPool, build_request_head
from wisp.net import free_port

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl binary")

BODY_SIZE = 2_000_000  # over curl's 1 MB threshold for adding `Expect: 100-continue`

FUNCTION = """
import hashlib


async def handle(request):
    body = await request.body()
    return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest(), "expect": request.headers.get("expect")}
"""

# protocol_version HTTP/1.1: http.server then answers `Expect: 100-continue` with an interim 100 of its own,
# as most servers do, which is what used to reach the client as the final response.
CONTAINER = """
import hashlib, json, os, signal, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        reply = json.dumps({"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                            "expect": self.headers.get("Expect")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
"""


async def curl(*args: str, timeout: float = 30) -> tuple[int, str, str]:
    """Run curl; its exit code, stdout and (verbose) stderr."""
    proc = await asyncio.create_subprocess_exec("curl", "-sS", "-v", "--max-time", "20", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return int(proc.returncode or 0), out.decode(errors="replace"), err.decode(errors="replace")


def status_lines(verbose: str) -> list[str]:
    """The response status lines curl received, in order (`< HTTP/1.1 100 Continue`, ...)."""
    return [line[2:].strip() for line in verbose.splitlines() if line.startswith("< HTTP/")]


def write_container(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "server.py").write_text(textwrap.dedent(CONTAINER))
    return directory


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    path = tmp_path / "2m.bin"
    path.write_bytes(b"\0" * BODY_SIZE)
    return path


@pytest.mark.parametrize("workload", ["function", "container"])
async def test_curl_upload_with_expect_continue(tmp_path: Path, upload: Path, workload: str) -> None:
    if workload == "function":
        manifest = service("up", write_function(tmp_path / "fn", FUNCTION))
    else:
        manifest = service("up", write_container(tmp_path / "box"), function=False,
                           container={"command": ["python3", "server.py"]})
    async with running_daemon(tmp_path / "state") as h:
        h.apply(manifest)
        await h.ready("up")
        code, out, err = await curl("--data-binary", f"@{upload}", "-H", "Host: up.default.localhost", h.ingress + "/")
        assert code == 0, err
        assert "> Expect: 100-continue" in err  # curl really asked
        # One interim 100 from the ingress, then the instance's real answer.
        assert status_lines(err) == ["HTTP/1.1 100 Continue", "HTTP/1.1 200 OK"], err
        reply = json.loads(out)
        assert reply == {"length": BODY_SIZE, "sha256": hashlib.sha256(b"\0" * BODY_SIZE).hexdigest(),
                         "expect": None}
        # A small body with the expectation stated explicitly, on a fresh connection: same answer.
        code, out, err = await curl("--data-binary", "hello", "-H", "Expect: 100-continue",
                                    "-H", "Host: up.default.localhost", h.ingress + "/")
        assert code == 0, err
        assert status_lines(err)[-1] == "HTTP/1.1 200 OK", err
        assert json.loads(out)["length"] == 5


async def test_too_large_upload_is_refused_before_the_body_is_sent(tmp_path: Path, upload: Path) -> None:
    """A declared length past the limit gets its 413 at once, without a 100: curl never sends the body."""
    async with running_daemon(tmp_path / "state", body_limit=BODY_SIZE // 2) as h:
        h.apply(service("up", write_function(tmp_path / "fn", FUNCTION)))
        await h.ready("up")
        code, out, err = await curl("--data-binary", f"@{upload}", "-H", "Host: up.default.localhost", h.ingress + "/")
        assert code == 0, err
        assert [line.split()[1] for line in status_lines(err)] == ["413"], err
        assert str(BODY_SIZE // 2) in out
        # The ingress still serves on (a fresh request, the same service).
        code, out, err = await curl("--data-binary", "hi", "-H", "Host: up.default.localhost", h.ingress + "/")
        assert code == 0 and json.loads(out)["length"] == 2, err
        # The refusal ends the connection: a client that waited for a 100 sends no body, and its next request
        # must not be read as that body (it would wait forever for the rest of it).
        head = request(b"/", host=b"up.default.localhost", method=b"POST",
                       headers=[(b"expect", b"100-continue"), (b"content-length", b"%d" % BODY_SIZE)])
        done = await exchange(h.daemon.network.port, head, until_closed=True)
        assert [r.status for r in done.responses] == [413] and done.closed


async def test_upstream_client_skips_interim_responses() -> None:
    """1xx responses before the final one are skipped, and the connection stays usable for the next request."""
    requests = connections = 0

    async def instance(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests, connections
        connections += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                requests += 1
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n"
                             b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"
                             b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-final: yes\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    port = free_port()
    server = await asyncio.start_server(instance, "127.0.0.1", port)
    pool = UpstreamPool("127.0.0.1", port)
    try:
        for _ in range(2):
            response = await pool.request(build_request_head("GET", b"/", [(b"host", b"x")], 0), 5)
            assert response.status == 200
            assert response.headers == [(b"content-length", b"2"), (b"x-final", b"yes")]
            assert b"".join([chunk async for chunk in response.body(5)]) == b"ok"
        assert (requests, connections) == (2, 1)
    finally:
        pool.close()
        server.close()
        await server.wait_closed()
