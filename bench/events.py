"""Eventing benchmark: a KafkaSource through `wisp up` against the sink's own limit.

    .venv/bin/python bench/events.py [--runs 3] [--records 20000] [--slow-records 6000] [--rate 500]
                                     [--latency-seconds 10] [--partitions 4] [--profile DIR]

One local Tansu broker (started here), one `wisp up --kafka` daemon in its own process, and sinks in their own
processes (`bench/events.py --sink PORT --delay-ms D`: aiohttp, counts arrivals, in-flight and latency).
Each test is repeated --runs times, medians printed; every run uses a fresh topic, KafkaSource and consumer group,
and times the sink's first to last arrival (the consumer group's join is not counted):
  1. throughput: --records pre-produced records, `ordering: unordered`, trivial sink → events/s; side by side a
     plain aiohttp POST loop of binary CloudEvents to the same sink at the same concurrency (the most requests the
     dispatcher had in flight at the sink) → the sink's own limit. Targets: ratio >= 0.7, >= 2,000 events/s.
  2. slow sink: the sink takes 100 ms per event, unordered, --slow-records → events/s. Target >= 500 events/s.
  3. latency: records produced open-loop at --rate/s for --latency-seconds into a consuming source; the sink
     subtracts the send time (a record header) from its arrival time → p50/p99, ordered and unordered.
     Target p99 <= 50 ms.
  4. flows (--flows-events per run, --flows-concurrency senders POSTing to the address through the ingress):
     the single hop (an InMemoryChannel with one Subscription to the sink), a 3-step Sequence (each step an
     echo that replies with the event; the reply goes to the sink) and an InMemoryChannel with 3 Subscriptions
     → events/s (events sent, from first send to last arrival), end-to-end p99 (send → sink) and CPU per event
     over the sends (the daemon's; all the bench's processes': daemon, sink, echoes and this one). Target: the
     Sequence >= 0.5x the single hop's rate. `--flows-only` runs just this part (no Kafka).
--profile DIR records the daemon with py-spy during the throughput runs (flame graph SVGs in DIR).
Only 127.0.0.1; bounded in count and time; everything started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer

from wisp.eventing.channel import channel_host
from wisp.net import free_port

BIN = Path(sys.executable).parent
THROUGHPUT_RATIO_TARGET = 0.7
THROUGHPUT_TARGET = 2000.0
SLOW_TARGET = 500.0
P99_TARGET_MS = 50.0
SLOW_DELAY_MS = 100


# -- the sink (its own process) ------------------------------------------------------------------------------


def serve_sink(port: int, delay_ms: float) -> None:
    """A trivial CloudEvents sink: 200 to every POST; GET /stats and POST /reset for the bench."""
    stats: dict[str, Any] = {}
    # Distinct client connections since the last reset: how many requests the sender keeps in parallel (a
    # trivial handler never yields, so in-flight handlers alone would always count 1).
    connections: set[int] = set()
    # (path, ce-id) of every arrival counted: an event a subscriber got twice is a duplicate.
    seen: set[tuple[str, str]] = set()

    def reset() -> None:
        stats.update(count=0, first=None, last=None, in_flight=0, max_in_flight=0, latencies_ms=[], duplicates=0)
        connections.clear()
        seen.clear()

    async def event(request: web.Request) -> web.Response:
        now = time.time()
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        connections.add(id(request.transport))
        stats["connections"] = len(connections)
        try:
            body = await request.read()
            sent = request.headers.get("ce-kafkaheadert") or request.headers.get("ce-benchsent")
            if request.path.startswith("/echo"):
                # A Sequence step: reply with the event itself (binary mode), not counted as an arrival.
                headers = {k: v for k, v in request.headers.items()
                           if k.lower().startswith("ce-") or k.lower() == "content-type"}
                return web.Response(status=200, body=body, headers=headers)
            if sent is not None:
                stats["latencies_ms"].append((now - float(sent)) * 1000)
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000)
            stats["count"] += 1
            arrival = (request.path, request.headers.get("ce-id", ""))
            if arrival in seen:
                stats["duplicates"] += 1
            seen.add(arrival)
            stats["first"] = stats["first"] or now
            stats["last"] = time.time()
            return web.Response(status=200)
        finally:
            stats["in_flight"] -= 1

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def post_reset(request: web.Request) -> web.Response:
        reset()
        return web.Response(status=204)

    reset()
    app = web.Application()
    app.router.add_post("/reset", post_reset)
    app.router.add_get("/stats", get_stats)
    app.router.add_post("/{tail:.*}", event)
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    if loop_factory is not None:
        asyncio.set_event_loop(loop_factory())
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096)


# -- processes -----------------------------------------------------------------------------------------------


class Proc:
    """A child process in its own session, stopped with SIGTERM (then SIGKILL) at the end."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@contextlib.asynccontextmanager
