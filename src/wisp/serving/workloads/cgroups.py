"""Resource limits of a local process through a cgroup of its own (what the kubelet asks the container runtime
for): memory `limits` → v2 `memory.max` / v1 `memory.limit_in_bytes`; CPU `limits` → `cpu.max` /
`cpu.cfs_quota_us` over a 100 ms period; a CPU `request` → `cpu.weight` / `cpu.shares` (1024 per core).

The instance's cgroup is a child of the daemon's own (cgroup v2: the path in /proc/self/cgroup's `0::` line; v1:
each controller's line, under /sys/fs/cgroup/<controller>). The process enters it before it runs anything: a
`sh` wrapper writes its own pid to the cgroup's `cgroup.procs` and then execs the command, so every process the
instance starts is inside. `RLIMIT_AS` is not used: it breaks threaded runtimes. After the process exits, an
`oom_kill` count above zero says the kernel killed it for memory (Kubernetes' OOMKilled).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000  # the kubelet's CPU CFS period
REMOVE_TRIES, REMOVE_DELAY = 20, 0.05  # a killed process leaves its cgroup a moment after its exit is seen


@dataclass(frozen=True)
class Limits:
    memory: int | None = None  # bytes
    cpu_millis: int | None = None  # the CPU limit
    cpu_request_millis: int | None = None  # the CPU request: a weight, not a cap

    @property
    def any(self) -> bool:
        return self.memory is not None or self.cpu_millis is not None or self.cpu_request_millis is not None


@dataclass(frozen=True)
class Hierarchy:
    version: int
    memory: Path | None  # the daemon's cgroup in the memory hierarchy (v2: its one cgroup)
    cpu: Path | None


def _parse(text: str) -> dict[str, str]:
    """/proc/self/cgroup lines → controller → path ("" for the v2 line)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                found[controller] = parts[2]
    return found


def detect(root: Path = ROOT, self_cgroup: str | None = None) -> Hierarchy | None:
    """Where this process's cgroups are, v2 or v1 (None when neither is mounted)."""
    text = self_cgroup if self_cgroup is not None else Path("/proc/self/cgroup").read_text()
    lines = _parse(text)
    if (root / "cgroup.controllers").exists():
        own = root / lines.get("", "/").lstrip("/")
        return Hierarchy(2, own, own)
    memory = root / "memory" / lines["memory"].lstrip("/") if "memory" in lines else None
    cpu_base = next((root / name for name in ("cpu", "cpu,cpuacct") if (root / name).is_dir()), None)
    cpu = cpu_base / lines["cpu"].lstrip("/") if cpu_base is not None and "cpu" in lines else None
    if memory is None and cpu is None:
        return None
    return Hierarchy(1, memory if memory is not None and memory.is_dir() else None,
                     cpu if cpu is not None and cpu.is_dir() else None)


@functools.cache
def hierarchy() -> Hierarchy | None:
    try:
        return detect()
    except OSError:
        return None


