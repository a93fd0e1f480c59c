"""Soak: minutes of mixed traffic against one `wisp up`; 0 errors, 0 lost events, RSS and open fds flat.

    .venv/bin/python bench/soak.py [--minutes 10] [--warmup SECONDS] [--http-rate 30] [--event-rate 10]
                                   [--apply-every 20] [--burst 10] [--no-new-revisions] [--keep]

Starts its own Tansu (a free port: 9092 may be another run's) and `wisp up --kafka` (its own process, free
ports, a temp state dir) on the manifests it writes from bench/soak/: function `soak-fn`, container
`soak-ctr`, two scale-to-zero Services (`soak-zero-fn`, `soak-zero-ctr`: 6 s stable window, 2 s
scale-to-zero grace period), the sink function `soak-sink` (appends each event's sequence number to a file),
a Broker with a Trigger to the sink, and a KafkaSource (one topic) to the sink. Then, all at once:
  * HTTP: open loop at --http-rate req/s (2/3 to soak-fn, 1/3 to soak-ctr), at most 64 in flight each;
  * events: --event-rate/s, half CloudEvents POSTed to the broker ingress (202 expected), half Kafka records;
  * applies every --apply-every s: soak-fn re-applied with a new GREETING (its new Revision must become the
    latest ready one; --no-new-revisions skips this), a ConfigMap applied, read and deleted, an invalid
    manifest refused (CLI exit 1 naming the field; control API 4xx, nothing created);
  * scale to zero and back: a burst of --burst requests to each zero Service, then wait until the control
    API lists none of their pods (the KPA scaled them to zero), then the next burst (served from zero).
Every 2 s the daemon's RSS and open fds (and over its process tree: processes, RSS, PSS, fds) are read from
/proc; a row per minute. After the traffic: wait for every event at the sink, for the zero Services at zero,
close the load's connections, then the idle figures again. The verdict compares the first window after
warm-up with the last one: daemon RSS (median of the window) grows <= max(10 %, 5 MB), its fd count
(minimum of the window: in-flight connections and instances come and go) moves by <= FD_SLACK, and the tree
has no more processes (minimum of the window). Beside it, the idle daemon before the traffic and after it.
Exits 1 on any error, lost event, growth, Traceback/ERROR line in the daemon's log, or process the daemon
left behind when stopped. Only 127.0.0.1; bounded in count and time; everything started here is stopped at
the end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from wisp.net import free_port

SOAK = Path(__file__).resolve().parent / "soak"
BIN = Path(sys.executable).parent
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024
NS = "default"
BROKER_HOST = "broker-ingress.knative-eventing.localhost"
SERVICE_LABEL = "serving.knative.dev/service"
ZERO_SERVICES = ("soak-zero-fn", "soak-zero-ctr")
SAMPLE_EVERY = 2.0
RSS_GROWTH_FRACTION, RSS_GROWTH_FLOOR = 0.10, 5 * MB
FD_SLACK = 5
IN_FLIGHT_CAP = 64  # per load generator: past it the server is too slow and requests are counted as errors
REQUEST_TIMEOUT = 30.0
ZERO_TIMEOUT = 120.0  # a Service with a 6 s window and a 2 s grace period is at zero well before this
REVISION_TIMEOUT = 90.0
DRAIN_TIMEOUT = 120.0


# -- /proc ---------------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, starttime) of a live process; starttime tells a process from a later one with its pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[19])


def is_alive(pid: int, start: int) -> bool:
    return (st := _stat(pid)) is not None and st[1] == start


def process_tree(root: int) -> dict[int, int]:
    """pid → starttime of `root` and every process under it."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            parents.setdefault(st[0], []).append(int(entry))
            starts[int(entry)] = st[1]
    if root not in starts:
        return {}
    out: dict[int, int] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in starts:
            out[pid] = starts[pid]
            stack.extend(parents.get(pid, []))
    return out


