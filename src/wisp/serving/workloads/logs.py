"""Reading instance logs: the last lines of a file, and following it as it grows (`wisp logs -f`).

Work is bounded whatever the file holds: `tail` reads backwards in blocks and stops at `MAX_TAIL_LINES`
lines or `MAX_TAIL_BYTES` bytes, and `follow` reads at most `FOLLOW_CHUNK` bytes at a time. Both read files
in a worker thread when called from the event loop (`tail_async`, `follow`): the loop also serves requests.
A log rotated by `log_rotation` (`NAME.log` → `NAME.log.1`) is read across both files.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from wisp.serving.workloads.log_rotation import rotated_path

_BLOCK = 64 * 1024
MAX_TAIL_LINES = 10_000  # like a cap on `kubectl logs --tail`: more is refused work, not more insight
MAX_TAIL_BYTES = 8 * 1024 * 1024
ERROR_TAIL_BYTES = 64 * 1024  # the last lines quoted in an error message
FOLLOW_CHUNK = 1024 * 1024


def _read_back(path: Path, newlines: int, max_bytes: int) -> tuple[bytes, bool]:
    """The end of `path` holding more than `newlines` newlines, at most `max_bytes`; and whether it reaches
    the file's start. Linear: each block is counted once and the blocks are joined once."""
    try:
        with path.open("rb") as f:
            pos = f.seek(0, os.SEEK_END)
            blocks: list[bytes] = []
            found = read = 0
            while pos > 0 and found <= newlines and read < max_bytes:
                step = min(_BLOCK, pos, max_bytes - read)
                pos -= step
                f.seek(pos)
                block = f.read(step)
                blocks.append(block)
                found += block.count(b"\n")
                read += len(block)
    except FileNotFoundError:
        return b"", True
    blocks.reverse()
    return b"".join(blocks), pos == 0


def tail(path: Path, lines: int = 20, max_bytes: int = MAX_TAIL_BYTES) -> list[str]:
    """The last `lines` lines of `path` and its rotated predecessor (without newlines), at most
    `MAX_TAIL_LINES` and `max_bytes`; [] when there is no log yet. Blocking: call it off the event loop
    (`tail_async`) unless the bound is small."""
    lines = min(lines, MAX_TAIL_LINES)
    if lines <= 0:
        return []
    data, whole = _read_back(path, lines, max_bytes)
    if whole and data.count(b"\n") <= lines and len(data) < max_bytes:
        older, older_whole = _read_back(rotated_path(path), lines - data.count(b"\n"), max_bytes - len(data))
        data, whole = older + data, older_whole
    if not whole:
        # Cut where reading stopped: the first line is only the end of one.
        data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        return []
    return [line.decode("utf-8", errors="replace").rstrip("\r") for line in data.split(b"\n")[-lines:]]


async def tail_async(path: Path, lines: int = 20, max_bytes: int = MAX_TAIL_BYTES) -> list[str]:
    """`tail` in a worker thread, so a big read never stalls the event loop."""
    return await asyncio.to_thread(tail, path, lines, max_bytes)


def tail_text(path: Path, lines: int = 20) -> str:
    """A few last lines joined for an error message (small: fine on the loop); says so when the log is empty."""
    found = tail(path, lines, ERROR_TAIL_BYTES)
    return "\n".join(found) if found else "(no log output)"


def file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def read_at(path: Path, offset: int, count: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(count)
    except FileNotFoundError:
        return b""


async def follow(path: Path, lines: int = 10, poll_interval: float = 0.25) -> AsyncIterator[str]:
    """Yield the last `lines` lines, then each new line as it is written, until the consumer stops.

    Polls the file (stdlib has no portable file-change event); a truncated (rotated) or recreated file is
    read again from its start, like `tail -F`. Reads happen in a worker thread, at most `FOLLOW_CHUNK` at a
    time; a line longer than that is passed on in pieces.
    """
    offset = file_size(path)  # before yielding: lines written while the consumer is busy must not be lost
    for line in await tail_async(path, lines):
        yield line
    partial = b""
    while True:
        size = file_size(path)
        if size < offset:
            offset, partial = 0, b""
        if size > offset:
            chunk = await asyncio.to_thread(read_at, path, offset, min(size - offset, FOLLOW_CHUNK))
            if not chunk:  # replaced between stat and read
                offset = 0
                continue
            offset += len(chunk)
            *complete, partial = (partial + chunk).split(b"\n")
            if len(partial) >= FOLLOW_CHUNK:
                complete.append(partial)
                partial = b""
            for raw in complete:
                yield raw.decode("utf-8", errors="replace")
            continue
        await asyncio.sleep(poll_interval)
