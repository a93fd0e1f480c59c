"""The conformance suite's "runtime info" app (the role of Knative's test/test_images/runtime): every GET of `/`
answers with what the instance sees — its environment, argv, user, working directory, files, cgroups, mounts,
stdin and the request — as JSON in the shape of Knative's test/types RuntimeInfo. Standard library only, plus the
`h2` package (when importable) to answer HTTP/2 prior-knowledge connections (a port named h2c).

Other paths, for the probe and api tests:
  /healthz/readiness      200 once READY_DELAY (seconds) has passed and until /start-failing, else 503
  /healthz/liveness       200 until /start-failing, else 500; counts its calls
  /healthz/livenessCounter  how many times /healthz/liveness was called
  /start-failing          readiness and liveness fail from now on
  /single                 500 when another /single request is in flight (single-threaded check)
  /timeout?initialTimeout=MS&timeout=MS   sleeps, writes the first byte, sleeps, writes the rest
  /bloat?mb=N             allocates and touches N MiB, answers, and lets them go
  /file?path=P            the file's contents (404 with the error when it cannot be read)
  /write?path=P&text=T    writes T to the file

`python3 runtime.py probe` is an exec readiness probe: exit 0 when /healthz/readiness answers 200. LISTEN_DELAY
(seconds) delays listening. SIGTERM drains.
"""

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.isdir(os.path.join(HERE, "deps")):
    sys.path.insert(0, os.path.join(HERE, "deps"))

FILES = ["/dev/fd", "/dev/full", "/dev/null", "/dev/ptmx", "/dev/random", "/dev/stdin", "/dev/stdout",
         "/dev/stderr", "/dev/tty", "/dev/urandom", "/dev/zero", "/proc/self/fd", "/proc/self/fd/0",
         "/proc/self/fd/1", "/proc/self/fd/2", "/tmp", "/etc/resolv.conf", "/dev/console"]
ACCESS = ["/tmp"]
CGROUP_V1 = ["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
             "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.shares"]
CGROUP_V2 = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu.weight"]

STARTED = time.monotonic()
state = {"failing": False, "liveness": 0, "single": 0}
lock = threading.Lock()


def go_error(op, path, exc):
    """An OSError as Go's os package words it ("stat /x: no such file or directory")."""
    return f"{op} {path}: {(exc.strerror or str(exc)).lower()}"


def perm_string(mode):
    bits = "rwxrwxrwx"
    return "".join(bits[i] if mode & (1 << (8 - i)) else "-" for i in range(9))


def file_info(path):
    try:
        st = os.stat(path)
    except OSError as exc:
        return {"error": go_error("stat", path, exc)}
    info = {"size": st.st_size, "mode": perm_string(st.st_mode), "isDir": os.path.isdir(path),
            "modTime": datetime.fromtimestamp(st.st_mtime, UTC).isoformat()}
    with contextlib.suppress(OSError):
        info["sourceFile"] = os.readlink(path)
    return info


def access(path):
    result = {}
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").close()
    except OSError as exc:
        result["read_error"] = go_error("open", path, exc)
    try:
        probe = os.path.join(path, f".runtime-write-check-{os.getpid()}") if os.path.isdir(path) else path
        with open(probe, "ab"):
            pass
        if probe != path:
            os.unlink(probe)
    except OSError as exc:
        result["write_error"] = go_error("open", path, exc)
    return result


def mounts():
    found = []
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                device, path, kind, options = line.split()[:4]
                found.append({"device": device, "path": path, "type": kind, "options": options.split(",")})
    except OSError as exc:
        found.append({"error": str(exc)})
    return found


def mount_of(path, table):
    best = None
    for m in table:
        p = m.get("path", "")
        if (path == p or path.startswith(p.rstrip("/") + "/")) and (best is None or len(p) > len(best["path"])):
            best = m
    return best


def cgroups(table):
    paths = CGROUP_V2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else CGROUP_V1
    found = []
    for path in paths:
        try:
            with open(path) as f:
                value = f.read().strip("\n")
        except OSError as exc:
            found.append({"name": path, "error": go_error("open", path, exc)})
            continue
        # Read-only is judged from the mount (ro) and the file's write permission, never by writing to it: on a
        # machine where this runs unconfined the file is the host's own cgroup.
        mount = mount_of(path, table)
        read_only = (mount is not None and "ro" in mount.get("options", [])) or not os.access(path, os.W_OK)
        found.append({"name": path, "value": value, "readOnly": read_only})
    return found


def own_cgroups():
    """The limits of the cgroups this process is in (/proc/self/cgroup), where no cgroup namespace makes
    /sys/fs/cgroup show them at the fixed paths upstream reads."""
    found = {}
    try:
        with open("/proc/self/cgroup") as f:
            lines = [line.strip().split(":", 2) for line in f]
    except OSError:
        return found
    for _, controllers, path in lines:
        names = {"": ["memory.max", "cpu.max", "cpu.weight"], "memory": ["memory.limit_in_bytes"],
                 "cpu": ["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"]}
        for controller in controllers.split(",") if controllers else [""]:
            base = "/sys/fs/cgroup" + ("/" + controller if controller else "")
            if controller == "cpu" and not os.path.isdir(base):
                base = "/sys/fs/cgroup/cpu,cpuacct"
            for name in names.get(controller, []):
                try:
                    with open(f"{base}{path.rstrip('/')}/{name}") as f:
                        found[name] = f.read().strip()
                except OSError:
                    pass
    return found


def stdin_info():
    try:
        data = os.read(0, 1)
    except OSError as exc:
        return {"error": str(exc)}
    return {"eof": data == b""}