async def tansu(workdir: Path) -> AsyncIterator[str]:
    from wisp.eventing.local_kafka import LocalKafka

    kafka = LocalKafka(free_port(), log_file=workdir / "tansu.log")
    await kafka.start()
    try:
        yield kafka.bootstrap_servers
    finally:
        await kafka.stop()


@contextlib.asynccontextmanager
async def wisp_daemon(workdir: Path, bootstrap: str | None,
                      ports: list[int] | None = None) -> AsyncIterator[tuple[str, int]]:
    """`wisp up --kafka` with nothing applied (no Kafka when `bootstrap` is None); yields (control API URL, pid).
    `ports`, when given, receives the ingress port."""
    port, api_port = free_port(), free_port()
    if ports is not None:
        ports.append(port)
    kafka = ["--kafka", bootstrap] if bootstrap else []
    log = (workdir / "daemon.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "wisp"), "up", "--port", str(port), "--api-port", str(api_port), "--state-dir",
        str(workdir / "state"), *kafka, cwd=workdir, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=log, start_new_session=True)
    daemon = Proc(proc)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(120):
            while not (line := await proc.stdout.readline()).startswith(b"wisp is serving"):
                if not line:
                    raise SystemExit(f"bench: wisp up exited; see {workdir / 'daemon.log'}")
        drain = asyncio.create_task(proc.stdout.read())
        yield f"http://127.0.0.1:{api_port}", proc.pid
        drain.cancel()
    finally:
        await daemon.stop()
        log.close()


