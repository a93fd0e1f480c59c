"""Reading instance logs: the last lines of a file, and following it as it grows (`wisp logs -f`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

_BLOCK = 8192


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last `lines` lines of `path` (without newlines); [] when the file does not exist yet."""
    if lines <= 0:
        return []
    try:
        with path.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            data = b""
            pos = end
            # Read backwards block by block: logs can be large, we only want their end.
            while pos > 0 and data.count(b"\n") <= lines:
                step = min(_BLOCK, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]


def tail_text(path: Path, lines: int = 20) -> str:
    """`tail` joined for an error message; says so when the log is empty."""
    found = tail(path, lines)
    return "\n".join(found) if found else "(no log output)"


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


async def follow(path: Path, lines: int = 10, poll_interval: float = 0.25) -> AsyncIterator[str]:
    """Yield the last `lines` lines, then each new line as it is written, until the consumer stops.

    Polls the file (stdlib has no portable file-change event); a truncated or recreated file is read
    again from its start, like `tail -F`.
    """
    offset = _size(path)  # before yielding: lines written while the consumer is busy must not be lost
    for line in tail(path, lines):
        yield line
    partial = b""
    while True:
        size = _size(path)
        if size < offset:
            offset, partial = 0, b""
        if size > offset:
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read(size - offset)
            offset += len(chunk)
            *complete, partial = (partial + chunk).split(b"\n")
            for raw in complete:
                yield raw.decode("utf-8", errors="replace")
            continue
        await asyncio.sleep(poll_interval)
