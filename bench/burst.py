"""Burst benchmark: a step from 5 to 50 concurrent clients; how long until the KPA's answer is serving.

    .venv/bin/python bench/burst.py [--runs 3] [--before 10] [--after 14]

A function that sleeps 100 ms, `containerConcurrency: 10`, Knative's default autoscaler settings (target
utilisation 70 %, stable window 60 s, panic window 6 s, panic threshold 200 %) and Knative's 2 s tick (what
`wisp up` uses). `wisp up` runs in its own process; the load is a closed-loop aiohttp generator in another
process (this file with --loadgen): 5 clients for --before seconds, then 45 more for --after seconds.
Desired after the step: ceil(50 / (10 × 0.7)) = 8 instances.

Reported per run and as medians over --runs fresh daemons: seconds from the step until the autoscaler
*decided* 8, until 8 instances were *ready* (both from the control API's PodAutoscaler, polled every 50 ms),
and the errors seen (any non-200 answer or failed request). Target: ready <= 4 s, 0 errors.
127.0.0.1 only; every run bounded; every process started here stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coldstart import api, service_yaml, wisp_up  # the sibling bench module

BASE, PEAK, CONCURRENCY, UTILIZATION = 5, 50, 10, 0.7
TARGET = CONCURRENCY * UTILIZATION  # per-instance concurrency the KPA aims at
DESIRED = math.ceil(PEAK / TARGET)
READY_TARGET_S = 4.0

FUNCTION = '''
import asyncio


async def handle(request):
    await asyncio.sleep(0.1)
    return "ok"
'''


async def loadgen(url: str, host: str, before: float, after: float) -> dict[str, Any]:
    """BASE closed-loop clients from the start, PEAK - BASE more from `before` seconds on, all until the end."""
    import aiohttp  # only the load generator process needs it

    statuses: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    start = time.monotonic()
    step, end = start + before, start + before + after
    connector = aiohttp.TCPConnector(limit=PEAK + 10)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def client(begin: float) -> None:
            await asyncio.sleep(max(0.0, begin - time.monotonic()))
            while time.monotonic() < end:
                try:
                    async with session.get(url, headers={"Host": host}) as reply:
                        await reply.read()
                        statuses[reply.status] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    failures[type(exc).__name__] += 1

        await asyncio.gather(*(client(start) for _ in range(BASE)),
                             *(client(step) for _ in range(PEAK - BASE)))
    return {"step": step, "statuses": dict(statuses), "failures": dict(failures)}


def one_run(workdir: Path, before: float, after: float) -> dict[str, Any]:
    with wisp_up(workdir / "services.yaml", workdir, ["burst"]) as d:
        gen = subprocess.Popen(
            [sys.executable, __file__, "--loadgen", f"http://127.0.0.1:{d.port}/", "burst.default.localhost",
             str(before), str(after)], stdout=subprocess.PIPE,
        )
        timeline: list[tuple[float, int, int]] = []  # (monotonic, desired, ready)
        panic_values: list[float] = []  # the KPA's observed panic-window concurrency after the step
        path = "/apis/autoscaling.internal.knative.dev/v1alpha1/namespaces/default/podautoscalers"
        deadline = time.monotonic() + before + after + 60
        while gen.poll() is None and time.monotonic() < deadline:
            for pa in api(d.api_port, path)["items"]:
                if pa["metadata"]["name"] == "burst-00001":
                    status = pa["status"]
                    timeline.append((time.monotonic(), status["desiredScale"], status["actualScale"]))
                    panic_values.append(status.get("metricValue", {}).get("panic", 0.0))
            time.sleep(0.05)
        out, _ = gen.communicate(timeout=30)
    if gen.returncode != 0:
        raise SystemExit(f"bench: the load generator failed ({gen.returncode})")
    result: dict[str, Any] = json.loads(out)
    step = result["step"]
    before_step = [s for s in timeline if s[0] < step]
    after_step = [s for s in timeline if s[0] >= step]
    decided = next((t - step for t, desired, _ in after_step if desired >= DESIRED), None)
    changes: list[tuple[float, int]] = []
    for t, desired, _ in after_step:
        if not changes or desired != changes[-1][1]:
            changes.append((round(t - step, 2), desired))
    ready = next((t - step for t, _, r in after_step if r >= DESIRED), None)
    settled = after_step[-1][1] if after_step else 0  # what the KPA settled on for the load it measured
    settled_ready = next((t - step for t, _, r in after_step if r >= settled), None)
    errors = sum(n for status, n in result["statuses"].items() if status != "200") + sum(result["failures"].values())
    return {
        "decided": decided, "ready": ready, "errors": errors, "requests": sum(result["statuses"].values()),
        "settled": settled, "settled_ready": settled_ready, "panic_value": max(panic_values, default=0.0),
        "ready_before": before_step[-1][2] if before_step else None, "desired_changes": changes,
        "max_ready": max((r for _, _, r in timeline), default=0),
        "statuses": result["statuses"], "failures": result["failures"],
    }


def fmt(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:5.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=float, default=10.0, help="seconds at 5 clients before the step")
    parser.add_argument("--after", type=float, default=14.0, help="seconds at 50 clients after the step")
    parser.add_argument("--panic-window-percentage", type=float, default=None,
                        help="set autoscaling.knative.dev/panic-window-percentage (Knative's default: 10)")
    parser.add_argument("--loadgen", nargs=4, metavar=("URL", "HOST", "BEFORE", "AFTER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        url, host, before, after = args.loadgen
        print(json.dumps(asyncio.run(loadgen(url, host, float(before), float(after)))))
        return 0

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    annotations = {}
    if args.panic_window_percentage is not None:
        annotations["autoscaling.knative.dev/panic-window-percentage"] = f"{args.panic_window_percentage:g}"
    runs = []
    for i in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="wisp-burst-") as tmp:
            workdir = Path(tmp)
            (workdir / "fn").mkdir()
            (workdir / "fn" / "main.py").write_text(FUNCTION)
            (workdir / "services.yaml").write_text(
                service_yaml("burst", "./fn", True, annotations, {"containerConcurrency": CONCURRENCY}, {}) + "\n")
            run = one_run(workdir, args.before, args.after)
        runs.append(run)
        print(f"run {i}/{args.runs}: ready before the step {run['ready_before']}; after it: decided {DESIRED} in "
              f"{fmt(run['decided'])}, {DESIRED} ready in {fmt(run['ready'])}, max ready {run['max_ready']}; "
              f"{run['requests']} answers {run['statuses']}, failures {run['failures'] or 0}")
        print(f"  desired after the step (s, count): {run['desired_changes']}; settled on {run['settled']} "
              f"(ready {fmt(run['settled_ready'])} after the step) for a measured concurrency of at most "
              f"{run['panic_value']:.2f}, where {DESIRED} needs more than {(DESIRED - 1) * TARGET:g}")

    def median(key: str) -> float | None:
        values = [r[key] for r in runs]
        return None if None in values else statistics.median(values)

    ready, decided, settled_ready = median("ready"), median("decided"), median("settled_ready")
    errors = sum(r["errors"] for r in runs)
    print()
    settings = ("Knative defaults" if not annotations else
                f"Knative defaults but panic-window-percentage {args.panic_window_percentage:g}")
    print(f"step {BASE} → {PEAK} clients, 100 ms function, containerConcurrency {CONCURRENCY}, {settings}, "
          f"2 s tick; desired = ceil({PEAK}/{CONCURRENCY * UTILIZATION:g}) = {DESIRED} (medians of {len(runs)} runs)")
    print(f"  autoscaler decided {DESIRED}   {fmt(decided)} after the step")
    print(f"  {DESIRED} instances ready     {fmt(ready)} after the step   target <= {READY_TARGET_S:g} s: "
          f"{'MET' if ready is not None and ready <= READY_TARGET_S else 'MISSED'}")
    print(f"  settled count ready {fmt(settled_ready)} after the step (counts {[r['settled'] for r in runs]}; "
          "a closed loop of 50 keeps a little under 50 in flight, so 7 when the measured average is <= 49)")
    if ready is not None and decided is not None:
        print(f"  decision → ready    {ready - decided:5.2f} s  (spawning and readiness; the rest is the windows)")
        print(f"  ratio ready/target  {ready / READY_TARGET_S:.2f}x")
    print(f"  errors              {errors} in all runs   target 0: {'MET' if errors == 0 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
