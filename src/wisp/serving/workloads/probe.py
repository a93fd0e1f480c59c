"""Readiness probing of an instance: TCP connect, or an HTTP GET answered 200-399 (Knative's rules)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from wisp.serving.workloads.logs import tail_text
from wisp.serving.workloads.types import Probe, WorkloadError

PROBE_TIMEOUT = 1.0  # Knative's default timeoutSeconds for a probe attempt
LOG_LINES = 20
# While an instance without a readiness report starts, the probe period grows with its age (5 % of the
# time since spawn, at least 2 ms) up to the probe's own period.
FAST_PERIOD, FAST_FRACTION = 0.002, 0.05


async def probe_once(port: int, probe: Probe) -> bool:
    """One attempt: True when 127.0.0.1:port accepts (and, for an httpGet probe, answers 200-399)."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                if probe.http_path is None:
                    return True
                writer.write(
                    f"GET {probe.http_path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "User-Agent: wisp-probe\r\nK-Kubelet-Probe: wisp\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return False
    parts = status_line.split()
    return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400


async def wait_ready(what: str, port: int, probe: Probe, exited: asyncio.Future[int], log_path: Path,
                     timeout: float, wake: asyncio.Future[None] | None = None) -> None:
    """Probe every `probe.period` until ready; raise WorkloadError with the last log lines if the
    process exits first or `timeout` passes. `wake`, when it resolves, triggers a probe at once."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout
    while True:
        if exited.done():
            raise WorkloadError(
                f"{what} exited with status {exited.result()} before it was ready\nlast log lines:\n"
                f"{tail_text(log_path, LOG_LINES)}"
            )
        # The instance's own "listening" report proves what a TCP probe would: skip the extra connect.
        told = wake is not None and wake.done() and probe.http_path is None
        if (told or await probe_once(port, probe)) and not exited.done():
            return
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise WorkloadError(
                f"{what} was not ready on port {port} after {timeout:g}s\nlast log lines:\n"
                f"{tail_text(log_path, LOG_LINES)}"
            )
        # Wake at once if the process dies instead of sleeping through the period.
        events: list[asyncio.Future[Any]] = [exited]
        if wake is not None and not wake.done():
            events.append(wake)
        period = min(probe.period, remaining)
        if wake is None:
            # Nothing will tell us when it listens: probe fast while it is young, so the probe adds at most
            # ~5 % to its start time (a 50 ms start is caught within 2.5 ms, not up to a whole period late).
            period = min(period, max(FAST_PERIOD, (loop.time() - started) * FAST_FRACTION))
        await asyncio.wait(events, timeout=period, return_when=asyncio.FIRST_COMPLETED)