def pss(pid: int) -> int:
    """Proportional set size: pages shared by forked instances count once over the tree, not once each."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def roles(root: int) -> Counter[str]:
    """The daemon's children by role: function templates (children of the daemon), their forks (instances and
    pre-forked spares), container instances, anything else."""
    out: Counter[str] = Counter()
    for pid in process_tree(root):
        if pid == root:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            ppid = _stat(pid)
        except OSError:
            continue
        if b"wisp.serving.workloads.template" in cmdline:
            out["templates" if ppid is not None and ppid[0] == root else "forked instances/spares"] += 1
        elif b"server.py" in cmdline:
            out["containers"] += 1
        else:
            out["other"] += 1
    return out


def rss_and_fds(pid: int) -> tuple[int, int] | None:
    try:
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, IndexError):
        return None  # exited between the listing and the read
    return rss, fds


@dataclass
class Sample:
    t: float  # seconds since the traffic started (negative before)
    rss: int
    fds: int
    procs: int
    tree_rss: int
    tree_fds: int
    tree_pss: int


def sample(root: int, t: float) -> Sample | None:
    own = rss_and_fds(root)
    if own is None:
        return None
    procs, tree_rss, tree_fds, tree_pss = 0, 0, 0, 0
    for pid in process_tree(root):
        if (got := rss_and_fds(pid)) is not None:
            procs += 1
            tree_rss += got[0]
            tree_fds += got[1]
            tree_pss += pss(pid)
    return Sample(t, own[0], own[1], procs, tree_rss, tree_fds, tree_pss)


# -- processes -----------------------------------------------------------------------------------------------


@dataclass
class Daemon:
    proc: asyncio.subprocess.Process
    port: int
    api_port: int
    log: Path
    leftovers: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    async def stop(self) -> None:
        """SIGTERM (the daemon drains), SIGKILL after 60 s; then anything of its tree still alive is a leftover
        (recorded, then killed): a stopped daemon must take its instances and templates with it."""
        members = process_tree(self.pid)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                print("soak: the daemon did not stop within 60 s of SIGTERM; killing it", flush=True)
                self.proc.kill()
                await self.proc.wait()
        deadline = time.monotonic() + 10
        while alive := [p for p, start in members.items() if p != self.pid and is_alive(p, start)]:
            if time.monotonic() > deadline:
                self.leftovers = alive
                print(f"soak: {len(alive)} processes of the daemon's tree outlived it: {alive}; killing them",
                      flush=True)
                for pid in alive:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                break
            await asyncio.sleep(0.2)  # children exit on their own once the daemon is gone; nothing to wait on


@contextlib.asynccontextmanager
async def wisp_up(workdir: Path, manifests: Path, bootstrap: str, timeout: float = 180.0) -> AsyncIterator[Daemon]:
    port, api_port = free_port(), free_port()
    log_path = workdir / "daemon.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "wisp"), "up", str(manifests), "--port", str(port), "--api-port", str(api_port),
            "--state-dir", str(workdir / "state"), "--kafka", bootstrap,
            cwd=workdir, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    daemon = Daemon(proc, port, api_port, log_path)
    try:
        deadline = time.monotonic() + timeout
        while b"wisp is serving on" not in log_path.read_bytes():
            if proc.returncode is not None:
                raise SystemExit(f"soak: wisp up exited with {proc.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise SystemExit(f"soak: wisp up did not report serving within {timeout:g} s; see {log_path}")
            await asyncio.sleep(0.2)  # its output is a file: poll it
        yield daemon
    finally:
        await daemon.stop()


@contextlib.asynccontextmanager
async def tansu(workdir: Path) -> AsyncIterator[tuple[str, int]]:
    """A local Kafka on a free port; yields (bootstrap, pid)."""
    from wisp.eventing.local_kafka import LocalKafka

    kafka = LocalKafka(free_port(), log_file=workdir / "tansu.log")
    await kafka.start()
    try:
        yield kafka.bootstrap_servers, kafka._process.pid if kafka._process else 0
    finally:
        await kafka.stop()


# -- manifests -----------------------------------------------------------------------------------------------


def service(name: str, code: Path, function: bool, annotations: dict[str, str] | None = None,
            env: dict[str, str] | None = None, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    notes = dict(annotations or {})
    if function:
        notes["wisp.dev/workload-class"] = "function"
    container: dict[str, Any] = {"image": str(code)}
    if not function:
        container["command"] = ["python", "server.py"]
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"template": {"metadata": {"annotations": notes},
                                  "spec": {**(spec or {}), "containers": [container]}}}}


def write_docs(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text("\n---\n".join(json.dumps(d) for d in docs) + "\n")  # JSON is YAML
    return path


def fn_service(code: Path, greeting: str) -> dict[str, Any]:
    return service("soak-fn", code / "fn", True, env={"GREETING": greeting})


def initial_manifests(code: Path, sink_file: Path, topic: str, bootstrap: str) -> list[dict[str, Any]]:
    zero = {"autoscaling.knative.dev/window": "6s", "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "0s"}
    sink_ref = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "soak-sink"}}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config-autoscaler", "namespace":
                                                                 "knative-serving"},
         "data": {"scale-to-zero-grace-period": "2s"}},
        fn_service(code, "v0"),
        service("soak-ctr", code / "ctr", False, spec={"containerConcurrency": 10}),
        service("soak-zero-fn", code / "fn", True, annotations=zero),
        service("soak-zero-ctr", code / "ctr", False, annotations=zero, spec={"containerConcurrency": 10}),
        service("soak-sink", code / "sink", True, env={"SINK_FILE": str(sink_file)}),
        {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "soak", "namespace": NS}},
        {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "soak", "namespace": NS},
         "spec": {"broker": "soak", "filter": {"attributes": {"type": "soak.broker"}}, "subscriber": sink_ref}},
        {"apiVersion": "sources.knative.dev/v1beta1", "kind": "KafkaSource",
         "metadata": {"name": "soak", "namespace": NS},
         "spec": {"consumerGroup": f"soak-{topic}", "bootstrapServers": [bootstrap], "topics": [topic],
                  "initialOffset": "earliest", "ordering": "unordered", "sink": sink_ref}},
    ]


# -- the run -------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    ok: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def good(self, what: str, seconds: float | None = None) -> None:
        self.ok[what] += 1
        if seconds is not None:
            self.latencies.setdefault(what, []).append(seconds)

    def bad(self, what: str, message: str) -> None:
        self.errors[what] += 1
        if len(self.error_samples) < 30:
            self.error_samples.append(f"{time.strftime('%H:%M:%S')} {what}: {message}")
            print(f"soak: ERROR {what}: {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else float("nan")


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path, code: Path, daemon: Daemon, bootstrap: str,
                 topic: str, sink_file: Path, api: aiohttp.ClientSession, load: aiohttp.ClientSession) -> None:
        self.args = args
        self.workdir = workdir
        self.code = code
        self.daemon = daemon
        self.bootstrap = bootstrap
        self.topic = topic
        self.sink_file = sink_file
        self.api_session = api
        self.session = load  # the traffic's: closed before the idle figures, so its keep-alive sockets go
        self.tally = Tally()
        self.sent: dict[str, set[int]] = {"b": set(), "k": set()}
        self.revisions_seen: set[str] = set()
        self.applies = Counter[str]()
        self.zero_times: list[float] = []
        self.cold_bursts = 0
        self.samples: list[Sample] = []
        self.t0 = time.monotonic()  # reset when the traffic starts
        self.revision_times: list[float] = []  # when each new soak-fn revision became the latest ready one
        self.failures: list[str] = []
        self.traffic_seconds = 0.0
        self.drained = 0.0
        self.final_arrived: dict[str, Counter[int]] = {"b": Counter(), "k": Counter()}
        self.lost: dict[str, set[int]] = {"b": set(), "k": set()}
        self.pods_end = 0
        empty = Sample(0, 0, 0, 0, 0, 0, 0)
        self.idle_before = self.idle_after = self.start_fig = self.end_fig = empty
        self.roles_before: Counter[str] = Counter()
        self.roles_after: Counter[str] = Counter()

    # -- helpers ----------------------------------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() - self.t0

    async def api_get(self, path: str) -> tuple[int, Any]:
        async with self.api_session.get(self.daemon.api + path) as r:
            body = await r.read()
            return r.status, (json.loads(body) if r.status == 200 else body.decode(errors="replace"))

    async def pods(self) -> list[dict[str, Any]]:
        status, body = await self.api_get(f"/api/v1/namespaces/{NS}/pods")
        if status != 200:
            raise RuntimeError(f"control API pods answered {status}: {body[:200]}")
        items: list[dict[str, Any]] = body["items"]
        return items

    async def pods_of(self, services: tuple[str, ...]) -> int:
        return sum(1 for p in await self.pods() if p["metadata"].get("labels", {}).get(SERVICE_LABEL) in services)

    async def wisp(self, *argv: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(str(BIN / "wisp"), "--api", self.daemon.api, *argv,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    async def ready(self, kind_path: str, name: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status, body = await self.api_get(f"{kind_path}/{name}")
            if status == 200 and any(c.get("type") == "Ready" and c.get("status") == "True"
                                     for c in body.get("status", {}).get("conditions", [])):
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"soak: {kind_path}/{name} not Ready within {timeout:g} s: {body}")
            await asyncio.sleep(0.5)  # the API has no watch

    # -- load generators ---------------------------------------------------------------------------------------
    async def open_loop(self, what: str, rate: float, until: float,
                        one: Callable[[int], Coroutine[Any, Any, None]]) -> None:
        """Calls `one(seq)` at `rate`/s on schedule, whatever the answers take (open loop), at most IN_FLIGHT_CAP
        at once: past it the request is not sent and counts as an error (the server fell behind by seconds)."""
        tasks: set[asyncio.Task[None]] = set()
        seq = 0
        start = time.monotonic()
        try:
            while (due := start + seq / rate) < until:
                if (delay := due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                if len(tasks) >= IN_FLIGHT_CAP:
                    self.tally.bad(what, f"{IN_FLIGHT_CAP} requests still in flight: not sending #{seq}")
                else:
                    task = asyncio.create_task(one(seq))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                seq += 1
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def http_get(self, what: str, host: str) -> None:
        started = time.monotonic()
        try:
            async with self.session.get(f"http://127.0.0.1:{self.daemon.port}/", headers={"Host": host},
                                        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as r:
                body = await r.read()
                if r.status != 200:
                    self.tally.bad(what, f"{r.status} {body[:200]!r}")
                    return
                revision = json.loads(body)["revision"]
                if what == "soak-fn":
                    self.revisions_seen.add(revision)
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            self.tally.bad(what, f"{type(exc).__name__}: {exc}")
            return
        self.tally.good(what, time.monotonic() - started)

    async def broker_event(self, seq: int) -> None:
        headers = {"ce-specversion": "1.0", "ce-id": uuid.uuid4().hex, "ce-source": "/soak", "ce-type": "soak.broker",
                   "content-type": "application/json", "Host": BROKER_HOST}
        started = time.monotonic()
        try:
            async with self.session.post(f"http://127.0.0.1:{self.daemon.port}/{NS}/soak",
                                         data=json.dumps({"seq": seq}), headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as r:
                body = await r.read()
                if r.status != 202:
                    self.tally.bad("broker", f"{r.status} {body[:200]!r}")
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.tally.bad("broker", f"{type(exc).__name__}: {exc}")
            return
        self.sent["b"].add(seq)
        self.tally.good("broker", time.monotonic() - started)

    async def kafka_records(self, rate: float, until: float) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0, acks="all")
        await producer.start()
        try:
            async def one(seq: int) -> None:
                try:
                    await asyncio.wait_for(producer.send_and_wait(self.topic, value=json.dumps({"seq": seq}).encode()),
                                           REQUEST_TIMEOUT)
                except Exception as exc:  # any failure to hand the record to Kafka is the bench's error to count
                    self.tally.bad("kafka", f"{type(exc).__name__}: {exc}")
                    return
                self.sent["k"].add(seq)
                self.tally.good("kafka")

            await self.open_loop("kafka", rate, until, one)
        finally:
            await producer.stop()

    # -- applies ---------------------------------------------------------------------------------------------
    async def applies_loop(self, until: float) -> None:
        generation = 1
        while time.monotonic() + self.args.apply_every < until:
            await asyncio.sleep(self.args.apply_every)
            generation += 1
            if self.args.new_revisions:
                await self.new_revision(generation)
            await self.configmap_round(generation)
            await self.invalid_round()

    async def new_revision(self, generation: int) -> None:
        path = write_docs(self.workdir / "fn.yaml", [fn_service(self.code, f"v{generation}")])
        rc, out, err = await self.wisp("apply", "-f", str(path))
        if rc != 0 or "configured" not in out:
            self.tally.bad("apply", f"re-apply soak-fn: exit {rc}: {out.strip()} {err.strip()}")
            return
        want = f"soak-fn-{generation:05d}"
        deadline = time.monotonic() + REVISION_TIMEOUT
        while True:
            status, body = await self.api_get(f"/apis/serving.knative.dev/v1/namespaces/{NS}/services/soak-fn")
            got = body.get("status", {}).get("latestReadyRevisionName") if status == 200 else None
            if got == want:
                self.applies["revisions"] += 1
                self.revision_times.append(self.now())
                return
            if time.monotonic() > deadline:
                self.tally.bad("apply", f"{want} not the latest ready revision after {REVISION_TIMEOUT:g} s (is {got})")
                return
            await asyncio.sleep(0.5)

    async def configmap_round(self, generation: int) -> None:
        doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "soak-cm", "namespace": NS},
               "data": {"round": str(generation), "blob": "x" * 2048}}
        path = write_docs(self.workdir / "cm.yaml", [doc])
        rc, _, err = await self.wisp("apply", "-f", str(path))
        if rc != 0:
            self.tally.bad("apply", f"ConfigMap: exit {rc}: {err.strip()}")
            return
        status, body = await self.api_get(f"/api/v1/namespaces/{NS}/configmaps/soak-cm")
        if status != 200 or body.get("data", {}).get("round") != str(generation):
            self.tally.bad("apply", f"ConfigMap read back: {status} {str(body)[:200]}")
            return
        rc, _, err = await self.wisp("delete", "configmap", "soak-cm")
        if rc != 0:
            self.tally.bad("apply", f"ConfigMap delete: exit {rc}: {err.strip()}")
            return
        status, _ = await self.api_get(f"/api/v1/namespaces/{NS}/configmaps/soak-cm")
        if status != 404:
            self.tally.bad("apply", f"ConfigMap still there after delete: {status}")
            return
        self.applies["configmaps"] += 1

    async def invalid_round(self) -> None:
        """The invalid manifest must be refused whole, naming the field: CLI exit 1, control API 4xx."""
        rc, _, err = await self.wisp("apply", "-f", str(self.code / "invalid.yaml"))
        if rc != 1 or "Invalid" not in err or "autoscaling.knative.dev/window" not in err:
            self.tally.bad("invalid", f"CLI: exit {rc}, stderr {err.strip()[:300]!r}")
            return
        item = {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                "metadata": {"name": "soak-invalid", "namespace": NS},
                "spec": {"template": {"spec": {"containerConcurrency": -1,
                                               "containers": [{"image": str(self.code / "ctr"),
                                                               "command": ["python", "server.py"]}]}}}}
        async with self.api_session.post(self.daemon.api + "/apply", json={"items": [item]}) as r:
            body = await r.text()
            if not 400 <= r.status < 500 or "containerConcurrency" not in body:
                self.tally.bad("invalid", f"API: {r.status} {body[:300]!r}")
                return
        status, _ = await self.api_get(f"/apis/serving.knative.dev/v1/namespaces/{NS}/services/soak-invalid")
        if status != 404:
            self.tally.bad("invalid", f"the refused Service exists: GET answered {status}")
            return
        self.applies["invalid refused"] += 1

    # -- scale to zero ---------------------------------------------------------------------------------------
    async def wait_zero(self) -> float | None:
        started = time.monotonic()
        while await self.pods_of(ZERO_SERVICES):
            if time.monotonic() - started > ZERO_TIMEOUT:
                self.tally.bad("zero", f"{ZERO_SERVICES} still have pods {ZERO_TIMEOUT:g} s after their burst")
                return None
            await asyncio.sleep(0.5)  # the API has no watch
        return time.monotonic() - started

    async def zero_loop(self, until: float) -> None:
        while time.monotonic() < until:
            cold = await self.pods_of(ZERO_SERVICES) == 0
            await asyncio.gather(*(self.http_get(name, f"{name}.{NS}.localhost")
                                   for name in ZERO_SERVICES for _ in range(self.args.burst)))
            self.cold_bursts += cold
            took = await self.wait_zero()
            if took is not None:
                self.zero_times.append(took)
                # A sample while both are at zero, so each window's minimum sees the tree without their instances.
                if (s := sample(self.daemon.pid, self.now())) is not None:
                    self.samples.append(s)
            await asyncio.sleep(1.0)  # at zero for a moment: the next burst starts from nothing

    # -- sampling --------------------------------------------------------------------------------------------
    def arrived(self) -> dict[str, Counter[int]]:
        got: dict[str, Counter[int]] = {"b": Counter(), "k": Counter()}
        with contextlib.suppress(FileNotFoundError):
            for line in self.sink_file.read_text().splitlines():
                kind, _, seq = line.partition(" ")
                if kind in got and seq.isdigit():
                    got[kind][int(seq)] += 1
        return got

    async def sampler(self, stop: asyncio.Event) -> None:
        next_row = 60.0
        while not stop.is_set():
            if (s := sample(self.daemon.pid, self.now())) is not None:
                self.samples.append(s)
            if self.now() >= next_row:
                await self.row(f"{next_row / 60:.0f} min")
                next_row += 60.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)

    async def row(self, label: str, s: Sample | None = None) -> None:
        s = s or sample(self.daemon.pid, self.now())
        if s is None:
            print(f"{label:>9}  the daemon is gone", flush=True)
            return
        arrived = self.arrived()
        try:
            pods = len(await self.pods())
            _, revs = await self.api_get(f"/apis/serving.knative.dev/v1/namespaces/{NS}/revisions")
            revisions = len(revs["items"])
        except (aiohttp.ClientError, RuntimeError, KeyError, TypeError):
            pods, revisions = -1, -1
        http = sum(self.tally.ok[k] for k in ("soak-fn", "soak-ctr", *ZERO_SERVICES))
        print(f"{label:>9} {http:>8} {sum(self.tally.errors.values()):>6} "
              f"{len(self.sent['b']) + len(self.sent['k']):>7} {len(arrived['b']) + len(arrived['k']):>7} "
              f"{s.rss / MB:>8.1f} {s.fds:>5} {s.procs:>5} {s.tree_rss / MB:>8.1f} {s.tree_pss / MB:>8.1f} "
              f"{s.tree_fds:>7} "
              f"{pods:>4} {revisions:>4} {os.getloadavg()[0]:>5.2f}", flush=True)

    @staticmethod
    def header() -> None:
        print(f"{'':>9} {'':>8} {'':>6} {'':>7} {'':>7} {'---- daemon ----':>14} "
              f"{'------ daemon + every child -------':>37}", flush=True)
        print(f"{'t':>9} {'http ok':>8} {'errors':>6} {'ev sent':>7} {'ev recv':>7} {'RSS MB':>8} {'fds':>5} "
              f"{'procs':>5} {'RSS MB':>8} {'PSS MB':>8} {'fds':>7} {'pods':>4} {'revs':>4} {'load':>5}", flush=True)

    # -- phases ----------------------------------------------------------------------------------------------
    async def traffic(self, duration: float) -> None:
        self.t0 = time.monotonic()
        until = self.t0 + duration
        stop_sampling = asyncio.Event()
        Soak.header()
        sampler = asyncio.create_task(self.sampler(stop_sampling))
        rate = self.args.http_rate
        try:
            await asyncio.gather(
                self.open_loop("soak-fn", rate * 2 / 3, until,
                               lambda _: self.http_get("soak-fn", f"soak-fn.{NS}.localhost")),
                self.open_loop("soak-ctr", rate / 3, until,
                               lambda _: self.http_get("soak-ctr", f"soak-ctr.{NS}.localhost")),
                self.open_loop("broker", self.args.event_rate / 2, until, self.broker_event),
                self.kafka_records(self.args.event_rate / 2, until),
                self.applies_loop(until),
                self.zero_loop(until),
            )
            self.traffic_seconds = self.now()
            await self.row("end")
        finally:
            stop_sampling.set()
            await sampler

    async def drain(self) -> None:
        """Every acknowledged event must reach the sink (duplicates, at least once, are allowed); then the idle
        daemon: the zero Services at zero, the load's connections closed."""
        started = time.monotonic()
        while True:
            self.final_arrived = self.arrived()
            self.lost = {k: self.sent[k] - set(self.final_arrived[k]) for k in self.sent}
            if not any(self.lost.values()) or time.monotonic() - started > DRAIN_TIMEOUT:
                break
            await asyncio.sleep(0.5)  # the sink is a file: poll it
        self.drained = time.monotonic() - started
        if await self.wait_zero() is None:
            self.failures.append("the zero Services did not return to zero after the traffic")
        await asyncio.sleep(5)  # past the last scale-down's drain
        self.idle_after = await idle_figures(self, 10)
        self.roles_after = roles(self.daemon.pid)

    def report(self, warmup: float, span: float, duration: float, log_errors: list[str],
               leftovers: list[int]) -> list[str]:
        tally, failures = self.tally, self.failures
        print()
        print(f"duration: {self.traffic_seconds:.0f} s of traffic (+ {self.drained:.1f} s until every event had "
              f"arrived)")
        for what in ("soak-fn", "soak-ctr", *ZERO_SERVICES, "broker", "kafka"):
            lat = tally.latencies.get(what, [])
            timing = (f"; p50 {percentile(lat, 50) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms, "
                      f"max {max(lat) * 1000:.0f} ms") if lat else ""
            print(f"  {what:<14} {tally.ok[what]:>7} ok, {tally.errors[what]:>3} errors{timing}")
        total_requests = sum(tally.ok[k] + tally.errors[k] for k in ("soak-fn", "soak-ctr", *ZERO_SERVICES))
        print(f"  HTTP requests: {total_requests}; soak-fn revisions seen answering: {len(self.revisions_seen)}")
        for kind, label in (("b", "broker events"), ("k", "Kafka records")):
            got = self.final_arrived[kind]
            dups = sum(n - 1 for n in got.values() if n > 1)
            strays = len(set(got) - self.sent[kind])
            print(f"  {label}: {len(self.sent[kind])} accepted, {len(set(got))} arrived at the sink, "
                  f"{len(self.lost[kind])} lost, {dups} duplicates, {strays} not acknowledged to the sender")
        print(f"  applies: {self.applies['revisions']} new revisions of soak-fn, {self.applies['configmaps']} "
              f"ConfigMap apply/read/delete rounds, {self.applies['invalid refused']} invalid manifests refused "
              f"(CLI and API), {tally.errors['apply'] + tally.errors['invalid']} failed")
        zt = self.zero_times
        print(f"  scale to zero: {len(zt)} bursts went back to zero (after {statistics.median(zt):.1f} s median, "
              f"max {max(zt):.1f} s), {self.cold_bursts} bursts served from zero" if zt else
              "  scale to zero: no burst went back to zero")
        errors = sum(tally.errors.values())
        events_lost = sum(len(v) for v in self.lost.values())
        print(f"  errors: {errors}")
        for line in tally.error_samples[:10]:
            print(f"    {line}")
        print(f"  events lost: {events_lost}")
        if log_errors:
            print(f"  daemon log: {len(log_errors)} Traceback/ERROR lines, e.g.:")
            for line in log_errors[:5]:
                print(f"    {line[:200]}")

        print()
        start, end = self.start_fig, self.end_fig
        figs = (self.idle_before, start, end, self.idle_after)
        print(f"{'':<24} {'idle, before':>13} {'after warm-up':>13} {'end':>13} {'idle, after':>13}")
        print(f"{'':<24} {'':>13} {f'{warmup:.0f}-{warmup + span:.0f} s':>13} "
              f"{f'{duration - span:.0f}-{duration:.0f} s':>13}")
        print(f"{'daemon RSS (median)':<24} " + " ".join(f"{f.rss / MB:>10.1f} MB" for f in figs))
        print(f"{'daemon fds (min)':<24} " + " ".join(f"{f.fds:>13}" for f in figs))
        print(f"{'tree processes (min)':<24} " + " ".join(f"{f.procs:>13}" for f in figs))
        print(f"{'tree RSS (median)':<24} " + " ".join(f"{f.tree_rss / MB:>10.1f} MB" for f in figs))
        print(f"{'tree PSS (median)':<24} " + " ".join(f"{f.tree_pss / MB:>10.1f} MB" for f in figs))
        print(f"{'tree fds (min)':<24} " + " ".join(f"{f.tree_fds:>13}" for f in figs))
        revs_start = 1 + sum(1 for t in self.revision_times if t <= warmup + span)
        revs_end = 1 + len(self.revision_times)
        print(f"soak-fn revisions: {revs_start} at the end of the warm-up window, {revs_end} at the end; "
              f"pods at the end: {self.pods_end}")
        kinds = sorted(set(self.roles_before) | set(self.roles_after))
        print("the daemon's children, idle before → after: "
              + ", ".join(f"{k} {self.roles_before[k]} → {self.roles_after[k]}" for k in kinds))

        growth = end.rss - start.rss
        allowed = max(RSS_GROWTH_FRACTION * start.rss, RSS_GROWTH_FLOOR)
        fd_drift = end.fds - start.fds
        proc_drift = end.procs - start.procs
        if errors:
            failures.append(f"{errors} errors")
        if events_lost:
            failures.append(f"{events_lost} events lost")
        if growth > allowed:
            failures.append(f"daemon RSS grew {growth / MB:.1f} MB (> {allowed / MB:.1f} MB allowed)")
        if abs(fd_drift) > FD_SLACK:
            failures.append(f"daemon fds moved by {fd_drift:+d} (> ±{FD_SLACK})")
        if proc_drift > 0:
            failures.append(f"the daemon's tree grew by {proc_drift} processes")
        if leftovers:
            failures.append(f"{len(leftovers)} processes of the daemon's tree outlived it (pids {leftovers})")
        if log_errors:
            failures.append(f"the daemon logged {len(log_errors)} Traceback/ERROR lines")
        if (new := revs_end - revs_start) and (fd_drift > FD_SLACK or proc_drift > 0):
            print(f"per new soak-fn revision after warm-up: {fd_drift / new:+.1f} daemon fds, "
                  f"{proc_drift / new:+.1f} processes, {(end.tree_pss - start.tree_pss) / new / MB:+.1f} MB tree PSS")
        print(f"daemon RSS {start.rss / MB:.1f} → {end.rss / MB:.1f} MB ({growth / MB:+.1f} MB, "
              f"{100 * growth / start.rss:+.1f} %; allowed {allowed / MB:.1f} MB); fds {start.fds} → {end.fds} "
              f"({fd_drift:+d}; allowed ±{FD_SLACK}); tree processes {start.procs} → {end.procs}")
        print(f"verdict: {'PASS' if not failures else 'FAIL: ' + '; '.join(failures)}", flush=True)
        return failures


