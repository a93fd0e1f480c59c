"""Idle cost: CPU of the barrage demo at rest, the daemon and every process under it.

    .venv/bin/python bench/idle.py [--runs 3] [--duration 60] [--settle 10] [--by-process]

Starts `wisp up examples/barrage` (its own process, free ports for the ingress and the control API, a temp
state dir; the demo's manifests name the local Kafka on 127.0.0.1:9092, so wisp starts Tansu there as its
child and that port must be free), waits until its Services are Ready, then until the KPA has scaled the
HomePage (a function, no traffic) to zero, plus --settle seconds. Then --runs windows of --duration
seconds each: the process tree under the daemon is sampled every second from /proc (utime + stime); a
process that starts inside the window counts from zero, one that exits counts up to its last sample (at
most a second of it is lost). Printed per window and as medians: % of one core for the daemon, the Kafka
broker, the instances (function templates, forked instances, container processes) and the total.

Beside it, measured the same way: a bare `python -c 'import time; time.sleep(...)'` — what "doing nothing"
costs on this machine (the floor of the measurement). Target: total <= 1 % of a core.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wisp.net import free_port

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "barrage"
BIN = Path(sys.executable).parent
KAFKA_PORT = 9092  # what the demo's manifests name
HOMEPAGE_REVISION_PREFIX = "demo-barrage-"
TICKS = os.sysconf("SC_CLK_TCK")
TARGET_PERCENT = 1.0
GROUPS = ("daemon", "kafka", "instances")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    start: int  # starttime in ticks since boot: (pid, start) names one process even if its pid is reused
    ticks: int  # utime + stime
    comm: str


def read_proc(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is field 3 of proc(5): state; ppid 4, utime 14, stime 15, starttime 22.
    return Proc(pid, int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]), comm)


def tree(root: int) -> dict[tuple[int, int], Proc]:
    """Every live process under `root` (itself included), by (pid, starttime)."""
    procs = [p for p in (read_proc(int(d)) for d in os.listdir("/proc") if d.isdigit()) if p is not None]
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    top = next((p for p in procs if p.pid == root), None)
    if top is None:
        return {}
    out: dict[tuple[int, int], Proc] = {}
    stack = [top]
    while stack:
        p = stack.pop()
        out[(p.pid, p.start)] = p
        stack.extend(children.get(p.pid, []))
    return out


def group_of(proc: Proc, procs: dict[tuple[int, int], Proc], root: int, kafka_pids: set[int]) -> str:
    if proc.pid == root:
        return "daemon"
    pid = proc.pid
    by_pid = {p.pid: p for p in procs.values()}
    while pid in by_pid and pid != root:  # the broker and anything it runs
        if pid in kafka_pids:
            return "kafka"
        pid = by_pid[pid].ppid
    return "instances"


@dataclass
class Window:
    seconds: float
    per_group: dict[str, float]  # % of one core
    per_process: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.per_group.values())


def measure(root: int, duration: float, is_kafka: Any = lambda p: False) -> Window:
    """CPU of the tree under `root` over `duration` seconds, sampled every second."""
    first = tree(root)
    last = dict(first)
    started = time.monotonic()
    deadline = started + duration
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        last.update(tree(root))  # exited processes keep their last sample
    seconds = time.monotonic() - started
    kafka_pids = {p.pid for p in last.values() if is_kafka(p)}
    per_group = dict.fromkeys(GROUPS, 0.0)
    per_process: dict[str, float] = {}
    for key, proc in last.items():
        used = proc.ticks - (first[key].ticks if key in first else 0)
        percent = 100.0 * used / TICKS / seconds
        group = group_of(proc, last, root, kafka_pids)
        per_group[group] += percent
        name = f"{group}:{proc.comm}"
        per_process[name] = per_process.get(name, 0.0) + percent
    return Window(seconds, per_group, per_process)


def get_json(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"bench: control API {path} answered {response.status}: {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


def homepage_pods(api_port: int) -> int:
    items = get_json(api_port, "/api/v1/namespaces/default/pods")["items"]
    return sum(1 for p in items if p["metadata"]["name"].startswith(HOMEPAGE_REVISION_PREFIX))


def pod_names(api_port: int) -> list[str]:
    return sorted(p["metadata"]["name"] for p in get_json(api_port, "/api/v1/namespaces/default/pods")["items"])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Daemon:
    pid: int
    api_port: int
    log: Path


@contextlib.contextmanager
def wisp_up(workdir: Path, timeout: float = 180.0) -> Iterator[Daemon]:
    """`wisp up examples/barrage` on free ports, until it reports serving and its Services are Ready."""
    port, api_port = free_port(), free_port()
    log_path = workdir / "daemon.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(BIN / "wisp"), "up", str(DEMO), "--port", str(port), "--api-port", str(api_port),
             "--state-dir", str(workdir / "state")],
            cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + timeout
        while b"wisp is serving on" not in log_path.read_bytes():
            if proc.poll() is not None:
                raise SystemExit(f"bench: wisp up exited with {proc.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: wisp up did not report serving within {timeout:g}s; see {log_path}")
            time.sleep(0.2)
        services = get_json(api_port, "/apis/serving.knative.dev/v1/namespaces/default/services")["items"]
        for svc in services:
            ready = any(c["type"] == "Ready" and c["status"] == "True"
                        for c in svc.get("status", {}).get("conditions", []))
            if not ready:
                raise SystemExit(f"bench: Service {svc['metadata']['name']} is not Ready; see {log_path}")
        yield Daemon(proc.pid, api_port, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def is_tansu(proc: Proc) -> bool:
    return "tansu" in proc.comm.lower()


def baseline(duration: float) -> Window:
    sleeper = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({duration + 5})"])
    try:
        time.sleep(0.5)  # past the interpreter's start
        return measure(sleeper.pid, duration)
    finally:
        sleeper.kill()
        sleeper.wait()


def fmt(window: Window) -> str:
    return "  ".join(f"{g} {window.per_group[g]:5.2f} %" for g in GROUPS) + f"  total {window.total:5.2f} %"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="measurement windows (the summary is their median)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per window")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds to wait after the HomePage reached zero instances, before measuring")
    parser.add_argument("--zero-timeout", type=float, default=240.0,
                        help="how long to wait for the HomePage to scale to zero")
    parser.add_argument("--by-process", action="store_true", help="also print each process's share")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    if port_in_use(KAFKA_PORT):
        raise SystemExit(f"bench: 127.0.0.1:{KAFKA_PORT} is in use; the demo's local Kafka must be wisp's own child")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          "(other work on the machine does not count here, but it slows what does)", flush=True)
    windows: list[Window] = []
    with tempfile.TemporaryDirectory(prefix="wisp-bench-idle-") as tmp, wisp_up(Path(tmp)) as daemon:
        started = time.monotonic()
        while homepage_pods(daemon.api_port):
            if time.monotonic() - started > args.zero_timeout:
                raise SystemExit(f"bench: the HomePage did not scale to zero within {args.zero_timeout:g}s")
            time.sleep(1.0)
        print(f"ready; HomePage at zero after {time.monotonic() - started:.0f} s; settling {args.settle:g} s",
              flush=True)
        time.sleep(args.settle)
        pods = pod_names(daemon.api_port)
        for run in range(1, args.runs + 1):
            window = measure(daemon.pid, args.duration, is_tansu)
            windows.append(window)
            print(f"window {run}/{args.runs} ({window.seconds:.0f} s): {fmt(window)}", flush=True)
            if args.by_process:
                for name, percent in sorted(window.per_process.items(), key=lambda kv: -kv[1]):
                    print(f"    {percent:6.2f} %  {name}")
        if pod_names(daemon.api_port) != pods:
            print(f"note: the pods changed during the measurement ({pods} → {pod_names(daemon.api_port)})")
    summary = Window(statistics.median(w.seconds for w in windows),
                     {g: statistics.median(w.per_group[g] for w in windows) for g in GROUPS})
    total = statistics.median(w.total for w in windows)
    print()
    print(f"barrage demo at rest, % of one core, median of {len(windows)} × {args.duration:g} s:")
    print(f"  wisp       {fmt(summary)} (median of totals {total:.2f} %)   target <= {TARGET_PERCENT:g} %: "
          f"{'MET' if total <= TARGET_PERCENT else 'MISSED'}")
    if not args.no_baseline:
        floor = baseline(args.duration)
        print(f"  baseline   bare `python -c 'time.sleep()'` over {floor.seconds:.0f} s: {floor.total:5.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
