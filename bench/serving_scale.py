"""The serving control plane with many Services in one namespace: apply N Services at once, time until all are
Ready, then time one Service's new template until its new Revision serves and the old one is reserve.

    .venv/bin/python bench/serving_scale.py [--services 200] [--runs 3] [--baseline c00262a]

The control plane only: the real store (SQLite in a temporary directory), controller and serving reconciler,
with a runtime whose instances are ready at once (no processes), so the figures are the reconcilers' own cost.
The baseline is the same script run on the tree of --baseline (`git archive` of its src/ into a temporary
directory, imported first), side by side. Printed: per run and as medians, the seconds to all Ready, the
reconciles it took, the seconds for the one change, and the ratio baseline / this tree.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.fake_runtime, on whichever tree's src is imported

from tests.fake_runtime import FakeRuntime  # noqa: E402


def _service(code: Path, name: str, version: int) -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": {"metadata": {"annotations": {"wisp.dev/workload-class": "function"}},
                                  "spec": {"containers": [{"image": str(code),
                                                           "env": [{"name": "V", "value": str(version)}]}]}}}}


async def _one_run(services: int, directory: Path) -> dict[str, float]:
    from wisp.api import kinds as k
    from wisp.control import routing_state as rs
    from wisp.control.admission import apply_manifests
    from wisp.control.conditions import is_ready
    from wisp.control.controller import Controller
    from wisp.control.serving import ServingReconciler
    from wisp.control.serving_builders import Network
    from wisp.serving.dataplane import DataPlane
    from wisp.serving.instance_limit import InstanceBudget, MachineLimit
    from wisp.serving.routing import RoutingTable
    from wisp.store import Store

    store = Store(directory / "store.db", time.time)
    store.open()
    controller: Controller | None = None
    dataplane = DataPlane(FakeRuntime, directory / "logs", time.time,  # type: ignore[arg-type]
                          lambda key: controller and controller.enqueue(k.REVISION, *key),
                          budget=InstanceBudget(MachineLimit(services * 2, "bench")))
    reconciler = ServingReconciler(store, dataplane, RoutingTable(), Network(), time.time)
    count = 0
    original = reconciler.reconcile

    async def counting(kind: Any, namespace: str, name: str) -> None:
        nonlocal count
        count += 1
        await original(kind, namespace, name)

    reconciler.reconcile = counting  # type: ignore[method-assign]
    controller = Controller(store, [reconciler])
    await dataplane.start()
    await controller.start()

    async def until(predicate: Any) -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    try:
        start = time.perf_counter()
        apply_manifests([_service(directory, f"s{i:03d}", 1) for i in range(services)], store)
        await until(lambda: sum(is_ready(s) for s in store.list(k.SERVICE, "default")) == services)
        ready_s = time.perf_counter() - start
        ready_reconciles = count
        await until(lambda: not controller._running)
        count = 0
        start = time.perf_counter()
        apply_manifests([_service(directory, "s000", 2)], store)

        def changed() -> bool:
            route = store.get(k.ROUTE, "default", "s000") or {}
            old = store.get(k.REVISION, "default", "s000-00001") or {"metadata": {}}
            return ([t.get("revisionName") for t in route.get("status", {}).get("traffic") or []] == ["s000-00002"]
                    and rs.state_of(old) == rs.RESERVE)

        await until(changed)
        change_s = time.perf_counter() - start
        await until(lambda: not controller._running)
        return {"ready_s": ready_s, "ready_reconciles": ready_reconciles, "change_s": change_s,
                "change_reconciles": count}
    finally:
        await controller.stop()
        await dataplane.stop()
        store.close()


def _child(services: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(asyncio.run(_one_run(services, Path(tmp)))))


def _run(services: int, src: Path | None) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    out = subprocess.run([sys.executable, __file__, "--child", "--services", str(services)], env=env,
                         check=True, capture_output=True, text=True, timeout=1800)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", default="c00262a", help="git ref of the tree to compare with")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.services)
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "src"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        rows: dict[str, list[dict[str, float]]] = {"baseline": [], "this tree": []}
        for run in range(args.runs):
            for label, src in (("baseline", Path(tmp) / "src"), ("this tree", None)):
                result = _run(args.services, src)
                rows[label].append(result)
                print(f"run {run + 1} {label:>9}: all {args.services} Ready in {result['ready_s']:.2f} s "
                      f"({result['ready_reconciles']:.0f} reconciles); one change {result['change_s']:.3f} s "
                      f"({result['change_reconciles']:.0f} reconciles)", flush=True)
    med = {label: {f: statistics.median(r[f] for r in runs) for f in runs[0]} for label, runs in rows.items()}
    for label, m in med.items():
        print(f"median {label:>9}: Ready {m['ready_s']:.2f} s, {m['ready_reconciles']:.0f} reconciles; "
              f"change {m['change_s']:.3f} s, {m['change_reconciles']:.0f} reconciles")
    print(f"ratio baseline / this tree: Ready {med['baseline']['ready_s'] / med['this tree']['ready_s']:.1f}x, "
          f"change {med['baseline']['change_s'] / med['this tree']['change_s']:.1f}x")


if __name__ == "__main__":
    main()
