"""Per-Service time series for the console's charts, and the autoscaler decisions behind them.

`RequestStats` is told about every proxied request (it is an ingress RequestObserver) and keeps only what
one sampling interval needs: a count and a bounded sample of latencies per revision. `Sampler.sample(now, ...)`
turns that and the revisions' readings into one point per Service, kept in a fixed-size ring. A Service that
stays idle does not grow its ring: its last idle point is moved forward instead, which draws the same flat line.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from wisp.console.sources import DecisionReading, RevisionReading

RevisionKey = tuple[str, str]
ServiceKey = tuple[str, str]

FIELDS = ("t", "desired", "ready", "stable", "panic", "panicking", "rps", "p50", "p99", "inFlight")
POINTS_KEPT = 300  # five minutes at one point a second
DECISIONS_KEPT = 50  # per Service
LATENCIES_KEPT = 2000  # per revision and interval: a uniform sample beyond that (reservoir sampling)
MAX_SERVICES = 5000  # series kept; the least recently active go first


@dataclass(slots=True)
class _Interval:
    count: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


class RequestStats:
    """Requests seen by the ingress since the last `drain()`. Called on the request path: O(1) per request."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._current: dict[RevisionKey, _Interval] = {}
        self._rng = rng or random.Random()

    def request_done(self, key: RevisionKey, status: int, seconds: float) -> None:
        interval = self._current.get(key)
        if interval is None:
            interval = self._current[key] = _Interval()
        interval.count += 1
        if status >= 500:
            interval.errors += 1
        if len(interval.latencies) < LATENCIES_KEPT:
            interval.latencies.append(seconds)
        else:
            slot = self._rng.randrange(interval.count)
            if slot < LATENCIES_KEPT:
                interval.latencies[slot] = seconds

    def drain(self) -> dict[RevisionKey, _Interval]:
        current, self._current = self._current, {}
        return current


class _Ring:
    """The last POINTS_KEPT points of one Service, one array per field."""

    def __init__(self) -> None:
        self.columns = [array("d") for _ in FIELDS]
        self.idle_run = 0  # how many of the newest points are idle

    def __len__(self) -> int:
        return len(self.columns[0])

    def add(self, point: tuple[float, ...], idle: bool) -> None:
        if idle and self.idle_run >= 2:
            self.columns[0][-1] = point[0]  # still idle: move the last idle point forward
            return
        self.idle_run = self.idle_run + 1 if idle else 0
        for column, value in zip(self.columns, point, strict=True):
            column.append(value)
            if len(column) > POINTS_KEPT:
                del column[0]

    def since(self, t: float) -> list[list[float | None]]:
        """Columns of the points at or after t (NaN as None, for JSON)."""
        times = self.columns[0]
        start = len(times)
        while start > 0 and times[start - 1] >= t:
            start -= 1
        return [[None if math.isnan(v) else v for v in column[start:]] for column in self.columns]


def _percentile(ordered: list[float], q: float) -> float:
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def service_of(reading: RevisionReading) -> ServiceKey:
    return reading.namespace, reading.service or reading.revision


class Sampler:
    def __init__(self) -> None:
        self._rings: dict[ServiceKey, _Ring] = {}
        self._decisions: dict[ServiceKey, deque[dict[str, object]]] = {}
        self._last_decision: dict[ServiceKey, dict[str, DecisionReading]] = {}  # by Service, then revision
        self.last_point: dict[ServiceKey, dict[str, float | None]] = {}

    def sample(self, now: float, readings: Iterable[RevisionReading],
               requests: dict[RevisionKey, _Interval], interval: float) -> set[ServiceKey]:
        """One point per Service from the readings and the requests of the last `interval` seconds; returns the
        Services whose point is not idle or changed from the last one."""
        groups: dict[ServiceKey, list[RevisionReading]] = {}
        for reading in readings:
            groups.setdefault(service_of(reading), []).append(reading)
            self._note_decision(now, reading)
        service_requests: dict[ServiceKey, list[_Interval]] = {}
        by_revision = {(r.namespace, r.revision): key for key, rs in groups.items() for r in rs}
        for revision_key, done in requests.items():
            key = by_revision.get(revision_key, revision_key)
            service_requests.setdefault(key, []).append(done)
        changed: set[ServiceKey] = set()
        for key in groups.keys() | service_requests.keys():
            point = self._point(now, groups.get(key, []), service_requests.get(key, []), interval)
            idle = point[1] == 0 and point[2] == 0 and point[6] == 0 and point[9] == 0
            ring = self._rings.get(key)
            if ring is None:
                if idle:
                    continue  # nothing to draw for a Service that has never been active
                ring = self._rings[key] = _Ring()
            ring.add(point, idle)
            named = dict(zip(FIELDS, (None if math.isnan(v) else v for v in point), strict=True))
            previous = self.last_point.get(key)
            if previous is None or any(previous[f] != named[f] for f in FIELDS[1:]):
                changed.add(key)
            self.last_point[key] = named
        self._forget_oldest()
        return changed

    def _point(self, now: float, readings: list[RevisionReading], requests: list[_Interval],
               interval: float) -> tuple[float, ...]:
        count = sum(r.count for r in requests)
        latencies = sorted(v for r in requests for v in r.latencies)
        decisions = [r.decision for r in readings if r.decision is not None]
        p50 = _percentile(latencies, 0.5) * 1000 if latencies else math.nan
        p99 = _percentile(latencies, 0.99) * 1000 if latencies else math.nan
        return (now, sum(r.desired for r in readings), sum(r.ready for r in readings),
                round(sum(d.stable for d in decisions), 3), round(sum(d.panic for d in decisions), 3),
                1.0 if any(d.panicking for d in decisions) else 0.0,
                round(count / interval, 2) if interval > 0 else 0.0, p50, p99,
                sum(r.in_flight + r.queued for r in readings))

    def _note_decision(self, now: float, reading: RevisionReading) -> None:
        decision = reading.decision
        service = service_of(reading)
        last = self._last_decision.setdefault(service, {})
        if decision is None or last.get(reading.revision) == decision:
            return
        last[reading.revision] = decision
        log = self._decisions.setdefault(service, deque(maxlen=DECISIONS_KEPT))
        log.append({"t": now, "revision": reading.revision, "desired": decision.desired, "ready": decision.ready,
                    "mode": "panic" if decision.panicking else "stable", "stable": round(decision.stable, 3),
                    "panic": round(decision.panic, 3), "target": round(decision.target, 3),
                    "stableDesired": decision.stable_desired, "panicDesired": decision.panic_desired,
                    "excessBurstCapacity": decision.excess_burst_capacity, "reason": decision.reason})

    def _forget_oldest(self) -> None:
        while len(self._rings) > MAX_SERVICES:
            oldest = min(self._rings, key=lambda k: self._rings[k].columns[0][-1])
            self.forget(oldest)

    def forget(self, key: ServiceKey) -> None:
        self._rings.pop(key, None)
        self._decisions.pop(key, None)
        self.last_point.pop(key, None)
        self._last_decision.pop(key, None)

    def series(self, key: ServiceKey, since: float = 0.0) -> dict[str, list[float | None]]:
        ring = self._rings.get(key)
        if ring is None:
            return {f: [] for f in FIELDS}
        return dict(zip(FIELDS, ring.since(since), strict=True))

    def decisions(self, key: ServiceKey, since: float = 0.0) -> list[dict[str, object]]:
        return [d for d in self._decisions.get(key, ()) if float(d["t"]) >= since]  # type: ignore[arg-type]
