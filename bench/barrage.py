"""Barrage end to end: sustained messages/s and send → stored latency through a real `wisp up`.

    .venv/bin/python bench/barrage.py [--runs 3] [--concurrency 50] [--rate 25] [--duration 10] [--table URL]

Starts its own Tansu broker on a free port and `wisp up` (a subprocess, as `make run` does) on the demo's
manifests with only the Kafka bootstrap, topic, consumer group and result table changed (the copy the e2e
tests use: tests/barrage_e2e/demo.py). Each run is one HomePage Send (`POST /api/send`, Concurrency ×
Duration s at `rate` messages/s per sender), then waits until every message of the run is in the table.
Per run:
  * offered   = messages acknowledged by Kafka / Duration;
  * sustained = messages / (last stored − first sent): the end-to-end rate the pipeline kept up;
  * latency   = processed_at − sent_at of every row (the processor's clock at write, the HomePage's at send;
                one machine, one clock), p50 / p99 / max.
A first warm-up run (not counted) lets the processor scale out. Figures are medians over --runs.
Target: sustained ≥ 1,000 msg/s with p99 ≤ 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the e2e tests' helpers: the manifests' copy and the `wisp up` subprocess

import httpx  # noqa: E402
from tests.barrage_e2e.demo import DemoConfig, Wisp, running_demo  # noqa: E402

from wisp.eventing.local_kafka import LocalKafka, free_port  # noqa: E402

SUSTAINED_TARGET, P99_TARGET_MS = 1000.0, 500.0


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


async def one_run(wisp: Wisp, client: httpx.AsyncClient, table: Any, args: argparse.Namespace) -> dict[str, Any]:
    last = await wisp.send(client, "bench", args.concurrency, args.duration, rate=args.rate)
    sent, run = int(last["sent"]), str(last["run"])
    deadline = time.monotonic() + 120
    while await table.count(run) < sent:  # the table is another process's: poll it
        if time.monotonic() > deadline:
            raise SystemExit(f"only {await table.count(run)} of {sent} stored after 120 s")
        await asyncio.sleep(0.2)
    rows = [r.row for r in await table.read_after(0, 10**7) if r.row.run == run]
    latencies = sorted((r.processed_at - r.sent_at) * 1000 for r in rows)
    span = max(r.processed_at for r in rows) - min(r.sent_at for r in rows)
    return {
        "messages": sent, "failed": last["failed"],
        "offered_per_s": round(sent / args.duration, 1),
        "sustained_per_s": round(len(rows) / span, 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(latencies[-1], 1),
        "instances": await wisp.ready_pods(client),
    }


async def main(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(REPO / "examples" / "barrage"))
    from barrage_table import open_table

    with tempfile.TemporaryDirectory(prefix="wisp-bench-barrage-") as tmp_dir:
        tmp = Path(tmp_dir)
        kafka = LocalKafka(free_port(), log_file=tmp / "tansu.log")
        await kafka.start()
        try:
            cfg = DemoConfig(kafka=kafka.bootstrap_servers, table_url=args.table or f"sqlite://{tmp / 'barrage.db'}",
                             ordering=args.ordering)
            table = open_table(cfg.table_url, cfg.table_name)
            async with running_demo(tmp, cfg) as wisp, httpx.AsyncClient(timeout=30) as client:
                await table.start()
                try:
                    results = []
                    for index in range(args.runs + 1):
                        result = await one_run(wisp, client, table, args)
                        label = "warm-up" if index == 0 else f"run {index}"
                        print(f"{label}: {json.dumps(result)}", flush=True)
                        if index:
                            results.append(result)
                finally:
                    await table.stop()
                    if cfg.table_url.startswith("postgres"):
                        import psycopg

                        with psycopg.connect(cfg.table_url, autocommit=True) as conn:
                            conn.execute(f"DROP TABLE IF EXISTS {cfg.table_name}")
        finally:
            await kafka.stop()
    summary = {key: statistics.median(r[key] for r in results)
               for key in ("offered_per_s", "sustained_per_s", "p50_ms", "p99_ms", "max_ms", "instances")}
    ok = summary["sustained_per_s"] >= SUSTAINED_TARGET and summary["p99_ms"] <= P99_TARGET_MS
    print(f"median of {args.runs} runs (Concurrency {args.concurrency} × {args.rate:g}/s for {args.duration} s, "
          f"ordering {args.ordering or 'unordered'}): {json.dumps(summary)}")
    print(f"target sustained >= {SUSTAINED_TARGET:.0f} msg/s and p99 <= {P99_TARGET_MS:.0f} ms: "
          f"{'met' if ok else 'NOT met'}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=float, default=25.0, help="messages/s per sender")
    parser.add_argument("--duration", type=int, default=10, help="seconds per Send")
    parser.add_argument("--table", default="", help="TABLE_URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--ordering", choices=("ordered", "unordered"), default=None,
                        help="override the KafkaSource's spec.ordering (the demo's manifest says unordered)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
