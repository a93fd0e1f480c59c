"""Data-plane benchmark (Knative's dataplane-probe shape): what the ingress adds on top of the function itself.

    .venv/bin/python bench/dataplane.py [--runs 5] [--rate 500] [--duration 8] [--peak-seconds 6] [--ramp]
                                        [--tracing RATE] [--h2c]

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
--tracing RATE adds a third side: a second daemon whose config-tracing samples new traces at RATE (backend otlp,
spans kept in its store), to measure what tracing costs the request path beside the untraced ingress.
--baseline-src DIR adds the ingress of another wisp source tree (`git archive` of an earlier commit), for A/B runs.
--h2c instead measures peak throughput by protocol: one instance that speaks HTTP/1.1 and h2c (uvicorn with
wisp's H2cOrHttp1Protocol) behind two Services, one declaring `ports: [{name: h2c}]`; wrk (HTTP/1.1) and h2load
(HTTP/2 prior knowledge, Debian's nghttp2-client) against each.
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


TRACING = """
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: config-tracing
  namespace: knative-serving
data:
  backend: otlp
  sample-rate: "RATE"
"""

# --h2c: an instance that answers "ok" over HTTP/1.1 and h2c, and two Services on it (by port name).
H2C_SERVER = """
import os
import socket

import uvicorn

from wisp.serving.h2c import H2cOrHttp1Protocol


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


