"""What the console reads, passed in by the daemon as plain values and callables (no globals, no serving imports)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wisp.observability.metrics import SourceState
from wisp.store import Store
from wisp.types import Clock, Resource


@dataclass(frozen=True, slots=True)
class DecisionReading:
    """The autoscaler's last decision for a revision and the inputs it was made from."""

    desired: int
    ready: int
    panicking: bool
    stable: float  # observed concurrency (or rps) over the stable window
    panic: float  # the same over the panic window
    target: float
    stable_desired: int
    panic_desired: int
    excess_burst_capacity: int
    reason: str


@dataclass(frozen=True, slots=True)
class RevisionReading:
    """One running revision now: the data plane's counts and the autoscaler's last decision."""

    namespace: str
    revision: str
    service: str  # K_SERVICE; the revision's own name when it belongs to no Service
    desired: int
    ready: int
    in_flight: int
    queued: int
    decision: DecisionReading | None = None


@dataclass(frozen=True)
class ConsoleSources:
    store: Store
    revisions: Callable[[], Iterable[RevisionReading]]
    pods: Callable[[str | None], list[Resource]]  # the API's virtual Pods, per namespace (None: all)
    event_sources: Callable[[], Iterable[SourceState]]
    clock: Clock
