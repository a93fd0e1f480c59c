"""The machine-wide limit on instances: how many the daemon runs at most, over every revision together.

One manifest (`min-scale: "1000000"`) must not fork the machine to death. Derived from what the machine has —
memory over an assumed footprint per instance, and a number per CPU — unless `wisp up --max-instances` says.
Revisions take instances first come, first served; one that gets fewer than it wants says so in its status.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1024 * 1024
GiB = 1024 * MiB
# A forked function instance costs ~10 MB of its own (the rest is shared with its template); a container
# instance is a whole interpreter or program, commonly 30-60 MB. Assume the larger, with room for the work.
INSTANCE_BYTES = 64 * MiB
# Idle instances cost no CPU, but each one starting does (an interpreter start, a fork, imports), and so does
# a busy one: beyond this many per CPU, more instances add contention, not throughput.
INSTANCES_PER_CPU = 64
MIN_LIMIT = 4  # even a tiny machine runs a few

_UNLIMITED_CGROUP = 1 << 60  # cgroup v1 reports "no limit" as a number near 2**63


@dataclass(frozen=True)
class MachineLimit:
    limit: int
    basis: str  # how it was set, for messages: "from 23.5 GiB of memory / 64 MiB each and 2 CPUs × 64"


def derive_limit(memory_bytes: int | None, cpus: int | None) -> MachineLimit:
    """The limit for a machine with this much memory and this many CPUs (either None: not known)."""
    bounds: list[int] = []
    parts: list[str] = []
    if memory_bytes:
        bounds.append(memory_bytes // INSTANCE_BYTES)
        parts.append(f"{memory_bytes / GiB:.1f} GiB of memory / {INSTANCE_BYTES // MiB} MiB each")
    if cpus:
        bounds.append(cpus * INSTANCES_PER_CPU)
        parts.append(f"{cpus} CPU{'s' if cpus != 1 else ''} × {INSTANCES_PER_CPU}")
    if not bounds:
        return MachineLimit(4 * INSTANCES_PER_CPU, "a default (memory and CPUs unknown)")
    return MachineLimit(max(MIN_LIMIT, min(bounds)), "from " + " and ".join(parts))


def configured_limit(limit: int) -> MachineLimit:
    return MachineLimit(max(1, limit), "set by --max-instances")


def memory_bytes(proc: Path = Path("/proc"), cgroup_root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Physical memory, or the memory cgroup's limit when lower (v2 `memory.max` or v1 `memory.limit_in_bytes`)."""
    total: int | None = None
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    limit = _cgroup_memory_limit(proc, cgroup_root)
    if limit is not None and (total is None or limit < total):
        return limit
    return total


def _cgroup_memory_limit(proc: Path, root: Path) -> int | None:
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates: list[Path] = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        relative = path.lstrip("/")
        if hierarchy == "0" and controllers == "":
            candidates.append(root / relative / "memory.max")
        elif "memory" in controllers.split(","):
            candidates.append(root / "memory" / relative / "memory.limit_in_bytes")
    for candidate in candidates:
        try:
            text = candidate.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < _UNLIMITED_CGROUP:
            return int(text)
    return None


def cpu_count() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def this_machine() -> MachineLimit:
    return derive_limit(memory_bytes(), cpu_count())


@dataclass(eq=False)
class InstanceBudget:
    """Counts instances (starting, running or draining: each is a process) against the machine's limit."""

    machine: MachineLimit
    in_use: int = 0
    _waiting: list[Callable[[], None]] = field(default_factory=list)

    @property
    def limit(self) -> int:
        return self.machine.limit

    def take(self) -> bool:
        """One instance more, if the limit allows."""
        if self.in_use >= self.machine.limit:
            return False
        self.in_use += 1
        return True

    def give_back(self) -> None:
        """An instance has gone; whoever waits for room is told (once) and may `take` again."""
        self.in_use = max(0, self.in_use - 1)
        waiting, self._waiting = self._waiting, []
        for wake in waiting:
            wake()

    def wait_for_room(self, wake: Callable[[], None]) -> None:
        """Call `wake` once the next time an instance goes."""
        if wake not in self._waiting:
            self._waiting.append(wake)

    def describe(self) -> str:
        return f"the machine-wide limit of {self.machine.limit} instances ({self.machine.basis})"
