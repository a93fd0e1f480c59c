"""Cold-start benchmark: scale from zero to the first response, against what a naive platform pays.

    .venv/bin/python bench/coldstart.py [--rounds 5] [--functions 4] [--containers 2] [--baseline-runs 10]

`wisp up` runs in its own process with --functions function Services and --containers container Services,
all at `initial-scale: 0`, a 6 s stable window and a 1 s scale-to-zero grace period. Each round waits until
*every* bench revision has no instance at all (checked through the control API's pods), then sends one
request to each Service in turn on a fresh connection: the measured path is the real one (the throttler
holds the request, the autoscaler is poked, the instance is forked from the template or the process is
started, readiness, proxy). After each cold request we check that exactly one new instance serves it. Then
the warm latency of the same Service (keep-alive, 30 requests). Rounds × functions samples in all.

Side by side in the same run:
  * naive: a fresh interpreter that imports starlette/uvicorn and the same module and serves it
    (`python -c ...`), timed from spawn to its first response; what a platform without templates pays;
  * container direct: the same tiny server command run directly, spawn → first response; wisp's figure for
    the container class is the time *added* over that (paired per round, median of the differences).
Targets: function cold p50 <= 15 ms, p99 <= 50 ms; container added <= 20 ms. 127.0.0.1 only, every wait
bounded, every process started here stopped at the end.

OCI images (--oci N, default 2; 0 skips): N Services of a tiny image (the same server, python3 from Debian) at
`initial-scale: 0` on their own `wisp up`, scale from zero → first response, each paired with a plain `podman
run --network host` of the image to its first response; target: wisp adds <= 20 ms. Podman runs as configured
in this environment (CONTAINERS_CONF where podman needs it).

Knative Functions (--knative-functions N, default 4; 0 skips): N projects made from the vendored http template,
served by a second `wisp up` on their folder, scale from zero → first response over N × rounds samples, beside
the project's `service/main.py` equivalent (func-python under hypercorn, in the environment wisp made for the
project) from spawn to first response. Targets: cold p50 <= 15 ms and >= 10x faster than func-python's start.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import shutil
import signal
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

import wisp.api
from wisp.api.func_project import FUNC_YAML
from wisp.net import free_port

BIN = Path(sys.executable).parent
FUNCTION_P50_TARGET_MS, FUNCTION_P99_TARGET_MS, CONTAINER_ADDED_TARGET_MS = 15.0, 50.0, 20.0
FUNC_P50_TARGET_MS, FUNC_RATIO_TARGET = 15.0, 10.0  # Knative Functions: cold p50, and vs func-python's own start

FUNCTION = '''
def handle(request):
    return "ok"
'''

# What a user without wisp would run: a fresh interpreter serving the same module with starlette/uvicorn.
NAIVE = textwrap.dedent('''
    import os, sys
    sys.path.insert(0, os.getcwd())
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from main import handle
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse(handle(request)))])
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", access_log=False)
''')

# The container: the smallest honest HTTP server, standard library only.
CONTAINER = '''
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''


def get(port: int, host: str, path: str = "/", timeout: float = 30.0) -> tuple[int, bytes]:
    """One GET on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def api(port: int, path: str) -> Any:
    status, body = get(port, "127.0.0.1", path)
    if status != 200:
        raise SystemExit(f"bench: control API {path} answered {status}: {body[:200]!r}")
    return json.loads(body)


