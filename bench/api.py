"""Control API reads as Kubernetes clients make them: `kubectl get ksvc` with 500 Services, and list throughput.

    .venv/bin/python bench/api.py [--services 500] [--requests 200] [--runs 3] [--part all|get|watch]
                                  [--watchers 100] [--updates 1000] [--rate 100]

The control API as the daemon serves it (build_api with the Kubernetes read side: its routes and the Table
middleware) runs under uvicorn on a free port, in a thread with its own event loop, over an in-memory store
holding --services Knative Services with Ready status (admitted and written directly: no reconciler runs, so
only the API is measured). Over one keep-alive connection (kubectl holds one), httpx sends the request
`kubectl get ksvc` sends — GET .../services?limit=500 with `Accept: application/json;as=Table;v=v1;
g=meta.k8s.io` — beside the same list as plain JSON (what `-o json` and client libraries ask). Per run: p50,
p95 and p99 of --requests requests each, and the server thread's CPU per request (what a busy machine does
not inflate); then the medians over --runs, the Table/JSON ratio, and list throughput (sequential requests/s
and objects/s). When kubectl is on PATH, the wall time of the real `kubectl get ksvc` against the same server
is printed too (a process start and a cached discovery included).

Target: the Table request's p95 <= 50 ms with 500 Services.

Watch fan-out (`--part watch`, part of `all`): --watchers watches (`?watch=true` from the list's
resourceVersion, fieldSelector metadata.name, as `kubectl get NAME -w` and `kubectl wait` ask), held by a
few separate processes (aiohttp), while this process sends --updates merge patches of one Service at --rate/s
(open loop), each carrying its send time in an annotation. Each watcher subtracts it on arrival: the delivery
delay, the PATCH's own round trip included. Beside it, the same updates to one watcher (the baseline). Checked:
every watcher gets every event, in order. Target: p99 <= 50 ms with 100 watchers and 1,000 updates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from wisp.api import kinds as k
from wisp.control.admission import apply_manifests
from wisp.control.api import VirtualKinds, build_api
from wisp.control.k8s_surface import KubernetesSurface
from wisp.store import Store

TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
                "g=meta.k8s.io,application/json")
LIST_PATH = "/apis/serving.knative.dev/v1/namespaces/default/services"
TARGET_P95_MS = 50.0


async def _no_logs(namespace: str, service: str, follow: bool, tail: int) -> Any:
    return
    yield ""


def seed_services(store: Store, count: int) -> None:
    """`count` Services as a user applies them, then the status the serving reconciler would write."""
    manifests = [{"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                  "metadata": {"name": f"svc-{i:04d}", "labels": {"app": f"bench-{i % 10}"}},
                  "spec": {"template": {"metadata": {"annotations": {"autoscaling.knative.dev/max-scale": "5"}},
                                        "spec": {"containers": [{"image": "./app", "env": [
                                            {"name": "GREETING", "value": "hello"}]}]}}}}
                 for i in range(count)]
    apply_manifests(manifests, store)
    for i in range(count):
        name = f"svc-{i:04d}"
        conditions = [{"type": t, "status": "True", "lastTransitionTime": "2026-11-30T10:00:00Z"}
                      for t in ("ConfigurationsReady", "Ready", "RoutesReady")]
        store.put_status(k.SERVICE, "default", name, {
            "observedGeneration": 1, "url": f"http://{name}.default.localhost:8080",
            "address": {"url": f"http://{name}.default.svc.cluster.local"},
            "latestCreatedRevisionName": f"{name}-00001", "latestReadyRevisionName": f"{name}-00001",
            "traffic": [{"revisionName": f"{name}-00001", "latestRevision": True, "percent": 100}],
            "conditions": conditions})


@contextmanager
def served_api(store: Store, clock: Callable[[], float] = time.time) -> Iterator[str]:
    """The control API with the read side, as the daemon assembles it, on a free port in its own thread."""
    with served_api_cpu(store, clock) as (url, _):
        yield url


@contextmanager
def served_api_cpu(store: Store, clock: Callable[[], float] = time.time) -> Iterator[tuple[str, Callable[[], float]]]:
    """`served_api`, and the CPU seconds its server thread has used so far (the server side's cost, which a busy
    machine delays but does not inflate the way it inflates wall-clock latency)."""
    surface = KubernetesSurface(store, clock, lambda ns: [], Path("/nonexistent"), "bench")
    virtual = VirtualKinds(list_pods=surface.pods, list_autoscalers=lambda ns: [], service_logs=_no_logs,
                           info=lambda: {}, metrics=lambda: (b"", "text/plain"))
    app = surface.wrap(build_api(store, virtual, extra_routes=surface.routes()))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, loop="asyncio")
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    assert thread.ident is not None
    cpu_clock = time.pthread_getcpuclockid(thread.ident)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", lambda: time.clock_gettime(cpu_clock)
    finally:
        server.should_exit = True
        thread.join(10)
        loop.close()
        sock.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(client: httpx.Client, path: str, accept: str, requests: int,
            server_cpu: Callable[[], float] = lambda: 0.0) -> dict[str, float]:
    """Latencies (ms) of `requests` sequential GETs, after a few warm-up requests; the server thread's CPU
    per request (ms); and objects per answer."""
    for _ in range(3):
        client.get(path, headers={"Accept": accept}).raise_for_status()
    cpu_start = server_cpu()
    times: list[float] = []
    objects = 0
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path, headers={"Accept": accept})  # the whole body read: server side + transfer
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        body = response.json()
        objects = len(body.get("rows", body.get("items", [])))
    total = sum(times) / 1000
    return {"p50": percentile(times, 0.5), "p95": percentile(times, 0.95), "p99": percentile(times, 0.99),
            "cpu": (server_cpu() - cpu_start) * 1000 / requests,
            "rps": requests / total, "objects": objects, "objects_per_s": objects * requests / total}


def bench_get(services: int, requests: int, runs: int) -> dict[str, dict[str, float]]:
    """`kubectl get ksvc`'s request (Table) beside the plain JSON list; medians over `runs`."""
    store = Store(None, time.time)
    store.open()
    seed_services(store, services)
    results: dict[str, list[dict[str, float]]] = {"table": [], "json": []}
    try:
        with served_api_cpu(store) as (url, cpu), httpx.Client(base_url=url, timeout=30) as client:
            for run in range(runs):
                for name, accept in (("table", TABLE_ACCEPT), ("json", "application/json")):
                    figures = measure(client, f"{LIST_PATH}?limit=500", accept, requests, cpu)
                    results[name].append(figures)
                    print(f"run {run + 1} {name:5}: server CPU {figures['cpu']:5.1f} ms/request  "
                          f"p50 {figures['p50']:6.1f} ms  p95 {figures['p95']:6.1f} ms  "
                          f"p99 {figures['p99']:6.1f} ms  {figures['rps']:6.1f} lists/s  "
                          f"{figures['objects_per_s']:8.0f} objects/s ({figures['objects']:.0f} per list)")
            kubectl = shutil.which("kubectl")
            if kubectl is not None:
                print(f"real `kubectl get ksvc` (process start included): {kubectl_wall(kubectl, url):.0f} ms median")
    finally:
        store.close()
    return {name: {key: statistics.median(r[key] for r in runs_) for key in runs_[0]}
            for name, runs_ in results.items()}


