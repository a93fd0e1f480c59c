"""Probing an instance as the kubelet does (Kubernetes' rules, Knative's defaults): a TCP connect, an HTTP GET
answered 200-399, an exec command exiting 0, or a gRPC health check answering SERVING. `wait_ready` probes a
starting instance; `probe_until` runs a startup probe to its first success; `watch` runs liveness and (declared)
readiness probes for the rest of the instance's life and reports when it has failed `failureThreshold` times in
a row."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wisp.serving.workloads.logs import tail_text
from wisp.serving.workloads.probe_grpc import grpc_health_check
from wisp.serving.workloads.types import Probe, RunsCommands, WorkloadError

PROBE_TIMEOUT = 1.0  # Knative's default timeoutSeconds for a probe attempt
LOG_LINES = 20
# While an instance without a readiness report starts, the probe period grows with its age (5 % of the
# time since spawn, at least 2 ms) up to the probe's own period.
FAST_PERIOD, FAST_FRACTION = 0.002, 0.05


async def probe_once(port: int, probe: Probe, instance: object = None) -> bool:
    """One attempt: True when 127.0.0.1:port accepts (and, for an httpGet probe, answers 200-399); an exec probe
    runs its command through `instance` (a RunsCommands; without one, the TCP connect stands in for it); a gRPC
    probe asks the health service."""
    kind = probe.kind
    if kind == "exec" and isinstance(instance, RunsCommands):
        try:
            return await instance.run_command(probe.exec_command, probe.timeout) == 0
        except OSError:
            return False
    if kind == "grpc":
        return await grpc_health_check(port, probe.grpc_service or "", probe.timeout)
    try:
        async with asyncio.timeout(probe.timeout if probe.declared else PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                if probe.http_path is None:
                    return True
                extra = "".join(f"{name}: {value}\r\n" for name, value in probe.http_headers)
                writer.write(
                    f"GET {probe.http_path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"User-Agent: wisp-probe\r\nK-Kubelet-Probe: wisp\r\n{extra}Connection: close\r\n\r\n".encode()
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
                     timeout: float, wake: asyncio.Future[None] | None = None, instance: object = None) -> None:
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
        told = wake is not None and wake.done() and probe.kind == "tcp"
        if (told or await probe_once(port, probe, instance)) and not exited.done():
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


async def probe_until(port: int, probe: Probe, instance: object, exited: asyncio.Future[int]) -> bool:
    """A startup probe: after its initial delay, every period until it passes (True); False once it has failed
    `failure_threshold` times in a row (the kubelet then restarts the container) or the process has exited."""
    if probe.initial_delay and await _exits_within(exited, probe.initial_delay):
        return False
    failures = 0
    while not exited.done():
        if await probe_once(port, probe, instance):
            return not exited.done()
        failures += 1
        if failures >= max(1, probe.failure_threshold) or await _exits_within(exited, probe.period):
            return False
    return False


async def watch(port: int, probe: Probe, instance: object, exited: asyncio.Future[int],
                on_result: Callable[[bool], bool]) -> None:
    """Probe every period for as long as the process lives (after the initial delay); each result goes to
    `on_result`, which returns False to stop watching."""
    if probe.initial_delay and await _exits_within(exited, probe.initial_delay):
        return
    while not exited.done():
        if not on_result(await probe_once(port, probe, instance)):
            return
        if await _exits_within(exited, probe.period):
            return


class Failures:
    """Consecutive failures against a threshold (a success resets the count), as the kubelet counts them."""

    def __init__(self, threshold: int) -> None:
        self.threshold = max(1, threshold)
        self.count = 0

    def record(self, ok: bool) -> bool:
        """True when this result makes `threshold` failures in a row."""
        self.count = 0 if ok else self.count + 1
        return self.count == self.threshold


async def _exits_within(exited: asyncio.Future[int], seconds: float) -> bool:
    await asyncio.wait([exited], timeout=seconds)
    return exited.done()