def window(samples: list[Sample], lo: float, hi: float) -> list[Sample]:
    return [s for s in samples if lo <= s.t <= hi]


async def idle_figures(soak: Soak, seconds: float) -> Sample:
    """Median RSS and minimum fds of the daemon over `seconds` of idleness (same for the tree)."""
    got: list[Sample] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (s := sample(soak.daemon.pid, soak.now())) is not None:
            got.append(s)
        await asyncio.sleep(1.0)
    return summarize(got)


def summarize(samples: list[Sample]) -> Sample:
    return Sample(samples[-1].t, int(statistics.median(s.rss for s in samples)), min(s.fds for s in samples),
                  min(s.procs for s in samples), int(statistics.median(s.tree_rss for s in samples)),
                  min(s.tree_fds for s in samples), int(statistics.median(s.tree_pss for s in samples)))


def daemon_log_errors(log: Path) -> list[str]:
    """Tracebacks and ERROR lines the daemon logged: each is a defect to look at, whatever the clients saw."""
    lines = log.read_text(errors="replace").splitlines()
    return [line for line in lines if "Traceback" in line or re.search(r"\bERROR\b", line)]


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    loop.add_signal_handler(signal.SIGTERM, main_task.cancel)  # SIGTERM cleans up like Ctrl-C does
    duration = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(60.0, duration / 4)
    span = min(60.0, duration / 4)  # the start and end windows the verdict compares
    print(f"soak: {args.minutes:g} min of mixed traffic (warm-up {warmup:g} s, windows {span:g} s); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    with contextlib.ExitStack() as stack:
        if args.keep:
            tmp = tempfile.mkdtemp(prefix="wisp-bench-soak-")
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="wisp-bench-soak-"))
        workdir = Path(tmp)
        code = workdir / "code"
        shutil.copytree(SOAK, code, ignore=shutil.ignore_patterns("__pycache__"))
        sink_file = workdir / "sink.txt"
        topic = f"soak-{uuid.uuid4().hex[:8]}"
        async with tansu(workdir) as (bootstrap, tansu_pid):
            from wisp.eventing.local_kafka import ensure_topics

            await ensure_topics(bootstrap, [topic], partitions=4)
            manifests = workdir / "manifests"
            manifests.mkdir()
            write_docs(manifests / "soak.yaml", initial_manifests(code, sink_file, topic, bootstrap))
            started = time.monotonic()
            async with wisp_up(workdir, manifests, bootstrap) as daemon, aiohttp.ClientSession() as api:
                # Idle keep-alive connections close after 1 s: the ingress's fds then follow the load's
                # concurrency instead of its past peaks, and connections open and close all along.
                load = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=1.0))
                try:
                    soak = Soak(args, workdir, code, daemon, bootstrap, topic, sink_file, api, load)
                    services = "/apis/serving.knative.dev/v1/namespaces/default/services"
                    for name in ("soak-fn", "soak-ctr", "soak-sink", *ZERO_SERVICES):
                        await soak.ready(services, name)
                    await soak.ready("/apis/eventing.knative.dev/v1/namespaces/default/triggers", "soak")
                    await soak.ready("/apis/sources.knative.dev/v1beta1/namespaces/default/kafkasources", "soak")
                    print(f"daemon pid {daemon.pid} ready in {time.monotonic() - started:.1f} s; Tansu pid {tansu_pid} "
                          f"on {bootstrap}; files in {workdir}{'' if args.keep else ' (removed at the end)'}",
                          flush=True)
                    soak.idle_before = await idle_figures(soak, 10)
                    soak.roles_before = roles(daemon.pid)
                    await soak.traffic(duration)
                finally:
                    await load.close()
                await soak.drain()
                soak.start_fig = summarize(window(soak.samples, warmup, warmup + span) or soak.samples)
                # The last window ends with the schedule: the samples after it see the load winding down.
                soak.end_fig = summarize(window(soak.samples, duration - span, duration) or soak.samples)
                soak.pods_end = len(await soak.pods())
        failures = soak.report(warmup, span, duration, daemon_log_errors(daemon.log), daemon.leftovers)
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of traffic")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds of traffic before the 'start' figures (default min(60, a quarter of the run))")
    parser.add_argument("--http-rate", type=float, default=30.0, help="HTTP requests/s (2/3 function, 1/3 container)")
    parser.add_argument("--event-rate", type=float, default=10.0, help="events/s (half broker, half Kafka)")
    parser.add_argument("--apply-every", type=float, default=20.0, help="seconds between apply rounds")
    parser.add_argument("--burst", type=int, default=10, help="requests per zero Service per burst")
    parser.add_argument("--no-new-revisions", dest="new_revisions", action="store_false",
                        help="apply rounds without re-applying soak-fn (isolates what each new Revision costs)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (daemon.log, state, instance logs)")
    args = parser.parse_args()
    if not (0.5 <= args.minutes <= 120 and 0 < args.http_rate <= 500 and 0 < args.event_rate <= 500
            and 5 <= args.apply_every <= 600 and 1 <= args.burst <= 100
            and (args.warmup is None or 0 <= args.warmup < args.minutes * 60 / 2)):
        parser.error("out of bounds: minutes 0.5-120, rates <= 500/s, apply-every 5-600 s, burst 1-100, "
                     "warm-up under half the run")
    try:
        return asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("soak: interrupted; everything it started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
