"""A container-class workload: any HTTP server that listens on $PORT. Standard library only."""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({
            "message": f"Hello from {os.environ.get('K_SERVICE', '?')} ({os.environ.get('K_REVISION', '?')})",
            "host": self.headers.get("Host", ""),
            "forwardedProto": self.headers.get("X-Forwarded-Proto", ""),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        print(fmt % args, flush=True)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Hello)
    server.daemon_threads = False  # server_close() then waits for in-flight requests
    # SIGTERM: stop accepting, let in-flight requests finish, exit (Knative's drain contract).
    # shutdown() blocks until serve_forever returns, so it must run off the main thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening on {server.server_address}", flush=True)
    server.serve_forever()
    server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
