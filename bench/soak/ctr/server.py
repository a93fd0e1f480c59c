"""The soak's container: a stdlib HTTP/1.1 server on $PORT that drains on SIGTERM (Knative's contract)."""

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the ingress's pooled client expects

    def do_GET(self) -> None:
        body = json.dumps({"revision": os.environ.get("K_REVISION", "?")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        pass  # a line per request would only grow the instance log


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True  # idle keep-alive connections must not hold up the exit
    # shutdown() blocks until serve_forever returns, so it must run off the main thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
