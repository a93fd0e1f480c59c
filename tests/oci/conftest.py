"""OCI images for real, through podman: the machine's containers.conf in CONTAINERS_CONF for the session (as a
user of these VMs has it in their shell; wisp is given no flag), the base image and the test server image."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oci_images import build_image, containers_conf, engine, engine_env

SERVER_IMAGE = "localhost/wisp-test-oci-server:1"

# The app: answers every GET with what it sees (its environment, argv, cwd, ids, the request's headers) and
# drains on SIGTERM. `/sleep/S` answers after S seconds.
SERVE = """\
import json, os, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/sleep/"):
            time.sleep(float(self.path.rsplit("/", 1)[1]))
        if self.path == "/healthz" and not os.path.exists("/tmp/ready"):
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/make-ready":
            open("/tmp/ready", "w").close()
        body = json.dumps({"env": dict(os.environ), "argv": sys.orig_argv, "cwd": os.getcwd(), "uid": os.getuid(),
                           "gid": os.getgid(), "headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        print("request", format % args, flush=True)


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)


def drain(signum, frame):
    print("draining on SIGTERM", flush=True)
    threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGTERM, drain)
print("serving on", os.environ["PORT"], "as", os.getuid(), "in", os.getcwd(), flush=True)
server.serve_forever()
"""

CONTAINERFILE = """\
FROM {base}
COPY serve.py /app/serve.py
WORKDIR /app
ENTRYPOINT ["python3", "/app/serve.py"]
CMD ["from-image-cmd"]
"""


# The first test to need an image may build the base image (mmdebstrap downloads Debian's packages): its set-up
# gets this long; the tests themselves stay within the suite's usual limit.
BASE_BUILD_ALLOWANCE = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "server_image" in getattr(item, "fixturenames", ()) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(BASE_BUILD_ALLOWANCE))


@pytest.fixture(scope="session")
def oci_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """CONTAINERS_CONF set for the session: every podman and every wisp daemon the tests start see it."""
    engine()
    conf = containers_conf(tmp_path_factory.mktemp("containers"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_CONF", str(conf))
        yield engine_env(conf)


@pytest.fixture(scope="session")
def server_image(oci_env: dict[str, str]) -> str:
    return build_image(SERVER_IMAGE, {"Containerfile": CONTAINERFILE, "serve.py": SERVE}, oci_env)
