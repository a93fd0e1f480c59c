"""What the sandbox and the resource limits cost an instance's start: spawn → ready of a tiny local-process server,
plain (the baseline) beside the same in its bubblewrap sandbox (an emptyDir volume), in a cgroup of its own (a
memory limit), and both; interleaved runs, medians and the added milliseconds. Each case's runtime parks its next
instance between runs, as a revision does between starts; the first start of each case shows the unparked cost.

    .venv/bin/python bench/sandbox.py [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from wisp.net import free_port
from wisp.serving.workloads.cgroups import Limits
from wisp.serving.workloads.container import ProcessRuntime
from wisp.serving.workloads.types import WorkloadSpec
from wisp.serving.workloads.volumes import Mount, Volume

# The sandbox has its own /tmp: a virtualenv in a clone under /tmp is not there, the system's python3 is.
SYSTEM_PYTHON = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "/usr/bin/python3"

SERVER = """\
import os
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


async def start_once(runtime: ProcessRuntime, logs: Path, index: int) -> float:
    started = time.perf_counter()
    instance = await runtime.spawn(f"bench-{index}", free_port(), logs / f"{index}.log")
    await instance.wait_ready(30)
    elapsed = time.perf_counter() - started
    await instance.terminate(5)
    return elapsed * 1000


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="wisp-bench-sandbox-") as tmp:
        work = Path(tmp)
        (work / "app").mkdir()
        (work / "app" / "server.py").write_text(SERVER)
        base = WorkloadSpec(revision="bench-00001", namespace="default", workload_class="container",
                            directory=work / "app", image="./app", command=[SYSTEM_PYTHON, "server.py"],
                            env={"PATH": os.environ.get("PATH", os.defpath)})
        cases = {
            "plain": base,
            "sandbox": replace(base, volumes=(Volume("scratch", "emptyDir", size_limit=2**20),),
                               mounts=(Mount("scratch", "/scratch"),)),
            "cgroup": replace(base, limits=Limits(memory=256 * 2**20)),
        }
        cases["both"] = replace(cases["sandbox"], limits=cases["cgroup"].limits)
        runtimes = {name: ProcessRuntime(spec, work / "volumes") for name, spec in cases.items()}
        for runtime in runtimes.values():
            await runtime.start()
        times: dict[str, list[float]] = {name: [] for name in cases}
        for i in range(runs):
            for name, runtime in runtimes.items():  # interleaved: the machine's load hits every case alike
                times[name].append(await start_once(runtime, work / "logs" / name, i))
        for runtime in runtimes.values():
            await runtime.stop()
    plain = statistics.median(times["plain"])
    print(f"spawn → ready of a local process, {runs} interleaved runs each, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name, samples in times.items():
        med = statistics.median(samples)
        print(f"  {name:8s} p50 {med:6.1f} ms  (+{med - plain:5.1f} ms over plain, ratio {med / plain:.2f})  "
              f"min {min(samples):6.1f} ms")
    for name in ("sandbox", "cgroup", "both"):
        print(f"  {name:8s} first start (nothing parked yet) {times[name][0]:6.1f} ms")
    print("  only revisions with volumes, an absolute workingDir or runAsUser run in the sandbox; only those with "
          "resources (limits or a CPU request) get a cgroup; those keep one instance parked past both "
          "(workloads/parked.py), so only a revision's first start pays for them")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if not 1 <= args.runs <= 200:
        parser.error("--runs: 1 to 200")
    asyncio.run(main(args.runs))
