"""A size cap on instance logs with one rotated file kept, like the kubelet's container-log-max-size/-files.

An instance writes straight into its log file through its stdout/stderr (opened O_APPEND): wisp never
sees the bytes, so it cannot close and reopen the file for the instance. Rotation is therefore
copytruncate, as logrotate does for such programs: copy `NAME.log` to `NAME.log.1`, truncate `NAME.log` to
zero, and the instance's next O_APPEND write lands at the new end. Cost: one copy of at most the cap per
rotation, done in a worker thread; what the instance writes between the end of the copy and the truncate
(microseconds) is lost. The alternative — the daemon reading every instance's output from a pipe — would
put every log byte through the daemon's event loop and stall instances whenever the daemon is busy.

The size is checked while the instance runs, at an interval that follows how fast the log grows (at most
`max_check` apart while it is quiet, down to `min_check` while it grows fast): a sudden burst can overshoot
the cap by what is written before the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024


@dataclass(frozen=True)
class LogLimits:
    max_bytes: int = 10 * MiB  # the kubelet's containerLogMaxSize default
    min_check: float = 0.2
    max_check: float = 10.0


def rotated_path(path: Path) -> Path:
    return path.with_name(path.name + ".1")


def rotate(path: Path) -> None:
    """copytruncate: `path` → `path.1` (replacing it), then `path` emptied in place."""
    partial = path.with_name(path.name + ".1.partial")
    with path.open("rb") as src, partial.open("wb") as dst:
        # Copy to the end as it is when we get there, truncate at once: the gap is what may be lost.
        while chunk := src.read(MiB):
            dst.write(chunk)
        os.truncate(path, 0)
    os.replace(partial, rotated_path(path))


def next_check(limits: LogLimits, size: int, growth: float) -> float:
    """Seconds until the next size check: half the time the log would take to reach the cap at its
    current growth (bytes/s), within [min_check, max_check]."""
    if growth <= 0:
        return limits.max_check
    return max(limits.min_check, min(limits.max_check, (limits.max_bytes - size) / growth / 2))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


async def cap_while_running(path: Path, limits: LogLimits, exited: asyncio.Future[int],
                            now: Callable[[], float]) -> None:
    """Keep `path` under the cap until `exited` resolves (then returns)."""
    size, at = _size(path), now()
    delay = limits.min_check
    while not exited.done():
        await asyncio.wait([exited], timeout=delay)
        if exited.done():
            return
        current, moment = _size(path), now()
        growth = (current - size) / (moment - at) if moment > at else 0.0
        if current > limits.max_bytes:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(rotate, path)
            current = _size(path)
        size, at = current, moment
        delay = next_check(limits, size, growth)
