"""tail and follow of instance log files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from wisp.serving.workloads.logs import follow, tail, tail_text


def test_tail_reads_the_end_of_large_files(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(f"line {i}\n" for i in range(5000)))
    assert tail(log, 3) == ["line 4997", "line 4998", "line 4999"]
    assert tail(tmp_path / "missing.log", 3) == []
    assert tail_text(tmp_path / "missing.log") == "(no log output)"


async def test_follow_yields_history_then_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "b.log"
    log.write_text("old 1\nold 2\n")
    lines = follow(log, lines=1, poll_interval=0.01)
    assert await anext(lines) == "old 2"
    with log.open("a") as f:
        f.write("new 1\nnew")  # a partial line is held back until its newline arrives
    assert await asyncio.wait_for(anext(lines), 5) == "new 1"
    with log.open("a") as f:
        f.write(" 2\n")
    assert await asyncio.wait_for(anext(lines), 5) == "new 2"
    await lines.aclose()