def kubectl_wall(kubectl: str, url: str, times: int = 5) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home}
        args = [kubectl, "--server", url, "get", "ksvc", "--no-headers"]
        subprocess.run(args, env=env, capture_output=True, check=True, timeout=60)  # fills the discovery cache
        walls = []
        for _ in range(times):
            start = time.perf_counter()
            subprocess.run(args, env=env, capture_output=True, check=True, timeout=60)
            walls.append((time.perf_counter() - start) * 1000)
    return statistics.median(walls)


def report_get(medians: dict[str, dict[str, float]], services: int) -> bool:
    table, plain = medians["table"], medians["json"]
    print(f"\nkubectl get ksvc with {services} Services (medians over runs):")
    print(f"  Table      p50 {table['p50']:6.1f} ms  p95 {table['p95']:6.1f} ms  p99 {table['p99']:6.1f} ms")
    print(f"  JSON list  p50 {plain['p50']:6.1f} ms  p95 {plain['p95']:6.1f} ms  p99 {plain['p99']:6.1f} ms")
    print(f"  Table / JSON p95: {table['p95'] / plain['p95']:.2f}x; server CPU per request: Table "
          f"{table['cpu']:.1f} ms, JSON {plain['cpu']:.1f} ms (ratio {table['cpu'] / max(plain['cpu'], 1e-9):.2f}x)")
    print(f"  list throughput: {plain['rps']:.1f} JSON lists/s ({plain['objects_per_s']:.0f} objects/s), "
          f"{table['rps']:.1f} Table lists/s ({table['objects_per_s']:.0f} rows/s)")
    ok = table["p95"] <= TARGET_P95_MS
    print(f"  target p95 <= {TARGET_P95_MS:.0f} ms: {'PASS' if ok else 'FAIL'}")
    return ok