config = uvicorn.Config(app, lifespan="off", access_log=False, log_level="warning", http=H2cOrHttp1Protocol)
uvicorn.Server(config).run(sockets=[socket.create_server(("127.0.0.1", int(os.environ["PORT"])))])
"""

H2C_MANIFEST = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: NAME
  namespace: default
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "1"
        autoscaling.knative.dev/max-scale: "1"
    spec:
      containerConcurrency: 0
      containers:
        - image: ./h2cserver
          command: [PYTHON, server.py]
          ports:
            - name: PORTNAME
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


def wait_ok(port: int, deadline: float, what: str, host: str = HOST) -> None:
    last: object = None
    while time.monotonic() < deadline:
        try:
            if get(port, "/", host) == 200:
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
    host: str = HOST


@contextlib.contextmanager
def daemon(workdir: Path, name: str = "ingress", manifest: str = "service.yaml",
           hosts: tuple[str, ...] = (HOST,), src: Path | None = None) -> Iterator[Side]:
    """`wisp up` on free ports in its own process, with the bench Service applied and Ready; with `src`, the
    wisp of that source tree (e.g. `git archive` of an earlier commit) instead of the installed one."""
    port, api_port = free_port(), free_port()
    log = (workdir / f"{name}.log").open("w")
    command = [str(BIN / "wisp")] if src is None else [sys.executable, "-c", "from wisp.cli.main import app; app()"]
    env = os.environ if src is None else {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.Popen(
        [*command, "up", str(workdir / manifest), "--port", str(port), "--api-port", str(api_port),
         "--state-dir", str(workdir / f"state-{name}")],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
    )
    try:
        for host in hosts:
            wait_ok(port, time.monotonic() + 120, f"the daemon's ingress ({host})", host)
        yield Side(name, port, proc.pid)
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


def peak_h2(side: Side, seconds: float) -> dict[str, float]:
    """`peak` over HTTP/2 prior knowledge: h2load, one stream at a time per connection (as wrk's)."""
    before = cpu_seconds(side.pid)
    out = subprocess.run(
        ["h2load", f"-c{PEAK_CONNECTIONS}", "-m1", f"-D{seconds:g}", f"--connect-to=127.0.0.1:{side.port}",
         f"http://{side.host}:{side.port}/"],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout
    cpu = cpu_seconds(side.pid) - before
    rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if done is None or done.group(1) != done.group(2):
        print(f"  warning: {side.name}: not every HTTP/2 request succeeded: {done.group(0) if done else out}")
    requests = int(done.group(2)) if done else 0
    return {"rps": rps, "cpu_us_per_request": cpu / requests * 1e6 if requests else float("nan")}


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
        ["wrk", "-t1", f"-c{PEAK_CONNECTIONS}", f"-d{seconds:g}s", "-H", f"Host: {side.host}",
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
    parser.add_argument("--tracing", type=float, default=None, metavar="RATE",
                        help="also run an ingress whose config-tracing samples at RATE (0-1)")
    parser.add_argument("--h2c", action="store_true", help="peak throughput by protocol (HTTP/1.1, h2c) instead")
    parser.add_argument("--baseline-src", type=Path, default=None, metavar="DIR",
                        help="also run an ingress from this wisp source tree (its src/), e.g. an earlier commit's")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 20 or not 0 < args.duration <= 60 or not 0 < args.peak_seconds <= 60:
        parser.error("runs must be 1-20, durations at most 60 s")
    if args.tracing is not None and not 0 <= args.tracing <= 1:
        parser.error("--tracing takes a sample rate from 0 to 1")
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (apt-get install -y wrk)")
    if args.h2c and shutil.which("h2load") is None:
        raise SystemExit("bench: h2load is not installed (apt-get install -y nghttp2-client)")

    with tempfile.TemporaryDirectory(prefix="wisp-bench-") as tmp:
        workdir = Path(tmp)
        if args.h2c:
            return protocols(workdir, args)
        (workdir / "function").mkdir()
        (workdir / "function" / "main.py").write_text(textwrap.dedent(FUNCTION))
        (workdir / "service.yaml").write_text(MANIFEST)
        (workdir / "traced.yaml").write_text(MANIFEST + TRACING.replace("RATE", str(args.tracing)))
        with contextlib.ExitStack() as stack:
            via_ingress = stack.enter_context(daemon(workdir))
            alone = stack.enter_context(direct(workdir))
            if args.ramp:
                ramp(via_ingress, args.duration)
                return 0
            sides = [alone, via_ingress]
            if args.tracing is not None:
                sides.append(stack.enter_context(daemon(workdir, "traced", "traced.yaml")))
            if args.baseline_src is not None:
                sides.append(stack.enter_context(daemon(workdir, "baseline", src=args.baseline_src.resolve())))
            print(f"warming up ... ({os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f})")
            for side in sides:
                peak(side, 2)
                open_loop(side, args.rate, 1, warmup=0.5)
            lat: dict[str, list[dict[str, Any]]] = {side.name: [] for side in sides}
            pk: dict[str, list[dict[str, float]]] = {side.name: [] for side in sides}
            for run in range(args.runs):
                order = sides if run % 2 == 0 else sides[::-1]
                for side in order:
                    lat[side.name].append(open_loop(side, args.rate, args.duration))
                for side in order:
                    pk[side.name].append(peak(side, args.peak_seconds))
                print(f"run {run + 1}/{args.runs}: latency p95 "
                      + " ".join(f"{n} {lat[n][-1]['p95']:.2f}" for n in lat) + " ms; peak "
                      + " ".join(f"{n} {pk[n][-1]['rps']:.0f}" for n in pk) + " req/s")
                for side_name in lat:
                    result = lat[side_name][-1]
                    if not sustained(result):
                        print(f"  warning: {side_name} did not sustain {args.rate:g} req/s: "
                              f"completed {result['completed']}, errors {result['errors']}, "
                              f"p99 {result['p99']:.1f} ms")
            report(args, lat, pk)
    return 0


def protocols(workdir: Path, args: argparse.Namespace) -> int:
    """--h2c: peak req/s and daemon CPU per request, by client protocol and instance protocol."""
    (workdir / "h2cserver").mkdir()
    (workdir / "h2cserver" / "server.py").write_text(textwrap.dedent(H2C_SERVER))
    manifests = [H2C_MANIFEST.replace("PORTNAME", port).replace("NAME", name).replace("PYTHON", sys.executable)
                 for name, port in (("plain", "http1"), ("h2c", "h2c"))]
    (workdir / "protocols.yaml").write_text("---\n".join(manifests))
    hosts = ("plain.default.localhost", "h2c.default.localhost")
    with daemon(workdir, "ingress", "protocols.yaml", hosts) as via:
        cases = [("HTTP/1.1 -> http1", hosts[0], peak), ("HTTP/1.1 -> h2c", hosts[1], peak),
                 ("HTTP/2 -> http1", hosts[0], peak_h2), ("HTTP/2 -> h2c", hosts[1], peak_h2)]
        print(f"warming up ... ({os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f})")
        results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in cases}
        for name, host, run in cases:
            run(Side(name, via.port, via.pid, host), 2)
        for i in range(args.runs):
            for name, host, run in cases if i % 2 == 0 else cases[::-1]:
                results[name].append(run(Side(name, via.port, via.pid, host), args.peak_seconds))
            print(f"run {i + 1}/{args.runs}: " + ", ".join(f"{n} {r[-1]['rps']:.0f}" for n, r in results.items()))
    print()
    print(f"peak by protocol (client -> instance), {PEAK_CONNECTIONS} connections, one request at a time each, "
          f"{args.peak_seconds:g} s x {args.runs} runs (median)")
    for name, runs in results.items():
        print(f"   {name:20} {med([r['rps'] for r in runs]):9.0f} req/s   (daemon CPU "
              f"{med([r['cpu_us_per_request'] for r in runs]):.0f} us/request)")
    return 0


def report(args: argparse.Namespace, lat: dict[str, list[dict[str, Any]]],
           pk: dict[str, list[dict[str, float]]]) -> None:
    print()
    print(f"1. latency, GET /sleep ({SLEEP_S * 1000:.0f} ms async sleep), open loop {args.rate:g} req/s, "
          f"{args.duration:g} s x {args.runs} runs (median of runs, ms)")
    print(f"   {'':10}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    for name in lat:
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
    print(f"2. peak, GET / (trivial), wrk {PEAK_CONNECTIONS} keep-alive connections, "
          f"{args.peak_seconds:g} s x {args.runs} runs (median)")
    print(f"   direct  {direct_rps:9.0f} req/s   (instance CPU "
          f"{med([r['cpu_us_per_request'] for r in pk['direct']]):.0f} us/request)")
    for name in [n for n in pk if n != "direct"]:
        print(f"   {name:7} {med([r['rps'] for r in pk[name]]):9.0f} req/s   (daemon CPU "
              f"{med([r['cpu_us_per_request'] for r in pk[name]]):.0f} us/request, instance not counted)")
    ratio = med([i["rps"] / d["rps"] for d, i in zip(pk["direct"], pk["ingress"], strict=True)])
    verdict = "MET" if ratio >= RATIO_TARGET else "MISSED"
    print(f"   ratio   {ratio:9.2f}         target >= {RATIO_TARGET:g} -> {verdict}")
    if "traced" in pk:
        cost = med([t["cpu_us_per_request"] - i["cpu_us_per_request"]
                    for i, t in zip(pk["ingress"], pk["traced"], strict=True)])
        share = med([t["rps"] / i["rps"] for i, t in zip(pk["ingress"], pk["traced"], strict=True)])
        base = med([r["cpu_us_per_request"] for r in pk["ingress"]])
        print(f"   tracing at sample-rate {args.tracing:g}: {cost:+.1f} us of daemon CPU per request "
              f"({cost / base * 100:+.1f} %), peak traced / untraced {share:.3f} (median of per-run ratios)")
    if "baseline" in pk:
        cost = med([i["cpu_us_per_request"] - b["cpu_us_per_request"]
                    for b, i in zip(pk["baseline"], pk["ingress"], strict=True)])
        share = med([i["rps"] / b["rps"] for b, i in zip(pk["baseline"], pk["ingress"], strict=True)])
        print(f"   this tree against --baseline-src: {cost:+.1f} us of daemon CPU per request, "
              f"peak this / baseline {share:.3f} (median of per-run ratios)")

if __name__ == "__main__":
    sys.exit(main())