class InstanceCgroup:
    """One instance's cgroup(s): made with the limits written, joined by the instance, removed after it."""

    def __init__(self, dirs: list[Path], version: int) -> None:
        self.dirs = dirs
        self.version = version

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs]

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer killed a process of this cgroup."""
        for directory in self.dirs:
            name = "memory.events" if self.version == 2 else "memory.oom_control"
            with contextlib.suppress(OSError):
                for line in (directory / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                        return True
        return False

    def kill_all(self) -> None:
        """SIGKILL whatever is still in the cgroup (a process that left the instance's process group), as the
        kubelet stops every process of a container."""
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                for pid in procs.read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)

    async def release(self) -> None:
        """Kill whatever is left and remove the cgroup(s), retrying while the kernel still counts a process that
        is exiting (it says nothing when it is done: a few short waits, then give up)."""
        self.kill_all()
        for _ in range(REMOVE_TRIES):
            if self.remove():
                return
            await asyncio.sleep(REMOVE_DELAY)

    def remove(self) -> bool:
        """Remove the cgroup(s); False while one still holds a process that is exiting (try again shortly)."""
        gone = True
        for directory in self.dirs:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                gone = False
        return gone


def unavailable(limits: Limits, found: Hierarchy | None) -> str | None:
    """Why these limits cannot be enforced here (None when they can)."""
    if not limits.any:
        return None
    if found is None:
        return "no cgroup hierarchy is mounted at /sys/fs/cgroup"
    if limits.memory is not None and found.memory is None:
        return "the memory cgroup controller is not available"
    if (limits.cpu_millis is not None or limits.cpu_request_millis is not None) and found.cpu is None:
        return "the cpu cgroup controller is not available"
    for base in {p for p in (found.memory, found.cpu) if p is not None}:
        if not os.access(base, os.W_OK):
            return f"wisp may not create a cgroup under {base} (run it as root, or delegate that cgroup to its user)"
    return None


def create(name: str, limits: Limits, found: Hierarchy) -> InstanceCgroup:
    """A cgroup named `wisp-<name>-<random>` under the daemon's, with the limits written; OSError when the kernel
    refuses. Random: an instance restarted in place must not meet its predecessor's cgroup, which the kernel
    lets go of a moment after its last process."""
    made: list[Path] = []
    cgroup = InstanceCgroup(made, found.version)
    name = f"{name}-{secrets.token_hex(3)}"
    try:
        if found.version == 2:
            assert found.memory is not None
            directory = found.memory / f"wisp-{name}"
            directory.mkdir()
            made.append(directory)
            if limits.memory is not None:
                (directory / "memory.max").write_text(str(limits.memory))
                with contextlib.suppress(OSError):
                    (directory / "memory.swap.max").write_text("0")
            if limits.cpu_millis is not None:
                (directory / "cpu.max").write_text(f"{limits.cpu_millis * CFS_PERIOD_US // 1000} {CFS_PERIOD_US}")
            if limits.cpu_request_millis is not None:
                # The kubelet's mapping of shares (1024 per core) to weight (1-10000).
                shares = max(2, limits.cpu_request_millis * 1024 // 1000)
                (directory / "cpu.weight").write_text(str(1 + ((shares - 2) * 9999) // 262142))
            return cgroup
        if limits.memory is not None and found.memory is not None:
            directory = found.memory / f"wisp-{name}"
            directory.mkdir()
            made.append(directory)
            (directory / "memory.limit_in_bytes").write_text(str(limits.memory))
            with contextlib.suppress(OSError):  # no swap beyond the limit, where the kernel accounts swap
                (directory / "memory.memsw.limit_in_bytes").write_text(str(limits.memory))
        if (limits.cpu_millis is not None or limits.cpu_request_millis is not None) and found.cpu is not None:
            directory = found.cpu / f"wisp-{name}"
            directory.mkdir()
            made.append(directory)
            if limits.cpu_millis is not None:
                (directory / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
                (directory / "cpu.cfs_quota_us").write_text(str(limits.cpu_millis * CFS_PERIOD_US // 1000))
            if limits.cpu_request_millis is not None:
                (directory / "cpu.shares").write_text(str(max(2, limits.cpu_request_millis * 1024 // 1000)))
    except OSError:
        cgroup.remove()
        raise
    return cgroup


# Joins each cgroup given (its pid into each cgroup.procs) and then becomes the command: everything the instance
# runs is inside from its first instruction. POSIX sh only; 126 ("cannot execute") if the kernel refuses.
_JOIN = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 126; shift; n=$((n - 1)); done; exec "$@"'


def joined(argv: list[str], cgroup: InstanceCgroup) -> list[str]:
    files = [str(p) for p in cgroup.procs_files]
    return ["/bin/sh", "-c", _JOIN, "sh", str(len(files)), *files, *argv]