# -- watch fan-out -------------------------------------------------------------------------------------------

WATCHED = "watched"
SENT = "bench.wisp.dev/sent"  # the updater's send time, carried in the object so each watcher can subtract it
TARGET_WATCH_P99_MS = 50.0
WATCHER_PROCESSES = 4
SENT_FIELD = re.compile(rb'"' + re.escape(SENT.encode()) + rb'":"([0-9.]+)"')
VERSION_FIELD = re.compile(rb'"resourceVersion":"([0-9]+)"')


async def _watchers(url: str, count: int, expected: int, version: str, timeout: float) -> dict[str, Any]:
    """`count` watches of the Services from `version`; each records its delay for every MODIFIED of WATCHED."""
    import aiohttp  # only the watcher process needs it

    received: list[list[str]] = [[] for _ in range(count)]
    delays: list[float] = []
    ready = asyncio.Event()
    started = 0

    async def one(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal started
        params = {"watch": "true", "resourceVersion": version, "fieldSelector": f"metadata.name={WATCHED}"}
        async with session.get(f"{url}{LIST_PATH}", params=params) as response:
            response.raise_for_status()
            started += 1
            if started == count:
                ready.set()
            async for line in response.content:
                now = time.time()
                # Two searches instead of a full parse: the watcher processes must not be what is measured.
                sent = SENT_FIELD.search(line)
                if not line.startswith(b'{"type":"MODIFIED"') or sent is None:
                    continue
                delays.append((now - float(sent.group(1))) * 1000)
                version_field = VERSION_FIELD.search(line)
                received[index].append(version_field.group(1).decode() if version_field else "")
                if len(received[index]) == expected:
                    return

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        tasks = [asyncio.create_task(one(i, session)) for i in range(count)]
        await asyncio.wait_for(ready.wait(), 30)
        print("ready", flush=True)
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"counts": [len(r) for r in received], "in_order": all(r == sorted(r, key=int) for r in received),
            "delays": delays}


def watch_child(url: str, count: int, expected: int, version: str) -> None:
    """The watcher side, in a process of its own (the server's loop is not slowed by the clients' parsing)."""
    result = asyncio.run(_watchers(url, count, expected, version, timeout=120))
    print(json.dumps(result), flush=True)