def pods(api_port: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api(api_port, "/api/v1/namespaces/default/pods")["items"]
    return items


def pods_of(items: list[dict[str, Any]], revision: str) -> list[dict[str, Any]]:
    return [p for p in items if p["metadata"]["labels"].get("serving.knative.dev/revision") == revision]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 20 samples is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def first_response_after_spawn(argv: list[str], cwd: Path, env: dict[str, str], port: int,
                               timeout: float = 30.0) -> float:
    """Spawn a server and time spawn → its first 200 (connects retried every 0.5 ms, as a tight probe)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env={**env, "PORT": str(port)}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status, _ = get(port, "127.0.0.1")
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit(f"bench: {argv} exited with {proc.returncode}") from None
                time.sleep(0.0005)
                continue
            if status != 200:
                raise SystemExit(f"bench: {argv} answered {status}")
            return time.perf_counter() - started
        raise SystemExit(f"bench: {argv} did not answer within {timeout:g}s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass
class Daemon:
    port: int
    api_port: int
    pid: int


@contextlib.contextmanager
def wisp_up(manifest: Path, workdir: Path, services: list[str], timeout: float = 120.0) -> Iterator[Daemon]:
    """`wisp up MANIFEST` on free ports in its own process, until every named Service is Ready."""
    port, api_port = free_port(), free_port()
    log = (workdir / "daemon.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "wisp"), "up", str(manifest), "--port", str(port), "--api-port", str(api_port),
         "--state-dir", str(workdir / "state")],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"bench: wisp up exited with {proc.returncode}; see {workdir / 'daemon.log'}")
            with contextlib.suppress(OSError, ValueError):
                items = api(api_port, "/apis/serving.knative.dev/v1/namespaces/default/services")["items"]
                ready = {s["metadata"]["name"] for s in items
                         if any(c["type"] == "Ready" and c["status"] == "True"
                                for c in s.get("status", {}).get("conditions", []))}
                if set(services) <= ready:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: services not Ready within {timeout:g}s; see {workdir / 'daemon.log'}")
            time.sleep(0.1)
        yield Daemon(port, api_port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def service_yaml(name: str, image: str, function: bool, extra_annotations: dict[str, str],
                 spec: dict[str, Any], container: dict[str, Any]) -> str:
    annotations = dict(extra_annotations)
    if function:
        annotations["wisp.dev/workload-class"] = "function"
    body = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"template": {"metadata": {"annotations": annotations},
                              "spec": {**spec, "containers": [{"image": image, **container}]}}},
    }
    return json.dumps(body)  # JSON is YAML


def autoscaler_config(data: dict[str, str]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"}, "data": data})


def write_manifest(workdir: Path, functions: list[str], containers: list[str]) -> Path:
    (workdir / "fn").mkdir()
    (workdir / "fn" / "main.py").write_text(FUNCTION)
    (workdir / "ctr").mkdir()
    (workdir / "ctr" / "server.py").write_text(CONTAINER)
    zero = {"autoscaling.knative.dev/initial-scale": "0"}
    docs = [autoscaler_config({"allow-zero-initial-scale": "true", "stable-window": "6s",
                               "scale-to-zero-grace-period": "1s"})]
    docs += [service_yaml(n, "./fn", True, zero, {}, {}) for n in functions]
    docs += [service_yaml(n, "./ctr", False, zero, {}, {"command": [sys.executable, "server.py"]})
             for n in containers]
    manifest = workdir / "services.yaml"
    manifest.write_text("\n---\n".join(docs) + "\n")
    return manifest


def wait_all_at_zero(d: Daemon, revisions: list[str], timeout: float = 90.0) -> float:
    started = time.monotonic()
    while True:
        items = pods(d.api_port)
        if not any(pods_of(items, r) for r in revisions):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise SystemExit(f"bench: revisions did not scale to zero within {timeout:g}s")
        time.sleep(0.2)


def cold_then_warm(d: Daemon, service: str, warm_requests: int) -> tuple[float, list[float]]:
    """One request from zero (fresh connection), checked to have started exactly one new instance;
    then `warm_requests` on one keep-alive connection."""
    host, revision = f"{service}.default.localhost", f"{service}-00001"
    assert not pods_of(pods(d.api_port), revision), f"{revision} is not at zero"
    started = time.perf_counter()
    status, body = get(d.port, host)
    cold = time.perf_counter() - started
    if status != 200:
        raise SystemExit(f"bench: cold request to {service} answered {status}: {body[:200]!r}")
    running = pods_of(pods(d.api_port), revision)
    if len(running) != 1:
        raise SystemExit(f"bench: expected one instance of {revision} after the cold request, saw {len(running)}")
    warm: list[float] = []
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        for _ in range(warm_requests):
            t = time.perf_counter()
            conn.request("GET", "/", headers={"Host": host})
            response = conn.getresponse()
            response.read()
            warm.append(time.perf_counter() - t)
            if response.status != 200:
                raise SystemExit(f"bench: warm request to {service} answered {response.status}")
    finally:
        conn.close()
    return cold, warm


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


# Knative Functions: the image `func deploy` builds runs the project's `service/main.py`, which serves `new`
# from the `function` package with func-python (hypercorn inside). This is that, in the project's own
# environment (the one wisp made), listening where the bench says.
FUNC_PYTHON_MAIN = textwrap.dedent('''
    import os
    os.environ["LISTEN_ADDRESS"] = "127.0.0.1:" + os.environ["PORT"]
    from func_python.http import serve
    from function import new
    serve(new)
''')


def knative_functions(services: int, rounds: int, baseline_runs: int, warm_requests: int) -> None:
    """The http template of Knative Functions as `wisp up` serves the project: scale from zero → first
    response, beside func-python under hypercorn started the way the cluster's image starts it."""
    templates = Path(wisp.api.__file__).parent / "reference" / "func-templates"
    names = [f"kfunc-{i}" for i in range(services)]
    with tempfile.TemporaryDirectory(prefix="wisp-coldstart-kfunc-") as tmp:
        workdir = Path(tmp)
        manifests = workdir / "manifests"
        manifests.mkdir()
        (manifests / "autoscaler.yaml").write_text(autoscaler_config(
            {"allow-zero-initial-scale": "true", "stable-window": "6s", "scale-to-zero-grace-period": "1s"}))
        for name in names:
            shutil.copytree(templates / "http", manifests / name)
            (manifests / name / FUNC_YAML).write_text(textwrap.dedent(f"""\
                specVersion: 0.36.0
                name: {name}
                runtime: python
                created: 2026-11-30T10:00:00Z
                deploy:
                  annotations:
                    autoscaling.knative.dev/initial-scale: "0"
                """))
        print(f"\nKnative Functions: {services} projects from the http template (first start makes the project's "
              "environment with uv) ...")
        cold: list[float] = []
        warm: list[float] = []
        with wisp_up(manifests, workdir, names, timeout=600) as d:
            environments = sorted((workdir / "state" / "func-envs").glob("*/bin/python"))
            if len(environments) != 1:
                raise SystemExit(f"bench: expected one project environment, found {environments}")
            for round_ in range(1, rounds + 1):
                waited = wait_all_at_zero(d, [f"{n}-00001" for n in names])
                for name in names:
                    first, warm_ = cold_then_warm(d, name, warm_requests)
                    cold.append(first)
                    warm.append(statistics.median(warm_))
                print(f"round {round_}/{rounds} (waited {waited:4.1f} s for zero): cold "
                      + " ".join(f"{c * 1000:.1f}" for c in cold[-len(names):]) + " ms")
        print(f"func-python under hypercorn, the project's environment, spawn → first response, {baseline_runs} "
              "runs ...")
        middleware = [first_response_after_spawn([str(environments[0]), "-c", FUNC_PYTHON_MAIN],
                                                 manifests / names[0], {"PATH": os.environ.get("PATH", os.defpath)},
                                                 free_port())
                      for _ in range(baseline_runs)]
    p50, p99 = statistics.median(cold), percentile(cold, 99)
    base = statistics.median(middleware)
    met = p50 * 1000 <= FUNC_P50_TARGET_MS and base / p50 >= FUNC_RATIO_TARGET
    print(f"Knative Functions http template, scale from zero → first response ({len(cold)} samples)")
    print(f"  wisp cold        p50 {ms(p50)}   p99 {ms(p99)}   min {ms(min(cold))}")
    print(f"  wisp warm        p50 {ms(statistics.median(warm))}")
    print(f"  func-python      p50 {ms(base)}   p99 {ms(percentile(middleware, 99))}   "
          f"(hypercorn, as the cluster's image starts it; {len(middleware)} runs)")
    print(f"  ratio func-python/wisp cold {base / p50:.1f}x; targets p50 <= {FUNC_P50_TARGET_MS:g} ms and "
          f">= {FUNC_RATIO_TARGET:g}x: {'MET' if met else 'MISSED'}")


# OCI (--oci N, default 2; 0 skips): a tiny server in an image built FROM the tests' Debian base image
# (tests/oci_images.py; needs podman, and mmdebstrap the first time), served by their own `wisp up` through the
# user's podman exactly as configured in this environment (set CONTAINERS_CONF where podman needs it).
OCI_IMAGE = "localhost/wisp-bench-oci-server:1"
# Like CONTAINER, and it says when it started listening (containers share the host's clock): the engine's and
# the app's own start, which a busy machine makes vary by hundreds of ms, can then be told apart from wisp's
# share before the engine is asked to create the container and after the app listens.
OCI_SERVER = '''
import os, signal, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # as PID 1 it would otherwise ignore SIGTERM


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("X-Listening-At", LISTENING)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
LISTENING = repr(time.time())
server.serve_forever()
'''


@dataclass
class OciSample:
    total: float  # request (or spawn) → first response
    before_create: float  # request (or spawn) → the engine created the container
    after_listen: float  # the app listens → its first response is received


def first_response(port: int, host: str) -> tuple[int, float]:
    """One GET: status and the app's listening time (wall clock)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status, float(response.getheader("X-Listening-At") or "nan")
    finally:
        conn.close()


def created_at(podman: str, *filters: str) -> float:
    out = subprocess.run([podman, "ps", "-a", *filters, "--format", "{{.Names}}"], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    if len(out) != 1:
        raise SystemExit(f"bench: expected one container for {filters}, found {out}")
    nanos = subprocess.run([podman, "container", "inspect", "--format", "{{.Created.UnixNano}}", out[0]],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    return int(nanos) / 1e9


def podman_run_sample(podman: str, image: str, port: int, timeout: float = 60.0) -> OciSample:
    """`podman run` of the image as a user would run it on the host network, spawn → its first 200."""
    name = f"wisp-bench-direct-{port}"
    wall, started = time.time(), time.perf_counter()
    proc = subprocess.Popen([podman, "run", "--rm", "--name", name, "--network", "host", "-e", f"PORT={port}", image],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status, listening = first_response(port, "127.0.0.1")
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit(f"bench: podman run {image} exited with {proc.returncode}") from None
                time.sleep(0.0005)
                continue
            total, received = time.perf_counter() - started, time.time()
            if status != 200:
                raise SystemExit(f"bench: podman run {image} answered {status}")
            return OciSample(total, created_at(podman, "--filter", f"name=^{name}$") - wall, received - listening)
        raise SystemExit(f"bench: podman run {image} did not answer within {timeout:g}s")
    finally:
        subprocess.run([podman, "rm", "-f", "-t", "0", name], capture_output=True, timeout=60, check=False)
        proc.wait(30)


def wisp_oci_sample(podman: str, d: Daemon, service: str) -> OciSample:
    """One request to the Service at zero, on a fresh connection; exactly one new instance serves it."""
    revision = f"{service}-00001"
    assert not pods_of(pods(d.api_port), revision), f"{revision} is not at zero"
    wall, started = time.time(), time.perf_counter()
    status, listening = first_response(d.port, f"{service}.default.localhost")
    total, received = time.perf_counter() - started, time.time()
    if status != 200:
        raise SystemExit(f"bench: cold request to {service} answered {status}")
    if len(pods_of(pods(d.api_port), revision)) != 1:
        raise SystemExit(f"bench: expected one instance of {revision} after the cold request")
    created = created_at(podman, "--filter", f"label=wisp.dev/revision=default/{revision}")
    return OciSample(total, created - wall, received - listening)


def oci_images(services: int, rounds: int) -> None:
    """Scale from zero → first response of an OCI revision, paired per sample with a plain `podman run` of the
    same image. What wisp adds: the median of the paired differences, and — steadier on a busy machine — its
    own share measured around the engine's work: before the container is created and after the app listens."""
    podman = shutil.which("podman")
    if podman is None:
        raise SystemExit("bench: the OCI case needs podman (or pass --oci 0)")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.oci_images import build_image

    print(f"\nOCI images: building {OCI_IMAGE} from the Debian base image ...")
    build_image(OCI_IMAGE, {"Containerfile": 'FROM {base}\nCOPY server.py /server.py\nCMD ["python3", "/server.py"]\n',
                            "server.py": OCI_SERVER}, os.environ)
    names = [f"cold-oci-{i}" for i in range(services)]
    plain: list[OciSample] = []
    wisp_: list[OciSample] = []
    with tempfile.TemporaryDirectory(prefix="wisp-coldstart-oci-") as tmp:
        workdir = Path(tmp)
        zero = {"autoscaling.knative.dev/initial-scale": "0"}
        docs = [autoscaler_config({"allow-zero-initial-scale": "true", "stable-window": "6s",
                                   "scale-to-zero-grace-period": "1s"})]
        docs += [service_yaml(n, OCI_IMAGE, False, zero, {}, {}) for n in names]
        manifest = workdir / "oci.yaml"
        manifest.write_text("\n---\n".join(docs) + "\n")
        with wisp_up(manifest, workdir, names) as d:
            for round_ in range(1, rounds + 1):
                waited = wait_all_at_zero(d, [f"{n}-00001" for n in names])
                for i, name in enumerate(names):
                    # Whichever starts second finds the engine's caches warm: alternate the order.
                    if (round_ + i) % 2:
                        plain.append(podman_run_sample(podman, OCI_IMAGE, free_port()))
                        wisp_.append(wisp_oci_sample(podman, d, name))
                    else:
                        wisp_.append(wisp_oci_sample(podman, d, name))
                        plain.append(podman_run_sample(podman, OCI_IMAGE, free_port()))
                print(f"round {round_}/{rounds} (waited {waited:4.1f} s for zero): podman run "
                      + " ".join(f"{s.total * 1000:.1f}" for s in plain[-len(names):]) + " ms; wisp from zero "
                      + " ".join(f"{s.total * 1000:.1f}" for s in wisp_[-len(names):]) + " ms")

    def p50(samples: list[OciSample], part: str) -> float:
        return statistics.median(getattr(s, part) for s in samples)

    paired = statistics.median(w.total - p.total for w, p in zip(wisp_, plain, strict=True))
    before = p50(wisp_, "before_create") - p50(plain, "before_create")
    after = p50(wisp_, "after_listen") - p50(plain, "after_listen")
    share = before + after
    print(f"OCI image, scale from zero → first response ({len(wisp_)} samples, each paired with a plain podman run, "
          "the order alternating)")
    print(f"  podman run       p50 {ms(p50(plain, 'total'))}   p99 {ms(percentile([s.total for s in plain], 99))}"
          "   (spawn → first response, host network, no wisp)")
    print(f"  wisp from zero   p50 {ms(p50(wisp_, 'total'))}   p99 {ms(percentile([s.total for s in wisp_], 99))}"
          f"   ratio {p50(wisp_, 'total') / p50(plain, 'total'):.2f}x")
    print(f"  added by wisp    p50 of the paired differences {ms(paired)} (as noisy as the engine's start)")
    print(f"  wisp's share     {ms(share)} = before the engine creates the container {ms(before)} "
          f"(p50 {ms(p50(wisp_, 'before_create'))} vs {ms(p50(plain, 'before_create'))})")
    print(f"                   + after the app listens {ms(after)} (probe and proxy; p50 "
          f"{ms(p50(wisp_, 'after_listen'))} vs {ms(p50(plain, 'after_listen'))})")
    print(f"  target: wisp adds <= {CONTAINER_ADDED_TARGET_MS:g} ms: "
          f"{'MET' if share * 1000 <= CONTAINER_ADDED_TARGET_MS else 'MISSED'} (on wisp's share)")

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--functions", type=int, default=4, help="function Services (samples per round)")
    parser.add_argument("--containers", type=int, default=2, help="container Services (samples per round)")
    parser.add_argument("--baseline-runs", type=int, default=10)
    parser.add_argument("--warm", type=int, default=30, help="warm requests after each cold one")
    parser.add_argument("--oci", type=int, default=2, help="OCI image Services (podman) per round; 0 skips the case")
    parser.add_argument("--knative-functions", type=int, default=4,
                        help="Knative Functions projects (http template) per round; 0 skips the case")
    args = parser.parse_args()

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          "(other work on the machine shows up in these figures)")
    functions = [f"cold-fn-{i}" for i in range(args.functions)]
    containers = [f"cold-ctr-{i}" for i in range(args.containers)]
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    with tempfile.TemporaryDirectory(prefix="wisp-coldstart-") as tmp:
        workdir = Path(tmp)
        manifest = write_manifest(workdir, functions, containers)

        print(f"naive baseline: fresh interpreter + starlette/uvicorn + module, {args.baseline_runs} runs ...")
        naive = [first_response_after_spawn([sys.executable, "-c", NAIVE], workdir / "fn", env, free_port())
                 for _ in range(args.baseline_runs)]

        fn_cold: list[float] = []
        fn_warm: list[float] = []
        ctr_cold: list[float] = []
        ctr_direct: list[float] = []
        ctr_added: list[float] = []
        revisions = [f"{s}-00001" for s in functions + containers]
        with wisp_up(manifest, workdir, functions + containers) as d:
            for round_ in range(1, args.rounds + 1):
                waited = wait_all_at_zero(d, revisions)
                for service in functions:
                    cold, warm = cold_then_warm(d, service, args.warm)
                    fn_cold.append(cold)
                    fn_warm.append(statistics.median(warm))
                for service in containers:
                    direct = first_response_after_spawn([sys.executable, "server.py"], workdir / "ctr", env,
                                                        free_port())
                    cold, _ = cold_then_warm(d, service, 0)
                    ctr_direct.append(direct)
                    ctr_cold.append(cold)
                    ctr_added.append(cold - direct)
                print(f"round {round_}/{args.rounds} (waited {waited:4.1f} s for zero): function cold "
                      + " ".join(f"{c * 1000:.1f}" for c in fn_cold[-len(functions):])
                      + (" ms; container cold " + " ".join(f"{c * 1000:.1f}" for c in ctr_cold[-len(containers):])
                         + " ms" if containers else " ms"))

    p50, p99 = statistics.median(fn_cold), percentile(fn_cold, 99)
    warm_p50 = statistics.median(fn_warm)
    naive_p50 = statistics.median(naive)
    print()
    print(f"function, scale from zero → first response ({len(fn_cold)} samples, "
          f"{args.functions} services × {args.rounds} rounds, each verified at zero instances first)")
    print(f"  wisp cold        p50 {ms(p50)}   p99 {ms(p99)}   min {ms(min(fn_cold))}   "
          f"targets p50 <= {FUNCTION_P50_TARGET_MS:g} ms, p99 <= {FUNCTION_P99_TARGET_MS:g} ms: "
          f"{'MET' if p50 * 1000 <= FUNCTION_P50_TARGET_MS and p99 * 1000 <= FUNCTION_P99_TARGET_MS else 'MISSED'}")
    print(f"  wisp warm        p50 {ms(warm_p50)}   (median of per-sample medians, keep-alive, through the ingress)")
    print(f"  naive platform   p50 {ms(naive_p50)}   p99 {ms(percentile(naive, 99))}   "
          f"(fresh interpreter importing starlette/uvicorn + the module, {len(naive)} runs)")
    print(f"  ratios: cold/warm {p50 / warm_p50:.1f}x; naive/wisp cold {naive_p50 / p50:.1f}x")
    if ctr_cold:
        added = statistics.median(ctr_added)
        print(f"container, scale from zero → first response ({len(ctr_cold)} samples, paired with a direct start)")
        print(f"  direct process   p50 {ms(statistics.median(ctr_direct))}   (spawn → first response, no wisp)")
        print(f"  wisp from zero   p50 {ms(statistics.median(ctr_cold))}   p99 {ms(percentile(ctr_cold, 99))}")
        print(f"  added by wisp    p50 {ms(added)}   max {ms(max(ctr_added))}   "
              f"target <= {CONTAINER_ADDED_TARGET_MS:g} ms: "
              f"{'MET' if added * 1000 <= CONTAINER_ADDED_TARGET_MS else 'MISSED'}; "
              f"ratio wisp/direct {statistics.median(ctr_cold) / statistics.median(ctr_direct):.2f}x")
    if args.knative_functions:
        knative_functions(args.knative_functions, args.rounds, args.baseline_runs, args.warm)
    if args.oci:
        oci_images(args.oci, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
