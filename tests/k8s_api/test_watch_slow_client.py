"""A watcher that stops reading must not hold the daemon: its watch is ended with an ERROR 410 Expired once it
falls its buffer behind, while other watchers and requests go on."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx

from tests.k8s_api.verbs_server import served_api
from wisp.control.k8s_watch import WatchSettings

KSVCS = "/apis/serving.knative.dev/v1/namespaces/default/services"
UPDATES = 60
BIG = "x" * 50_000  # 60 changes of 50 kB: far more than small socket buffers hold


def ksvc(name: str) -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"image": "./app"}]}}}}


def test_a_watcher_that_stops_reading_is_expired_and_holds_nobody() -> None:
    with served_api(watch_settings=WatchSettings(buffer=5), send_buffer=8192) as api, \
            httpx.Client(base_url=api.url, timeout=10) as client:
        client.post(KSVCS, json=ksvc("big")).raise_for_status()
        version = client.get(KSVCS).json()["metadata"]["resourceVersion"]
        host, port = api.url.removeprefix("http://").split(":")
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        slow.connect((host, int(port)))
        slow.sendall(f"GET {KSVCS}?watch=true&resourceVersion={version} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert slow.recv(64).startswith(b"HTTP/1.1 200")  # and then it reads nothing more

        seen: list[str] = []
        reading = threading.Event()

        def follow() -> None:
            with httpx.Client(base_url=api.url, timeout=30) as other, other.stream(
                    "GET", KSVCS, params={"watch": "true", "resourceVersion": version}) as response:
                reading.set()
                for line in response.iter_lines():
                    seen.append(json.loads(line)["type"])
                    if len(seen) == UPDATES:
                        return

        follower = threading.Thread(target=follow)
        follower.start()
        assert reading.wait(10)
        started = time.monotonic()
        for index in range(UPDATES):
            client.patch(f"{KSVCS}/big", json={"metadata": {"annotations": {"n": str(index), "big": BIG}}},
                         headers={"content-type": "application/merge-patch+json"}).raise_for_status()
        assert time.monotonic() - started < 60
        follower.join(30)
        assert seen == ["MODIFIED"] * UPDATES  # the reading watcher got everything
        assert client.get(f"{KSVCS}/big").status_code == 200

        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # now it reads, and at speed
        slow.settimeout(30)
        received = b""
        while not received.endswith(b"0\r\n\r\n"):  # the chunked stream's end
            chunk = slow.recv(1 << 20)
            assert chunk, "the connection closed before the stream ended"
            received += chunk
        slow.close()
        last = [line for line in received.split(b"\n") if line.startswith(b'{"type"')][-1]
        error = json.loads(last)
        assert error["type"] == "ERROR" and (error["object"]["code"], error["object"]["reason"]) == (410, "Expired")