def server_cpu() -> float:
    """CPU seconds used so far by the API server's thread (the only thread besides this one): a figure the
    machine's other load does not inflate, as it does the delays."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and t.ident is not None]
    return sum(time.clock_gettime(time.pthread_getcpuclockid(t.ident)) for t in others if t.ident is not None)


def fan_out(url: str, watchers: int, updates: int, rate: float) -> dict[str, float]:
    """One run: `watchers` watches, then `updates` merge patches of WATCHED at `rate`/s (open loop)."""
    cpu_before = server_cpu()
    with httpx.Client(base_url=url, timeout=30) as client:
        version = client.get(LIST_PATH).json()["metadata"]["resourceVersion"]
        shares = [watchers // WATCHER_PROCESSES + (1 if i < watchers % WATCHER_PROCESSES else 0)
                  for i in range(WATCHER_PROCESSES)]
        children = [subprocess.Popen([sys.executable, __file__, "--watch-child", url, str(share), str(updates),
                                      version], stdout=subprocess.PIPE, text=True) for share in shares if share]
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("the watchers did not start")
        start = time.perf_counter()
        for index in range(updates):
            due = start + index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            patch = {"metadata": {"annotations": {SENT: repr(time.time())}}}
            client.patch(f"{LIST_PATH}/{WATCHED}", json=patch,
                         headers={"content-type": "application/merge-patch+json"}).raise_for_status()
        outputs = [child.communicate(timeout=180)[0] for child in children]
    cpu = server_cpu() - cpu_before
    results = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
    delays = [d for r in results for d in r["delays"]]
    complete = all(c == updates for r in results for c in r["counts"]) and all(r["in_order"] for r in results)
    return {"p50": percentile(delays, 0.5), "p99": percentile(delays, 0.99), "max": max(delays),
            "complete": 1.0 if complete else 0.0, "delivered": float(len(delays)), "cpu": cpu,
            "cpu_per_update_ms": cpu / updates * 1000}


def bench_watch(watchers: int, updates: int, rate: float, runs: int) -> dict[str, dict[str, float]]:
    """Watch fan-out beside one watcher (the baseline) over the same updates; medians over `runs`."""
    store = Store(None, time.time)
    store.open()
    seed_services(store, 1)
    apply_manifests([{"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": WATCHED},
                      "spec": {"template": {"spec": {"containers": [{"image": "./app"}]}}}}], store)
    results: dict[str, list[dict[str, float]]] = {"one": [], "many": []}
    try:
        with served_api(store) as url:
            for run in range(runs):
                for name, count in (("one", 1), ("many", watchers)):
                    figures = fan_out(url, count, updates, rate)
                    results[name].append(figures)
                    print(f"run {run + 1} {count:4} watcher(s): p50 {figures['p50']:6.1f} ms  p99 "
                          f"{figures['p99']:6.1f} ms  max {figures['max']:6.1f} ms  {figures['delivered']:.0f} "
                          f"events delivered, every watcher got every event in order: {bool(figures['complete'])}; "
                          f"server CPU {figures['cpu_per_update_ms']:.2f} ms per update")
    finally:
        store.close()
    return {name: {key: statistics.median(r[key] for r in runs_) for key in runs_[0]}
            for name, runs_ in results.items()}


def report_watch(medians: dict[str, dict[str, float]], watchers: int, updates: int, rate: float) -> bool:
    one, many = medians["one"], medians["many"]
    print(f"\nwatch fan-out: {watchers} watchers, {updates} updates at {rate:.0f}/s (medians over runs):")
    print(f"  1 watcher     p50 {one['p50']:6.1f} ms  p99 {one['p99']:6.1f} ms")
    print(f"  {watchers} watchers  p50 {many['p50']:6.1f} ms  p99 {many['p99']:6.1f} ms  "
          f"({many['delivered']:.0f} deliveries)")
    print(f"  p99 {watchers} watchers / 1 watcher: {many['p99'] / max(one['p99'], 0.001):.2f}x")
    per_delivery = (many["cpu_per_update_ms"] - one["cpu_per_update_ms"]) / max(watchers - 1, 1) * 1000
    print(f"  server CPU per update: {one['cpu_per_update_ms']:.2f} ms with 1 watcher, "
          f"{many['cpu_per_update_ms']:.2f} ms with {watchers} (~{per_delivery:.0f} us per extra delivery; "
          f"{many['cpu_per_update_ms'] * rate / 10:.0f} % of a core at {rate:.0f} updates/s)")
    ok = many["p99"] <= TARGET_WATCH_P99_MS and many["complete"] == 1.0
    print(f"  target: every watcher gets every event, p99 <= {TARGET_WATCH_P99_MS:.0f} ms: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--watch-child":
        watch_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--part", choices=("all", "get", "watch"), default="all")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="updates per second during the watch fan-out")
    args = parser.parse_args()
    ok = True
    if args.part in ("all", "get"):
        ok = report_get(bench_get(args.services, args.requests, args.runs), args.services) and ok
    if args.part in ("all", "watch"):
        medians = bench_watch(args.watchers, args.updates, args.rate, args.runs)
        ok = report_watch(medians, args.watchers, args.updates, args.rate) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
