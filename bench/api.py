"""Control API reads as Kubernetes clients make them: `kubectl get ksvc` with 500 Services, and list throughput.

    .venv/bin/python bench/api.py [--services 500] [--requests 200] [--runs 3]

The control API as the daemon serves it (build_api with the Kubernetes read side: its routes and the Table
middleware) runs under uvicorn on a free port, in a thread with its own event loop, over an in-memory store
holding --services Knative Services with Ready status (admitted and written directly: no reconciler runs, so
only the API is measured). Over one keep-alive connection (kubectl holds one), httpx sends the request
`kubectl get ksvc` sends — GET .../services?limit=500 with `Accept: application/json;as=Table;v=v1;
g=meta.k8s.io` — beside the same list as plain JSON (what `-o json` and client libraries ask). Per run: p50,
p95 and p99 of --requests requests each; then the medians over --runs, the Table/JSON ratio, and list
throughput (sequential requests/s and objects/s). When kubectl is on PATH, the wall time of the real `kubectl
get ksvc` against the same server is printed too (a process start and a cached discovery included).

Target: the Table request's p95 <= 50 ms with 500 Services.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        loop.close()
        sock.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(client: httpx.Client, path: str, accept: str, requests: int) -> dict[str, float]:
    """Latencies (ms) of `requests` sequential GETs, after a few warm-up requests; and objects per answer."""
    for _ in range(3):
        client.get(path, headers={"Accept": accept}).raise_for_status()
    times: list[float] = []
    objects = 0
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path, headers={"Accept": accept})
        body = response.json()
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        objects = len(body.get("rows", body.get("items", [])))
    total = sum(times) / 1000
    return {"p50": percentile(times, 0.5), "p95": percentile(times, 0.95), "p99": percentile(times, 0.99),
            "rps": requests / total, "objects": objects, "objects_per_s": objects * requests / total}


def bench_get(services: int, requests: int, runs: int) -> dict[str, dict[str, float]]:
    """`kubectl get ksvc`'s request (Table) beside the plain JSON list; medians over `runs`."""
    store = Store(None, time.time)
    store.open()
    seed_services(store, services)
    results: dict[str, list[dict[str, float]]] = {"table": [], "json": []}
    try:
        with served_api(store) as url, httpx.Client(base_url=url, timeout=30) as client:
            for run in range(runs):
                for name, accept in (("table", TABLE_ACCEPT), ("json", "application/json")):
                    figures = measure(client, f"{LIST_PATH}?limit=500", accept, requests)
                    results[name].append(figures)
                    print(f"run {run + 1} {name:5}: p50 {figures['p50']:6.1f} ms  p95 {figures['p95']:6.1f} ms  "
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
    print(f"  Table / JSON p95: {table['p95'] / plain['p95']:.2f}x")
    print(f"  list throughput: {plain['rps']:.1f} JSON lists/s ({plain['objects_per_s']:.0f} objects/s), "
          f"{table['rps']:.1f} Table lists/s ({table['objects_per_s']:.0f} rows/s)")
    ok = table["p95"] <= TARGET_P95_MS
    print(f"  target p95 <= {TARGET_P95_MS:.0f} ms: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ok = report_get(bench_get(args.services, args.requests, args.runs), args.services)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
