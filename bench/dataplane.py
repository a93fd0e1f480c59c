"""Data-plane benchmark (Knative's dataplane-probe shape): what the ingress adds on top of the function itself.

    .venv/bin/python bench/dataplane.py [--runs 5] [--rate 500] [--duration 8] [--peak-seconds 6] [--ramp]

One function, served two ways side by side in one run:
  * ingress: `wisp up` with a Service (min = max scale 1), requests to the ingress with a Host header;
  * direct:  the same code in the same function runtime (the template process, forked instance, uvicorn),
             on its own port, no ingress.
Tests, each repeated --runs times, the order of the two sides alternating, medians reported:
  1. latency: GET /sleep (an async handler that sleeps 100 ms) at a steady open-loop --rate req/s
     (bench/openloop.py, its own process); p50/p95/p99 each side and the added latency. Target: added p95 <= 2 ms.
  2. peak: GET / (returns "ok") with wrk, 50 keep-alive connections; req/s each side and the ratio. Target >= 0.5.
--ramp instead finds the highest open-loop rate the ingress sustains on this machine (no errors, >= 99 % of the
requests answered, p99 under 250 ms for a 100 ms handler).
Only 127.0.0.1; every run is bounded in time; every process started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wisp.net import free_port

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
HOST = "bench.default.localhost"
SLEEP_S = 0.1
PEAK_CONNECTIONS = 50
P95_TARGET_MS = 2.0
RATIO_TARGET = 0.5

FUNCTION = '''
import asyncio


async def handle(request):
    if request.url.path == "/sleep":
        await asyncio.sleep(SLEEP_S)
    return "ok"
'''.replace("SLEEP_S", repr(SLEEP_S))

MANIFEST = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: bench
  namespace: default
spec:
  template:
    metadata:
      annotations:
        wisp.dev/workload-class: function
        autoscaling.knative.dev/min-scale: "1"
        autoscaling.knative.dev/max-scale: "1"
    spec:
      containerConcurrency: 0
      containers:
        - image: ./function
"""


