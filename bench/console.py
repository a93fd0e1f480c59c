"""The web console under load: how fast a scale event reaches an open page, and what open consoles cost the daemon.

    .venv/bin/python bench/console.py [--services 200] [--runs 3] [--window 20] [--consoles 10]

Starts `wisp up` with --services function Services, the first ten of them scaling at a concurrency of 1 (a 6 s
stable window, max-scale 4), then keeps ~1,000 req/s flowing across all of them (wrk, keep-alive, rotating Host
headers, a per-request delay that caps the rate) and, every --burst-every seconds (2), four slow requests at the
next of those ten in turn, so that some Service scales up or down every second or so.

Each run measures the daemon's CPU (utime + stime from /proc, % of one core) over --window seconds twice, side
by side: with no console open (the baseline) and with --consoles Chromium pages on the services list. During
the console window each page records, for every row whose desired instances changed, the delay from the
autoscaler's decision in the daemon (the row's changedAt) to the page applying it (Date.now(); same machine,
same clock). Printed: per run and as medians, the daemon's CPU without and with consoles, the difference,
the delay p50/p95/max over all pages, and wrk's achieved rate. Targets: delay p95 <= 1 s, added CPU <= 5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, async_playwright

from wisp.net import free_port

BIN = Path(sys.executable).parent
TICKS = os.sysconf("SC_CLK_TCK")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DELAY_TARGET_S, CPU_TARGET_PERCENT = 1.0, 5.0

APP = '''import time

import wisp


@wisp.http
def handle(request: wisp.Request) -> str:
    time.sleep(int(request.query_params.get("ms", "0")) / 1000)
    return "ok"
'''

SERVICE = """apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {name}
spec:
  template:
    metadata:
      annotations:
        wisp.dev/workload-class: function
{scaling}    spec:
      containers:
        - image: ./app
---
"""
# The Services the bursts go to scale at a concurrency of 1; the others keep one instance (min-scale 1, target
# 100), so the steady load alone moves no instance count.
STEADY = """        autoscaling.knative.dev/min-scale: "1"
"""
SCALER = """        autoscaling.knative.dev/target: "1"
        autoscaling.knative.dev/window: "6s"
        autoscaling.knative.dev/max-scale: "4"
