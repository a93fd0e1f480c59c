"""The machine as one Kubernetes node for scheduling: its allocatable CPU and memory (cores and RAM minus a
reserve, as the kubelet's system-reserved) against the `resources.requests` of the instances placed on it.

An instance whose requests do not fit is not started: its pod stays Pending (PodScheduled False, reason
Unschedulable, a FailedScheduling event) until one that holds requests ends, while the throttler holds the
Revision's requests for the instances it has — as on a full cluster, where the activator holds them. Instances
without requests always fit, as pods without requests do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from wisp.api.quantity import to_bytes, to_millicores
from wisp.serving.instance_limit import cpu_count, memory_bytes

DEFAULT_RESERVED_MEMORY = 256 * 2**20  # for the daemon and the system, as a kubelet's system-reserved
RESERVED_ENV = "WISP_SYSTEM_RESERVED"  # e.g. "cpu=500m,memory=1Gi"


@dataclass(frozen=True)
class Requests:
    cpu_millis: int = 0
    memory: int = 0

    def __bool__(self) -> bool:
        return bool(self.cpu_millis or self.memory)


@dataclass
class NodeResources:
    cpu_millis: int  # allocatable
    memory: int
    used_cpu: int = 0
    used_memory: int = 0
    _waiting: list[Callable[[], None]] = field(default_factory=list)

    def take(self, asked: Requests) -> bool:
        if self.used_cpu + asked.cpu_millis > self.cpu_millis or self.used_memory + asked.memory > self.memory:
            return False
        self.used_cpu += asked.cpu_millis
        self.used_memory += asked.memory
        return True

    def give_back(self, held: Requests) -> None:
        self.used_cpu = max(0, self.used_cpu - held.cpu_millis)
        self.used_memory = max(0, self.used_memory - held.memory)
        waiting, self._waiting = self._waiting, []
        for wake in waiting:
            wake()

    def wait_for_room(self, wake: Callable[[], None]) -> None:
        if wake not in self._waiting:
            self._waiting.append(wake)

    def why_not(self, asked: Requests) -> str:
        """Why `asked` does not fit, worded as the scheduler's FailedScheduling message."""
        short = [name for name, need, free in (
            ("cpu", asked.cpu_millis, self.cpu_millis - self.used_cpu),
            ("memory", asked.memory, self.memory - self.used_memory)) if need > free]
        return (f"0/1 nodes are available: {', '.join(f'1 Insufficient {n}' for n in short)}. (allocatable "
                f"{self.cpu_millis}m CPU, {self.memory // 2**20}Mi memory; requested by running instances "
                f"{self.used_cpu}m, {self.used_memory // 2**20}Mi)")


def reserved(text: str | None) -> Requests:
    """`cpu=500m,memory=1Gi` (the kubelet's --system-reserved syntax); ValueError naming what is wrong."""
    if not text:
        return Requests(0, DEFAULT_RESERVED_MEMORY)
    values = {"cpu": 0, "memory": DEFAULT_RESERVED_MEMORY}
    for part in text.split(","):
        name, sep, amount = part.strip().partition("=")
        if not sep or name not in values:
            raise ValueError(f"{RESERVED_ENV}: {part!r} is not cpu=QUANTITY or memory=QUANTITY")
        values[name] = to_millicores(amount) if name == "cpu" else to_bytes(amount)
    return Requests(values["cpu"], values["memory"])


def this_node(environ: dict[str, str] | None = None) -> NodeResources:
    """The machine's allocatable resources: its CPUs and memory (within its own cgroup's limit) minus the reserve."""
    env = os.environ if environ is None else environ
    reserve = reserved(env.get(RESERVED_ENV))
    cpus = cpu_count() or 1
    memory = memory_bytes() or 0
    return NodeResources(max(0, cpus * 1000 - reserve.cpu_millis), max(0, memory - reserve.memory))