def user_info():
    try:
        cwd = {"directory": os.getcwd()}
    except OSError as exc:
        cwd = {"error": str(exc)}
    return {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid(), "cwd": cwd}


def runtime_info(method, uri, headers, proto):
    table = mounts()
    host = ""
    for name, values in headers.items():
        if name.lower() in ("host", ":authority"):
            host = values[0]
    return {
        "request": {"ts": datetime.now(UTC).isoformat(), "uri": uri, "host": host, "method": method,
                    "headers": headers, "protoMajor": proto[0], "protoMinor": proto[1]},
        "host": {"files": {p: file_info(p) for p in FILES}, "envs": dict(os.environ),
                 "fileaccess": {p: access(p) for p in ACCESS}, "cgroups": cgroups(table), "mounts": table,
                 "stdin": stdin_info(), "user": user_info(), "args": list(sys.orig_argv),
                 "ownCgroups": own_cgroups()},
    }


def ready():
    return not state["failing"] and time.monotonic() - STARTED >= float(os.environ.get("READY_DELAY", "0") or 0)


def simple(path, query):
    """(status, body) for the small paths; None for the runtime info."""
    if path == "/healthz/readiness":
        return (200, b"ready") if ready() else (503, b"not ready")
    if path == "/healthz/liveness":
        with lock:
            state["liveness"] += 1
        return (500, b"failing") if state["failing"] else (200, b"alive")
    if path == "/healthz/livenessCounter":
        return 200, str(state["liveness"]).encode()
    if path == "/start-failing":
        state["failing"] = True
        return 200, b"failing from now on"
    if path == "/single":
        with lock:
            state["single"] += 1
            concurrent = state["single"] > 1
        try:
            time.sleep(0.02)
        finally:
            with lock:
                state["single"] -= 1
        return (500, b"concurrent requests") if concurrent else (200, b"one at a time")
    if path == "/file":  # what a volume holds (the role of Knative's hello-volume image)
        try:
            with open(query.get("path", [""])[0], "rb") as f:
                return 200, f.read()
        except OSError as exc:
            return 404, str(exc).encode()
    if path == "/write":  # an emptyDir is writable
        try:
            with open(query.get("path", [""])[0], "w") as f:
                f.write(query.get("text", [""])[0])
        except OSError as exc:
            return 500, str(exc).encode()
        return 200, b"written"
    if path == "/bloat":
        megabytes = int(query.get("mb", ["0"])[0])
        block = bytearray(megabytes * 1024 * 1024)
        for i in range(0, len(block), 4096):  # touch every page: make it resident
            block[i] = 1
        del block  # as upstream's autoscale image: allocated for the request, released after it
        return 200, f"allocated {megabytes} MiB".encode()
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/timeout":
            time.sleep(int(query.get("initialTimeout", ["0"])[0]) / 1000)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"1\r\n.\r\n")
            self.wfile.flush()
            time.sleep(int(query.get("timeout", ["0"])[0]) / 1000)
            self.wfile.write(b"4\r\ndone\r\n0\r\n\r\n")
            return
        small = simple(parts.path, query)
        if small is not None:
            self.answer(*small)
            return
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name, []).append(value)
        version = self.request_version.split("/")[1].split(".")
        info = runtime_info(self.command, self.path, headers, (int(version[0]), int(version[1])))
        self.answer(200, json.dumps(info).encode(), "application/json")

    do_POST = do_GET

    def log_message(self, format, *args):
        print("request", format % args, flush=True)


def serve_h2(sock):
    """One HTTP/2 prior-knowledge connection (wisp speaks it to a port named h2c)."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    requests = {}
    while True:
        data = sock.recv(65536)
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                requests[event.stream_id] = event.headers
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if isinstance(event, h2.events.StreamEnded) or (
                    isinstance(event, h2.events.RequestReceived) and event.stream_ended is not None):
                raw = requests.pop(event.stream_id, None)
                if raw is None:
                    continue
                pseudo = {k: v for k, v in raw if k.startswith(":")}
                headers = {}
                for name, value in raw:
                    if not name.startswith(":"):
                        headers.setdefault(name, []).append(value)
                headers.setdefault("host", [pseudo.get(":authority", "")])
                parts = urlsplit(pseudo.get(":path", "/"))
                small = simple(parts.path, parse_qs(parts.query))
                if small is None:
                    status, body = 200, json.dumps(runtime_info(pseudo.get(":method", "GET"), pseudo.get(":path", "/"),
                                                                headers, (2, 0))).encode()
                else:
                    status, body = small
                conn.send_headers(event.stream_id, [(":status", str(status)), ("content-length", str(len(body)))])
                conn.send_data(event.stream_id, body, end_stream=True)
        sock.sendall(conn.data_to_send())


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        try:
            head = request.recv(24, socket.MSG_PEEK)
        except OSError:
            return
        if head.startswith(b"PRI * HTTP/2.0"):
            serve_h2(request)
        else:
            super().finish_request(request, client_address)


def probe():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{os.environ['PORT']}/healthz/readiness", timeout=1) as r:
            return 0 if r.status == 200 else 1
    except OSError:
        return 1


def main():
    if sys.argv[1:2] == ["probe"]:
        raise SystemExit(probe())
    if sys.argv[1:2] == ["exit"]:
        print("exiting at once, as asked", flush=True)
        raise SystemExit(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
    time.sleep(float(os.environ.get("LISTEN_DELAY", "0") or 0))
    server = Server(("127.0.0.1", int(os.environ["PORT"])), Handler)

    def drain(signum, frame):
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, drain)
    print("runtime info app on", os.environ["PORT"], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
