"""The A/B runner of the in-process CPU benchmarks (`ingress_cpu.py`, `flow_cpu.py`): each case measured in a
process of its own, on this tree and, with --baseline-src, on another wisp source tree (e.g. `git archive <commit>
src | tar -x -C DIR`, then DIR/src), printed as a table of µs of CPU per unit (n/a: the tree cannot run the case).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

# (case, units, repeats) -> µs of CPU per unit, or None when this tree cannot run the case.
Measure = Callable[[str, int, int], float | None]


def _run_side(script: str, src: Path | None, case: str, unit: str, count: int, repeats: int) -> float | None:
    env = {**os.environ, "PYTHONPATH": str(src)} if src is not None else dict(os.environ)
    out = subprocess.run(
        [sys.executable, script, "--one", case, f"--{unit}s", str(count), "--repeats", str(repeats)],
        capture_output=True, text=True, env=env, timeout=600, check=True,
    ).stdout
    value: float | None = json.loads(out)
    return value


def ab_main(argv: list[str] | None, *, script: str, description: str, cases: Sequence[str], measure: Measure,
            unit: str, default_count: int) -> int:
    """The benchmark's command line: `--{unit}s N --repeats R [--baseline-src DIR]`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(f"--{unit}s", dest="count", type=int, default=default_count)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline-src", type=Path, default=None, metavar="DIR")
    parser.add_argument("--one", choices=cases, help=argparse.SUPPRESS)  # one case in this process
    args = parser.parse_args(argv)
    if not 1_000 <= args.count <= 1_000_000 or not 1 <= args.repeats <= 50:
        parser.error(f"{unit}s must be 1,000-1,000,000 and repeats 1-50")
    if args.one:
        print(json.dumps(measure(args.one, args.count, args.repeats)))
        return 0
    sides: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.baseline_src is not None:
        sides.append(("baseline", args.baseline_src.resolve()))
    print(f"{'':12}" + "".join(f"{name:>14}" for name, _ in sides) + f"   (us of CPU per {unit})")
    for case in cases:
        values = [_run_side(script, src, case, unit, args.count, args.repeats) for _, src in sides]
        print(f"{case:12}" + "".join(f"{'n/a' if v is None else f'{v:.2f}':>14}" for v in values))
    return 0