def get(port: int, path: str, host: str = HOST, timeout: float = 5.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def wait_ok(port: int, deadline: float, what: str) -> None:
    last: object = None
    while time.monotonic() < deadline:
        try:
            if get(port, "/") == 200:
                return
            last = "non-200"
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise SystemExit(f"bench: {what} did not answer 200 in time (last: {last})")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Side:
    name: str
    port: int
    pid: int  # the process whose CPU we report (daemon, or the direct instance)


@contextlib.contextmanager
def daemon(workdir: Path) -> Iterator[Side]:
    """`wisp up` on free ports in its own process, with the bench Service applied and Ready."""
    port, api_port = free_port(), free_port()
    log = (workdir / "daemon.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "wisp"), "up", str(workdir / "service.yaml"), "--port", str(port), "--api-port", str(api_port),
         "--state-dir", str(workdir / "state")],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_ok(port, time.monotonic() + 120, "the daemon's ingress")
        yield Side("ingress", port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def direct(workdir: Path) -> Iterator[Side]:
    """The same function runtime wisp uses (template + forked instance), alone on its own port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wisp.serving.workloads.template", "--target", "main:handle", "--drain", "5"],
        cwd=workdir / "function", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "PORT": str(port), "K_SERVICE": "bench", "FUNCTION_TARGET": "main:handle"},
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        replies = iter(proc.stdout.readline, b"")
        ready = json.loads(next(replies))
        if ready.get("ev") != "ready":
            raise SystemExit(f"bench: function template failed: {ready}")
        order = {"op": "fork", "name": "bench-direct", "port": port, "log": str(workdir / "direct.log")}
        proc.stdin.write((json.dumps(order) + "\n").encode())
        proc.stdin.flush()
        pid = 0
        for line in replies:
            message = json.loads(line)
            if message.get("ev") == "forked":
                pid = int(message["pid"])
            if message.get("ev") == "listening":
                pid = int(message["pid"])
                break
        wait_ok(port, time.monotonic() + 30, "the direct instance")
        yield Side("direct", port, pid)
    finally:
        proc.stdin.close()  # EOF ends the template; its instance dies with it (PR_SET_PDEATHSIG)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_loop(side: Side, rate: float, duration: float, warmup: float = 2.0) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE / "openloop.py"), "--port", str(side.port), "--host-header", HOST,
         "--path", "/sleep", "--rate", str(rate), "--duration", str(duration), "--warmup", str(warmup),
         "--connections", str(max(16, int(rate * SLEEP_S * 1.5)))],
        capture_output=True, text=True, timeout=duration + warmup + 60, check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def peak(side: Side, seconds: float) -> dict[str, float]:
    before = cpu_seconds(side.pid)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{PEAK_CONNECTIONS}", f"-d{seconds:g}s", "-H", f"Host: {HOST}",
         f"http://127.0.0.1:{side.port}/"],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout
    cpu = cpu_seconds(side.pid) - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        print(f"  warning: {side.name}: {bad.group(0) if bad else ''} {errors.group(0) if errors else ''}")
    requests = int(total.group(1)) if total else 0
    return {"rps": rps, "cpu_us_per_request": cpu / requests * 1e6 if requests else float("nan")}


def sustained(result: dict[str, Any]) -> bool:
    expected = result["rate"] * result["duration"]
    return not result["errors"] and result["completed"] >= 0.99 * expected and result["p99"] < 250


def ramp(ingress: Side, duration: float) -> None:
    best = 0.0
    for rate in (250, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000):
        result = open_loop(ingress, rate, duration)
        ok = sustained(result)
        print(f"  {rate:5d} req/s: p50 {result['p50']:.1f} p95 {result['p95']:.1f} p99 {result['p99']:.1f} ms, "
              f"errors {result['errors'] or 0}, lag {result['scheduler_max_lag_ms']:.1f} ms -> "
              f"{'sustained' if ok else 'NOT sustained'}")
        if not ok:
            break
        best = rate
    print(f"highest sustained open-loop rate through the ingress: {best:g} req/s")


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="wisp data-plane benchmark (ingress vs direct)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each test (1-20)")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop req/s for the latency test")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per latency run")
    parser.add_argument("--peak-seconds", type=float, default=6.0, help="seconds per wrk run")
    parser.add_argument("--ramp", action="store_true", help="find the highest sustained rate instead")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 20 or not 0 < args.duration <= 60 or not 0 < args.peak_seconds <= 60:
        parser.error("runs must be 1-20, durations at most 60 s")
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (apt-get install -y wrk)")

    with tempfile.TemporaryDirectory(prefix="wisp-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "function").mkdir()
        (workdir / "function" / "main.py").write_text(textwrap.dedent(FUNCTION))
        (workdir / "service.yaml").write_text(MANIFEST)
        with daemon(workdir) as via_ingress, direct(workdir) as alone:
            if args.ramp:
                ramp(via_ingress, args.duration)
                return 0
            sides = [alone, via_ingress]
            print(f"warming up ... ({os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f})")
            for side in sides:
                peak(side, 2)
                open_loop(side, args.rate, 1, warmup=0.5)
            lat: dict[str, list[dict[str, Any]]] = {"direct": [], "ingress": []}
            pk: dict[str, list[dict[str, float]]] = {"direct": [], "ingress": []}
            for run in range(args.runs):
                order = sides if run % 2 == 0 else sides[::-1]
                for side in order:
                    lat[side.name].append(open_loop(side, args.rate, args.duration))
                for side in order:
                    pk[side.name].append(peak(side, args.peak_seconds))
                d, i = lat["direct"][-1], lat["ingress"][-1]
                print(f"run {run + 1}/{args.runs}: latency p95 direct {d['p95']:.2f} ingress {i['p95']:.2f} ms; "
                      f"peak direct {pk['direct'][-1]['rps']:.0f} ingress {pk['ingress'][-1]['rps']:.0f} req/s")
                for side_name, result in (("direct", d), ("ingress", i)):
                    if not sustained(result):
                        print(f"  warning: {side_name} did not sustain {args.rate:g} req/s: "
                              f"completed {result['completed']}, errors {result['errors']}, "
                              f"p99 {result['p99']:.1f} ms")
            report(args, lat, pk)
    return 0


def report(args: argparse.Namespace, lat: dict[str, list[dict[str, Any]]],
           pk: dict[str, list[dict[str, float]]]) -> None:
    print()
    print(f"1. latency, GET /sleep ({SLEEP_S * 1000:.0f} ms async sleep), open loop {args.rate:g} req/s, "
          f"{args.duration:g} s x {args.runs} runs (median of runs, ms)")
    print(f"   {'':10}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    for name in ("direct", "ingress"):
        row = [med([r[q] for r in lat[name]]) for q in ("p50", "p95", "p99", "max")]
        print(f"   {name:10}" + "".join(f"{v:9.2f}" for v in row))
    added = {q: med([i[q] - d[q] for d, i in zip(lat["direct"], lat["ingress"], strict=True)])
             for q in ("p50", "p95", "p99")}
    print(f"   {'added':10}" + "".join(f"{added[q]:9.2f}" for q in ("p50", "p95", "p99"))
          + "   (median of per-run differences)")
    lag = max(r["scheduler_max_lag_ms"] for side in lat.values() for r in side)
    print(f"   generator's worst scheduling lag: {lag:.1f} ms")
    verdict = "MET" if added["p95"] <= P95_TARGET_MS else "MISSED"
    print(f"   target: added p95 <= {P95_TARGET_MS:g} ms -> {verdict}")
    print()
    direct_rps = med([r["rps"] for r in pk["direct"]])
    ingress_rps = med([r["rps"] for r in pk["ingress"]])
    ratio = med([i["rps"] / d["rps"] for d, i in zip(pk["direct"], pk["ingress"], strict=True)])
    print(f"2. peak, GET / (trivial), wrk {PEAK_CONNECTIONS} keep-alive connections, "
          f"{args.peak_seconds:g} s x {args.runs} runs (median)")
    print(f"   direct  {direct_rps:9.0f} req/s   (instance CPU "
          f"{med([r['cpu_us_per_request'] for r in pk['direct']]):.0f} us/request)")
    print(f"   ingress {ingress_rps:9.0f} req/s   (daemon CPU "
          f"{med([r['cpu_us_per_request'] for r in pk['ingress']]):.0f} us/request, instance not counted)")
    verdict = "MET" if ratio >= RATIO_TARGET else "MISSED"
    print(f"   ratio   {ratio:9.2f}         target >= {RATIO_TARGET:g} -> {verdict}")


if __name__ == "__main__":
    sys.exit(main())