"""
SCALERS = 10

WRK_SCRIPT = """
local hosts = {{}}
for i = 0, {count} - 1 do hosts[#hosts + 1] = string.format("svc-%03d.default.localhost", i) end
local n = math.random(#hosts)
request = function()
  n = n % #hosts + 1
  return wrk.format("GET", "/", {{["Host"] = hosts[n]}})
end
delay = function() return {delay_ms} end
"""


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def start_daemon(work: Path, services: int) -> tuple[subprocess.Popen[bytes], int, int]:
    (work / "app").mkdir()
    (work / "app" / "main.py").write_text(APP)
    manifests = [SERVICE.format(name=f"svc-{i:03d}", scaling=SCALER if i < SCALERS else STEADY)
                 for i in range(services)]
    (work / "services.yaml").write_text("".join(manifests))
    port, api_port = free_port(), free_port()
    daemon = subprocess.Popen(
        [str(BIN / "wisp"), "up", str(work / "services.yaml"), "--port", str(port), "--api-port", str(api_port),
         "--state-dir", str(work / "state"), "--max-instances", str(services * 6)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert daemon.stdout is not None
    log = (work / "daemon.log").open("ab")
    for line in daemon.stdout:
        log.write(line)
        if line.startswith(b"wisp is serving on"):
            break
    else:
        raise SystemExit(f"wisp up exited ({daemon.wait()}); see {work / 'daemon.log'}")

    def drain() -> None:
        assert daemon.stdout is not None
        for line in daemon.stdout:
            log.write(line)

    import threading

    threading.Thread(target=drain, daemon=True).start()
    return daemon, port, api_port


async def pulses(port: int, services: int, every: float, stop: asyncio.Event) -> int:
    """Every `every` seconds, four slow requests at the next Service in turn: it scales up to about four
    instances, and down again a stable window (6 s) later."""
    sent = 0
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as client:
        turn = 0
        while not stop.is_set():
            host = f"svc-{turn % min(SCALERS, services):03d}.default.localhost"
            batch = [client.get(f"http://127.0.0.1:{port}/", params={"ms": "1500"}, headers={"Host": host})
                     for _ in range(4)]
            turn += 1
            task = asyncio.gather(*batch, return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            await task
            sent += len(batch)
    return sent


async def open_consoles(browser: Browser, api_port: int, count: int, services: int) -> list[Page]:
    pages = []
    for _ in range(count):
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.goto(f"http://127.0.0.1:{api_port}/", timeout=180_000)
        loaded = f"() => document.querySelectorAll('#services-body tr[data-key]').length >= {services}"
        await page.wait_for_function(loaded, timeout=180_000)
        pages.append(page)
    return pages


async def measure(pid: int, window: float) -> float:
    before, t0 = cpu_ticks(pid), time.monotonic()
    await asyncio.sleep(window)
    return (cpu_ticks(pid) - before) / TICKS / (time.monotonic() - t0) * 100


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def runs(args: argparse.Namespace, pid: int, port: int, api_port: int) -> tuple[list[dict[str, float]], int]:
    stop = asyncio.Event()
    pulser = asyncio.create_task(pulses(port, args.services, args.burst_every, stop))
    results: list[dict[str, float]] = []
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            await asyncio.sleep(args.warmup)
            for run in range(args.runs):
                baseline = await measure(pid, args.window)
                print(f"run {run + 1}: daemon CPU without consoles {baseline:.1f} % of a core; opening "
                      f"{args.consoles} consoles", flush=True)
                opening = time.monotonic()
                pages = await open_consoles(browser, api_port, args.consoles, args.services)
                print(f"run {run + 1}: consoles open in {time.monotonic() - opening:.1f} s", flush=True)
                await asyncio.sleep(3)
                for page in pages:
                    await page.evaluate("window.wispConsole.lags.length = 0")
                with_consoles = await measure(pid, args.window)
                delays: list[float] = []
                for page in pages:
                    delays += await page.evaluate("window.wispConsole.lags.slice()")
                    await page.close()
                result = {"run": run + 1, "cpu_without": baseline, "cpu_with": with_consoles,
                          "added": with_consoles - baseline, "scale_events_seen": len(delays),
                          "delay_p50_ms": pct(delays, 50) * 1000, "delay_p95_ms": pct(delays, 95) * 1000,
                          "delay_max_ms": max(delays, default=float("nan")) * 1000}
                results.append(result)
                print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}),
                      flush=True)
            await browser.close()
    finally:
        stop.set()
        pulsed = await pulser
    return results, pulsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=float, default=20.0, help="seconds per CPU measurement")
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--consoles", type=int, default=10)
    parser.add_argument("--connections", type=int, default=12, help="wrk's keep-alive connections")
    parser.add_argument("--delay-ms", type=int, default=10, help="wrk's pause per request: caps the rate")
    parser.add_argument("--burst-every", type=float, default=2.0, help="seconds between scale bursts")
    args = parser.parse_args()
    if not 1 <= args.services <= 1000 or not 1 <= args.consoles <= 50:
        parser.error("services in 1..1000, consoles in 1..50")
    with tempfile.TemporaryDirectory(prefix="wisp-bench-console-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        daemon, port, api_port = start_daemon(work, args.services)
        print(f"{args.services} Services ready in {time.monotonic() - started:.0f} s", flush=True)
        total = args.runs * (2 * args.window + 30) + args.warmup + 60
        (work / "load.lua").write_text(WRK_SCRIPT.format(count=args.services, delay_ms=args.delay_ms))
        wrk = subprocess.Popen(["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{int(total)}s",
                                "-s", str(work / "load.lua"), f"http://127.0.0.1:{port}/"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            results, pulsed = asyncio.run(runs(args, daemon.pid, port, api_port))
        finally:
            wrk.send_signal(signal.SIGINT)  # wrk prints its summary when interrupted
            wrk_out = wrk.communicate()[0]
            daemon.terminate()
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", wrk_out)
    print(f"load: wrk {rate.group(1) if rate else '?'} req/s across {args.services} Services "
          f"(+{pulsed} slow burst requests)")
    median = {key: statistics.median(r[key] for r in results)
              for key in ("cpu_without", "cpu_with", "added", "delay_p50_ms", "delay_p95_ms", "delay_max_ms")}
    print(f"daemon CPU, % of one core (median of {len(results)}): without consoles {median['cpu_without']:.1f}, "
          f"with {args.consoles} consoles {median['cpu_with']:.1f}, added {median['added']:.1f} "
          f"(ratio {median['cpu_with'] / median['cpu_without']:.3f}; target added <= {CPU_TARGET_PERCENT})")
    print(f"scale event → page: p50 {median['delay_p50_ms']:.0f} ms, p95 {median['delay_p95_ms']:.0f} ms, "
          f"max {median['delay_max_ms']:.0f} ms (target p95 <= {DELAY_TARGET_S * 1000:.0f} ms)")
    ok = median["delay_p95_ms"] <= DELAY_TARGET_S * 1000 and median["added"] <= CPU_TARGET_PERCENT
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