# The pid of each sink process running, by URL (part 4 counts their CPU).
SINK_PIDS: dict[str, int] = {}


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def sink_process(delay_ms: float) -> AsyncIterator[str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sink", str(port), "--delay-ms", str(delay_ms),
        stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
    sink = Proc(proc)
    url = f"http://127.0.0.1:{port}/"
    SINK_PIDS[url] = proc.pid
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with session.get(url + "stats") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    if time.monotonic() > deadline:
                        raise SystemExit("bench: the sink did not start") from None
                    await asyncio.sleep(0.05)  # an external process: nothing to wait on but its port
        yield url
    finally:
        SINK_PIDS.pop(url, None)
        await sink.stop()


# -- driving ------------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, bootstrap: str, api: str, partitions: int, session: aiohttp.ClientSession) -> None:
        self.bootstrap = bootstrap
        self.api = api
        self.partitions = partitions
        self.session = session
        self.daemon_pid: int | None = None  # part 4 counts its CPU when known

    async def wisp(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(str(BIN / "wisp"), "--api", self.api, *args,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode:
            raise SystemExit(f"bench: wisp {' '.join(args)}: {err.decode()}")

    async def topic(self) -> str:
        from wisp.eventing.local_kafka import ensure_topics

        name = f"bench-{uuid.uuid4().hex[:8]}"
        await ensure_topics(self.bootstrap, [name], partitions=self.partitions)
        return name

    async def produce(self, topic: str, count: int) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, max_batch_size=65536)
        await producer.start()
        try:
            value = b'{"message": "hello, wisp"}'
            futures = [await producer.send(topic, value=value) for _ in range(count)]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def source(self, workdir: Path, topic: str, sink: str, ordering: str) -> str:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        manifest = {
            "apiVersion": "sources.knative.dev/v1beta1", "kind": "KafkaSource",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"consumerGroup": name, "bootstrapServers": [self.bootstrap], "topics": [topic],
                     "initialOffset": "earliest", "ordering": ordering, "sink": {"uri": sink},
                     "delivery": {"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"}},
        }
        path = workdir / f"{name}.yaml"
        path.write_text(json.dumps(manifest))
        await self.wisp("apply", "-f", str(path))
        return name

    async def stats(self, sink: str) -> dict[str, Any]:
        async with self.session.get(sink + "stats") as r:
            result: dict[str, Any] = await r.json()
            return result

    async def reset(self, sink: str) -> None:
        async with self.session.post(sink + "reset") as r:
            r.raise_for_status()

    async def wait_count(self, sink: str, count: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.stats(sink)
            if stats["count"] >= count:
                return stats
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: only {stats['count']} of {count} events arrived in {timeout:g} s")
            await asyncio.sleep(0.1)  # the sink is another process: sampling its counter is the measurement

    async def through_source(self, workdir: Path, sink: str, records: int, ordering: str) -> dict[str, float]:
        """Pre-produced records → the sink; events/s from the sink's first to last arrival."""
        topic = await self.topic()
        await self.produce(topic, records)
        await self.reset(sink)
        name = await self.source(workdir, topic, sink, ordering)
        try:
            stats = await self.wait_count(sink, records, timeout=60 + records / 100)
        finally:
            await self.wisp("delete", "kafkasource", name)
        span = stats["last"] - stats["first"]
        return {"rate": (records - 1) / span, "max_in_flight": stats["max_in_flight"],
                "connections": stats["connections"]}

    async def direct(self, sink: str, records: int, concurrency: int) -> float:
        """A plain concurrent POST loop of binary CloudEvents to the sink: its own limit."""
        await self.reset(sink)
        remaining = records
        body = b'{"message": "hello, wisp"}'

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                headers = {"ce-specversion": "1.0", "ce-id": uuid.uuid4().hex, "ce-source": "/bench",
                           "ce-type": "dev.knative.kafka.event", "content-type": "application/json"}
                async with self.session.post(sink, data=body, headers=headers) as r:
                    await r.read()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        stats = await self.stats(sink)
        return float((stats["count"] - 1) / (stats["last"] - stats["first"]))

    async def latency(self, workdir: Path, sink: str, rate: float, seconds: float, ordering: str) -> dict[str, float]:
        topic = await self.topic()
        name = await self.source(workdir, topic, sink, ordering)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0)
        await producer.start()
        try:
            # Until the source consumes (its group joined): one probe record at a time.
            await self.reset(sink)
            deadline = time.monotonic() + 60
            while (await self.stats(sink))["count"] == 0:
                if time.monotonic() > deadline:
                    raise SystemExit("bench: the latency source never delivered")
                await producer.send_and_wait(topic, value=b"{}", headers=[("t", str(time.time()).encode())])
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # let the probes drain
            await self.reset(sink)
            total = int(rate * seconds)
            start = time.monotonic()
            pending = []
            for i in range(total):
                due = start + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                pending.append(await producer.send(topic, value=b'{"m": 1}',
                                                   headers=[("t", repr(time.time()).encode())]))
            await asyncio.gather(*pending)
            stats = await self.wait_count(sink, total, timeout=60)
        finally:
            await producer.stop()
            await self.wisp("delete", "kafkasource", name)
        lat = sorted(stats["latencies_ms"])
        return {"p50": percentile(lat, 50), "p99": percentile(lat, 99), "max": lat[-1],
                "achieved": total / (time.monotonic() - start)}


# -- flows: channels and Sequences ---------------------------------------------------------------------------

SEQUENCE_TARGET_RATIO = 0.5
_IMC = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"}


def flow_manifests(kind: str, name: str, sink: str, steps: list[str]) -> tuple[list[dict[str, Any]], str]:
    """The manifests of one flow case and the host of its address."""
    meta = {"name": name, "namespace": "default"}

    def subscription(sub: str, channel: str, uri: str) -> dict[str, Any]:
        return {"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription",
                "metadata": {"name": sub, "namespace": "default"},
                "spec": {"channel": {**_IMC, "name": channel}, "subscriber": {"uri": uri}}}

    if kind == "single hop":
        return [{**_IMC, "metadata": meta}, subscription(f"{name}-s", name, sink)], channel_host(name, "default")
    if kind == "channel x3":
        subs = [subscription(f"{name}-s{i}", name, f"{sink}fan{i}") for i in range(3)]
        return [{**_IMC, "metadata": meta}, *subs], channel_host(name, "default")
    return [{"apiVersion": "flows.knative.dev/v1", "kind": "Sequence", "metadata": meta,
             "spec": {"channelTemplate": _IMC, "steps": [{"uri": f"{step}echo"} for step in steps],
                      "reply": {"uri": sink}}}], \
        channel_host(f"{name}-kn-sequence-0", "default")


async def through_flow(bench: Bench, workdir: Path, ingress: str, sink: str, steps: list[str], kind: str,
                       events: int, concurrency: int) -> dict[str, float]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    manifests, host = flow_manifests(kind, name, sink, steps)
    path = workdir / f"{name}.yaml"
    path.write_text("\n---\n".join(json.dumps(m) for m in manifests))
    await bench.wisp("apply", "-f", str(path))
    arrivals = events * (3 if kind == "channel x3" else 1)
    body = b'{"message": "hello, wisp"}'

    async def post(event_id: str) -> int:
        headers = {"Host": host, "ce-specversion": "1.0", "ce-id": event_id, "ce-source": "/bench",
                   "ce-type": "bench", "ce-benchsent": repr(time.time()), "content-type": "application/json"}
        async with bench.session.post(ingress, data=body, headers=headers) as r:
            await r.read()
            return r.status

    try:
        deadline = time.monotonic() + 60
        while await post("probe") != 202:  # until the flow's channels and subscriptions are ready
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: the {kind} flow never became ready")
            await asyncio.sleep(0.2)
        # The flows' channels hand events on synchronously: the probe's 202 means it reached the sink already.
        await bench.reset(sink)
        # CPU per event over the sends: the daemon's, and every process's of the bench (daemon, sink, echoes, this).
        pids = [os.getpid(), *SINK_PIDS.values(), *([bench.daemon_pid] if bench.daemon_pid else [])]
        cpu_before = {pid: cpu_seconds(pid) for pid in pids}
        remaining = events
        failures = 0

        async def sender() -> None:
            nonlocal remaining, failures
            while remaining > 0:
                remaining -= 1
                if await post(uuid.uuid4().hex) != 202:
                    failures += 1

        start = time.time()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        stats = await bench.wait_count(sink, arrivals - failures, timeout=60 + events / 50)
        cpu_us = {pid: (cpu_seconds(pid) - cpu_before[pid]) / events * 1e6 for pid in pids}
    finally:
        await bench.wisp("delete", "-f", str(path))
    lat = sorted(stats["latencies_ms"])
    return {"rate": events / (stats["last"] - start), "p50": percentile(lat, 50), "p99": percentile(lat, 99),
            "failures": failures, "duplicates": stats["duplicates"],
            "daemon_us": cpu_us.get(bench.daemon_pid or -1, math.nan), "all_us": sum(cpu_us.values())}


async def run_flows(bench: Bench, workdir: Path, ingress: str, sink: str, args: argparse.Namespace) -> None:
    # Each Sequence step is a service of its own: an echo in its own process, as the sink is.
    async with sink_process(0) as s1, sink_process(0) as s2, sink_process(0) as s3:
        await _run_flows(bench, workdir, ingress, sink, [s1, s2, s3], args)


async def _run_flows(bench: Bench, workdir: Path, ingress: str, sink: str, steps: list[str],
                     args: argparse.Namespace) -> None:
    print("warming up the flows ...")
    await through_flow(bench, workdir, ingress, sink, steps, "single hop", 500, args.flows_concurrency)
    medians: dict[str, dict[str, float]] = {}
    for kind in ("single hop", "sequence x3", "channel x3"):
        runs = []
        for i in range(args.runs):
            result = await through_flow(bench, workdir, ingress, sink, steps, kind, args.flows_events,
                                        args.flows_concurrency)
            runs.append(result)
            print(f"  run {i + 1} ({kind}): {result['rate']:.0f} events/s, p50 {result['p50']:.1f} ms, "
                  f"p99 {result['p99']:.1f} ms, {result['failures']:.0f} refused, "
                  f"{result['duplicates']:.0f} duplicate(s) at the sink; CPU per event: daemon "
                  f"{result['daemon_us']:.0f} us, all the bench's processes {result['all_us']:.0f} us")
        medians[kind] = {key: statistics.median(r[key] for r in runs)
                         for key in ("rate", "p50", "p99", "daemon_us", "all_us")}
    base = medians["single hop"]["rate"]
    for kind, m in medians.items():
        print(f"4. {kind:<12} {m['rate']:7.0f} events/s ({m['rate'] / base:.2f}x the single hop), "
              f"p50 {m['p50']:.1f} ms, p99 {m['p99']:.1f} ms; CPU per event: daemon {m['daemon_us']:.0f} us, "
              f"all processes {m['all_us']:.0f} us")
    ratio = medians["sequence x3"]["rate"] / base
    print(f"   3-step Sequence / single hop = {ratio:.2f} [target >= {SEQUENCE_TARGET_RATIO}: "
          f"{mark(ratio >= SEQUENCE_TARGET_RATIO)}]")


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@contextlib.asynccontextmanager
async def profiling(pid: int, out: Path | None, label: str) -> AsyncIterator[None]:
    if out is None:
        yield
        return
    os.makedirs(out, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "py-spy"), "record", "--pid", str(pid), "--rate", "200", "--format", "speedscope",
        "--output", str(out / f"{label}.json"), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


async def run(args: argparse.Namespace) -> int:
    print(f"events bench: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
          f"{args.runs} run(s), {args.partitions} partitions")
    if args.flows_only:
        with tempfile.TemporaryDirectory(prefix="wisp-bench-flows-") as tmp:
            flow_dir, flow_ports = Path(tmp), list[int]()
            async with wisp_daemon(flow_dir, None, flow_ports) as (api, daemon_pid), sink_process(0) as fast, \
                    aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                flow_bench = Bench("", api, 1, session)
                flow_bench.daemon_pid = daemon_pid
                await run_flows(flow_bench, flow_dir, f"http://127.0.0.1:{flow_ports[0]}/", fast, args)
        return 0
    with tempfile.TemporaryDirectory(prefix="wisp-bench-events-") as tmp:
        workdir = Path(tmp)
        ports: list[int] = []
        async with tansu(workdir) as bootstrap, wisp_daemon(workdir, bootstrap, ports) as (api, daemon_pid), \
                sink_process(0) as fast, sink_process(SLOW_DELAY_MS) as slow, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            bench = Bench(bootstrap, api, args.partitions, session)
            bench.daemon_pid = daemon_pid
            print("warming up ...")
            warm = await bench.through_source(workdir, fast, 2000, "unordered")
            await bench.direct(fast, 2000, int(warm["connections"]))

            source_rates, direct_rates, concurrency = [], [], []
            for i in range(args.runs):
                async with profiling(daemon_pid, args.profile, f"throughput-{i + 1}"):
                    result = await bench.through_source(workdir, fast, args.records, "unordered")
                c = max(1, int(result["connections"]))
                plain = await bench.direct(fast, args.records, c)
                source_rates.append(result["rate"])
                direct_rates.append(plain)
                concurrency.append(c)
                print(f"  run {i + 1}: KafkaSource {result['rate']:.0f} events/s ({c} connections to the sink); "
                      f"plain POST loop at {c} concurrent {plain:.0f} events/s")
            src, dire = statistics.median(source_rates), statistics.median(direct_rates)
            ratio = src / dire
            print(f"1. throughput (unordered, trivial sink, {args.records} records): KafkaSource {src:.0f} events/s, "
                  f"plain POST loop {dire:.0f} events/s, ratio {ratio:.2f} "
                  f"[target ratio >= {THROUGHPUT_RATIO_TARGET}: {mark(ratio >= THROUGHPUT_RATIO_TARGET)}; "
                  f"target >= {THROUGHPUT_TARGET:.0f} events/s: {mark(src >= THROUGHPUT_TARGET)}]")

            slow_rates = []
            for i in range(args.runs):
                result = await bench.through_source(workdir, slow, args.slow_records, "unordered")
                slow_rates.append(result["rate"])
                print(f"  run {i + 1}: {result['rate']:.0f} events/s, max {result['max_in_flight']:.0f} in flight")
            sr = statistics.median(slow_rates)
            print(f"2. slow sink ({SLOW_DELAY_MS} ms per event, unordered, {args.slow_records} records): "
                  f"{sr:.0f} events/s [target >= {SLOW_TARGET:.0f}: {mark(sr >= SLOW_TARGET)}]")

            for ordering in ("ordered", "unordered"):
                runs = []
                for i in range(args.runs):
                    result = await bench.latency(workdir, fast, args.rate, args.latency_seconds, ordering)
                    runs.append(result)
                    print(f"  run {i + 1} ({ordering}): p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, "
                          f"max {result['max']:.1f} ms at {result['achieved']:.0f} events/s produced")
                p50 = statistics.median(r["p50"] for r in runs)
                p99 = statistics.median(r["p99"] for r in runs)
                print(f"3. latency produce → sink at {args.rate:g} events/s ({ordering}): p50 {p50:.1f} ms, "
                      f"p99 {p99:.1f} ms [target p99 <= {P99_TARGET_MS:g} ms: {mark(p99 <= P99_TARGET_MS)}]")

            await run_flows(bench, workdir, f"http://127.0.0.1:{ports[0]}/", fast, args)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="wisp eventing benchmark (KafkaSource vs the sink's limit)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--slow-records", type=int, default=6000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--profile", type=Path, default=None, help="py-spy speedscope profiles of the daemon here")
    parser.add_argument("--flows-events", type=int, default=3000)
    parser.add_argument("--flows-concurrency", type=int, default=32)
    parser.add_argument("--flows-only", action="store_true", help="only the channel and Sequence cases (no Kafka)")
    parser.add_argument("--sink", type=int, default=None, help=argparse.SUPPRESS)  # run as the sink process
    parser.add_argument("--delay-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sink is not None:
        serve_sink(args.sink, args.delay_ms)
        return 0
    if not (1 <= args.runs <= 10 and 100 <= args.records <= 200_000 and 100 <= args.slow_records <= 100_000
            and 0 < args.rate <= 5000 and 0 < args.latency_seconds <= 60 and 1 <= args.partitions <= 64
            and 100 <= args.flows_events <= 100_000 and 1 <= args.flows_concurrency <= 512):
        parser.error("out of bounds: runs 1-10, records 100-200000, rate <= 5000, latency-seconds <= 60")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
